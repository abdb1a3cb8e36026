// api.js - the console's only way to the cloud: the same EC2 and IAM Query actions the
// CLI sends, posted to /console/api/{ec2,iam} with the session cookie and its CSRF token;
// the gateway dispatches them through its action table with the user's own policies.

const EC2_VERSION = "2016-11-15", IAM_VERSION = "2010-05-08";
let csrf = "";

export class ApiError extends Error {
  constructor(code, message, status) { super(message); this.code = code; this.status = status; }
}

export function setCsrf(token) { csrf = token || ""; }

// {InstanceId: ["i-1"], Filter: [{Name: "x", Value: ["y"]}]} -> EC2's flattened form.
export function flatten(params, prefix = "", out = new URLSearchParams()) {
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    const name = prefix ? `${prefix}.${k}` : k;
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        if (typeof item === "object") flatten(item, `${name}.${i + 1}`, out);
        else out.append(`${name}.${i + 1}`, String(item));
      });
    } else if (typeof v === "object") flatten(v, name, out);
    else out.append(name, String(v));
  }
  return out;
}

// XML -> plain objects: an element whose children are all <item> or <member> is a list;
// an element without element children is its text.
export function xmlToObject(el) {
  const kids = Array.from(el.children);
  if (kids.length === 0) return el.textContent;
  if (kids.every((k) => k.localName === "item" || k.localName === "member")) return kids.map(xmlToObject);
  const o = {};
  for (const k of kids) o[k.localName] = xmlToObject(k);
  return o;
}

// A list field that may be absent or empty ("" when the element has no children).
export const list = (v) => (Array.isArray(v) ? v : []);

async function post(path, body, headers = {}) {
  let resp;
  try {
    resp = await fetch(path, { method: "POST", credentials: "same-origin", body,
                               headers: { "X-Virga-CSRF": csrf, ...headers } });
  } catch (e) {
    throw new ApiError("NetworkError", "The console cannot reach the gateway: " + e.message, 0);
  }
  return resp;
}

function onSessionEnded(code) {
  if (code === "AuthFailure" || code === "InvalidCsrfToken")
    window.dispatchEvent(new CustomEvent("virga-session-ended", { detail: code }));
}

async function query(api, action, params = {}) {
  const body = flatten(params);
  body.set("Action", action);
  body.set("Version", api === "iam" ? IAM_VERSION : EC2_VERSION);
  const resp = await post(`/console/api/${api}`, body);
  const text = await resp.text();
  const doc = new DOMParser().parseFromString(text, "application/xml");
  const err = doc.getElementsByTagName("Error")[0];
  if (!resp.ok || err) {
    const code = err?.getElementsByTagName("Code")[0]?.textContent || `HTTP${resp.status}`;
    const message = err?.getElementsByTagName("Message")[0]?.textContent || resp.statusText;
    onSessionEnded(code);
    throw new ApiError(code, message, resp.status);
  }
  return xmlToObject(doc.documentElement);
}

export const ec2 = (action, params) => query("ec2", action, params);
export const iam = (action, params) => query("iam", action, params);

async function json(resp) {
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new ApiError(data.Code || `HTTP${resp.status}`, data.Message || resp.statusText, resp.status);
  return data;
}

export async function login(account, user, password) {
  const body = new URLSearchParams({ account, user, password });
  const who = await json(await post("/console/api/login", body));
  setCsrf(who.csrf);
  return who;
}

export async function session() {
  const who = await json(await fetch("/console/api/session", { credentials: "same-origin" }));
  setCsrf(who.csrf);
  return who;
}

export async function logout() {
  await json(await post("/console/api/logout", new URLSearchParams()));
  setCsrf("");
}

// S3 through the gateway's console proxy (docs/console.md): the path is /bucket/key.
export function s3Url(bucket = "", key = "") {
  const k = key.split("/").map(encodeURIComponent).join("/");
  return "/console/s3/" + (bucket ? encodeURIComponent(bucket) + "/" + k : "");
}

export async function s3(method, bucket, key, query = "", body = undefined) {
  const resp = await fetch(s3Url(bucket, key) + (query ? "?" + query : ""), {
    method, body, credentials: "same-origin", headers: method === "GET" ? {} : { "X-Virga-CSRF": csrf } });
  const text = method === "HEAD" ? "" : await resp.text();
  const doc = text ? new DOMParser().parseFromString(text, "application/xml") : null;
  if (!resp.ok) {
    const code = doc?.getElementsByTagName("Code")[0]?.textContent || `HTTP${resp.status}`;
    const message = doc?.getElementsByTagName("Message")[0]?.textContent || resp.statusText;
    onSessionEnded(code);
    throw new ApiError(code, message, resp.status);
  }
  return doc || true;   // a 204 (DELETE) has no body, and is a success
}

