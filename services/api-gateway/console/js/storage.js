// storage.js - the object store browser: buckets, objects under a prefix, upload with
// progress (in parts above 8 MiB, cancellable: api.js), download, delete. S3 requests go through the gateway's /console/s3/ proxy,
// signed there with the session's credentials (docs/console.md).
import { s3, s3Upload, s3Url } from "./api.js";
import { h, table, page, attempt, showOk, formDialog, field, confirmDialog, showError } from "./ui.js";

// progress: the uploads' rows, kept across the listing's refreshes (a refresh follows
// every upload, and the user should still see what went up and what failed)
let box, progress, bucket = "", prefix = "";

const text = (el, name) => el.getElementsByTagName(name)[0]?.textContent || "";

async function listBuckets() {
  const doc = await attempt("Listing buckets", () => s3("GET", "", ""));
  if (!doc) return;
  const rows = Array.from(doc.getElementsByTagName("Bucket")).map((b) => ({ name: text(b, "Name"), created: text(b, "CreationDate") }));
  box.replaceChildren(
    h("div", { class: "toolbar" }, h("button", { type: "button", onclick: createBucket }, "Create bucket")),
    table("Buckets", [
      { label: "Bucket", get: (b) => h("a", { href: `#/storage/${encodeURIComponent(b.name)}` }, b.name) },
      { label: "Created", get: (b) => b.created },
      { label: "Actions", get: (b) => h("button", { type: "button", class: "danger", "aria-label": `Delete bucket ${b.name}`,
          onclick: () => deleteBucket(b.name) }, "Delete") },
    ], rows, { empty: "No buckets." }));
}

async function createBucket() {
  const f = await formDialog("Create a bucket", (form) => form.append(
    ...field("Name", h("input", { name: "Bucket", required: true, pattern: "[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]" }))));
  if (f && (await attempt("Creating the bucket", () => s3("PUT", f.get("Bucket"), "")))) {
    showOk(`Created ${f.get("Bucket")}`);
    listBuckets();
  }
}

async function deleteBucket(name) {
  if (!(await confirmDialog(`Delete bucket ${name}? It must be empty.`, "Delete"))) return;
  if (await attempt("Deleting the bucket", () => s3("DELETE", name, ""))) { showOk(`Deleted ${name}`); listBuckets(); }
}

async function listObjects() {
  const q = new URLSearchParams({ "list-type": "2", delimiter: "/", prefix }).toString();
  const doc = await attempt("Listing objects", () => s3("GET", bucket, "", q));
  if (!doc) return;
  const dirs = Array.from(doc.getElementsByTagName("CommonPrefixes")).map((p) => text(p, "Prefix"));
  const objs = Array.from(doc.getElementsByTagName("Contents")).map((c) => ({
    key: text(c, "Key"), size: Number(text(c, "Size")), modified: text(c, "LastModified") }));
  const file = h("input", { type: "file", id: "upload-file", multiple: true });
  file.addEventListener("change", () => upload(file.files, progress));
  const up = prefix ? prefix.replace(/[^/]*\/$/, "") : null;
  box.replaceChildren(
    h("p", {}, h("a", { href: "#/storage" }, "All buckets"), ` / ${bucket} / ${prefix}`),
    h("div", { class: "toolbar" }, h("label", { for: "upload-file" }, "Upload files"), file), progress,
    table(`Objects in ${bucket}/${prefix}`, [
      { label: "Name", get: (o) => o.dir ? h("button", { type: "button", class: "secondary", onclick: () => { prefix = o.key; listObjects(); } }, o.key.slice(prefix.length))
                                          : o.key.slice(prefix.length) },
      { label: "Size", get: (o) => o.dir ? "folder" : `${o.size.toLocaleString()} B` },
      { label: "Modified", get: (o) => o.modified || "" },
      { label: "Actions", get: (o) => o.dir ? "" : h("span", {},
          h("a", { class: "button secondary", href: s3Url(bucket, o.key) + "?x-virga-download=1", download: o.key.split("/").pop(),
                   "aria-label": `Download ${o.key}` }, "Download"), " ",
          h("button", { type: "button", class: "danger", "aria-label": `Delete ${o.key}`, onclick: () => deleteObject(o.key) }, "Delete")) },
    ], [...(up !== null ? [{ key: up, dir: true }] : []), ...dirs.map((d) => ({ key: d, dir: true })), ...objs],
    { empty: "No objects." }));
}

async function upload(files, progressBox) {
  for (const f of files) {
    const bar = h("progress", { max: "1", value: "0", "aria-label": `Uploading ${f.name}` });
    const stop = new AbortController();
    const cancel = h("button", { type: "button", class: "secondary", "aria-label": `Cancel uploading ${f.name}`,
                                 onclick: () => stop.abort() }, "Cancel");
    const row = h("div", { class: "upload" }, `${f.name} `, bar, " ", cancel);
    progressBox.append(row);
    try {
      await s3Upload(bucket, prefix + f.name, f, (x) => { bar.value = x; }, stop.signal);
      row.replaceChildren(`Uploaded ${f.name}`);
    } catch (e) {
      if (e.code === "AbortError") row.replaceChildren(`Cancelled ${f.name}`);
      else {
        row.remove();
        showError(e, `Uploading ${f.name}`);
      }
    }
  }
  showOk("Upload finished");
  listObjects();
}

async function deleteObject(key) {
  if (!(await confirmDialog(`Delete ${key}?`, "Delete"))) return;
  if (await attempt("Deleting the object", () => s3("DELETE", bucket, key))) { showOk(`Deleted ${key}`); listObjects(); }
}

export async function show() {
  const parts = location.hash.split("/");
  bucket = parts[2] ? decodeURIComponent(parts[2]) : "";
  prefix = "";
  box = h("div", {}, "Loading…");
  progress = h("div", { "aria-live": "polite" });
  page(bucket ? `Bucket ${bucket}` : "Object store", box);
  if (bucket) await listObjects(); else await listBuckets();
}