// One request with upload progress (fetch has none): resolves with the XHR when the
// object store said yes; rejects with its S3 error, or AbortError when signal fires.
function xhr(method, url, body, headers, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open(method, url);
    x.setRequestHeader("X-Virga-CSRF", csrf);
    for (const [k, v] of Object.entries(headers)) if (v) x.setRequestHeader(k, v);
    if (onProgress) x.upload.onprogress = (ev) => ev.lengthComputable && onProgress(ev.loaded);
    const abort = () => x.abort();
    signal?.addEventListener("abort", abort);
    const done = (f) => { signal?.removeEventListener("abort", abort); f(); };
    x.onload = () => done(() => {
      if (x.status < 300) return resolve(x);
      const doc = xmlOf(x);
      const code = doc.getElementsByTagName("Code")[0]?.textContent || `HTTP${x.status}`;
      onSessionEnded(code);
      reject(new ApiError(code, doc.getElementsByTagName("Message")[0]?.textContent || x.statusText, x.status));
    });
    x.onerror = () => done(() => reject(new ApiError("NetworkError", "The upload was interrupted.", 0)));
    x.onabort = () => done(() => reject(new ApiError("AbortError", "The upload was cancelled.", 0)));
    if (signal?.aborted) { x.onabort(); return; }
    x.send(body);
  });
}

const xmlOf = (x) => new DOMParser().parseFromString(x.responseText || "<x/>", "application/xml");

// Above one part, uploads go in parts (S3 multipart upload): each part is one request of
// at most PART_SIZE bytes through the console's relay (which takes up to
// console.s3_max_upload = 64 MiB at once), so a file of any size goes up, a failed part is
// sent again alone, and a cancelled or failed upload is aborted (its parts deleted).
export const PART_SIZE = 8 * 1024 * 1024;
const PART_TRIES = 3;

// Upload file as bucket/key: onProgress(fraction) as bytes go; signal (AbortController's)
// cancels.
export async function s3Upload(bucket, key, file, onProgress, signal) {
  const url = s3Url(bucket, key);
  if (file.size <= PART_SIZE) {
    await xhr("PUT", url, file, { "Content-Type": file.type }, (n) => onProgress(n / file.size), signal);
    return;
  }
  const created = await xhr("POST", url + "?uploads", null, { "Content-Type": file.type || "application/octet-stream" }, null, signal);
  const uploadId = xmlOf(created).getElementsByTagName("UploadId")[0]?.textContent;
  if (!uploadId) throw new ApiError("InternalError", "CreateMultipartUpload gave no UploadId.", created.status);
  const q = (more) => `${url}?uploadId=${encodeURIComponent(uploadId)}${more}`;
  const etags = [];
  try {
    let sent = 0;
    for (let n = 1, off = 0; off < file.size; n++, off += PART_SIZE) {
      const part = file.slice(off, Math.min(off + PART_SIZE, file.size));
      for (let tries = 1; ; tries++) {
        try {
          const r = await xhr("PUT", q(`&partNumber=${n}`), part, {}, (b) => onProgress((sent + b) / file.size), signal);
          etags.push(r.getResponseHeader("ETag"));
          break;
        } catch (e) {
          // a part that failed in transit, or that the store could not take now, goes again
          if (tries >= PART_TRIES || signal?.aborted || (e.status && e.status < 500)) throw e;
        }
      }
      sent += part.size;
    }
    const body = "<CompleteMultipartUpload>" +
      etags.map((t, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${t}</ETag></Part>`).join("") +
      "</CompleteMultipartUpload>";
    const done = await xhr("POST", q(""), body, { "Content-Type": "application/xml" }, null, signal);
    // S3 may answer 200 with an error inside when completing fails late
    const err = xmlOf(done).getElementsByTagName("Error")[0];
    if (err) throw new ApiError(err.getElementsByTagName("Code")[0]?.textContent || "InternalError",
                                err.getElementsByTagName("Message")[0]?.textContent || "", done.status);
  } catch (e) {
    // cancelled or failed: the parts sent so far are deleted, not left to be paid for
    await xhr("DELETE", q(""), null, {}, null, null).catch(() => {});
    throw e;
  }
}
