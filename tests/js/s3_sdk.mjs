// s3_sdk.mjs - one S3 operation with today's AWS SDK for JavaScript v3, for
// tests/e2e/test_s3_sdks.py. The operation is a JSON object in argv[2]; the result is one
// JSON line on stdout: {"ok": true, ...} or {"ok": false, "name", "status", "message"}.
// Endpoint and credentials come from the environment (VIRGA_S3_URL, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION), as a user's program would take them.
//
//   {"op": "put", "bucket", "key", "text" | "size"+"seed", "stream": bool,
//    "algorithm": "CRC32"|..., "checksum": {"ChecksumCRC32": "..."}}
//   {"op": "get", "bucket", "key", "mode": bool}     body sha256 + checksums (validated by the SDK)
//   {"op": "upload", "bucket", "key", "size", "seed"} lib-storage Upload of a stream of unknown length
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";

const s3 = new S3Client({
  endpoint: process.env.VIRGA_S3_URL,
  region: process.env.AWS_DEFAULT_REGION,
  forcePathStyle: true,
  maxAttempts: 1,
});

const CHECKSUMS = ["ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME", "ChecksumSHA1", "ChecksumSHA256",
  "ChecksumType"];

// Deterministic bytes (xorshift32).
function bytes(size, seed) {
  const b = Buffer.alloc(size);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

// A stream in uneven pieces, as a file or a socket would give them.
function streamOf(buf) {
  const pieces = [];
  for (let off = 0, n = 1; off < buf.length; off += n, n = n * 3 + 7)
    pieces.push(buf.subarray(off, Math.min(buf.length, off + n)));
  return Readable.from(pieces);
}

function checksums(r) {
  const out = {};
  for (const k of CHECKSUMS) if (r[k] !== undefined) out[k] = r[k];
  return out;
}

const ops = {
  async mb(c) {
    await s3.send(new CreateBucketCommand({ Bucket: c.bucket }));
    return {};
  },
  async put(c) {
    const data = c.text !== undefined ? Buffer.from(c.text) : bytes(c.size, c.seed);
    const params = { Bucket: c.bucket, Key: c.key, ChecksumAlgorithm: c.algorithm, ...(c.checksum || {}) };
    if (c.stream) {
      params.Body = streamOf(data);
      params.ContentLength = data.length;
    } else {
      params.Body = data;
    }
    const r = await s3.send(new PutObjectCommand(params));
    return { etag: r.ETag, ...checksums(r) };
  },
  async get(c) {
    const r = await s3.send(new GetObjectCommand({ Bucket: c.bucket, Key: c.key,
      ChecksumMode: c.mode ? "ENABLED" : undefined }));
    const body = Buffer.from(await r.Body.transformToByteArray());
    return { sha256: createHash("sha256").update(body).digest("hex"), length: body.length,
      contentEncoding: r.ContentEncoding ?? null, ...checksums(r) };
  },
  async upload(c) {
    const data = bytes(c.size, c.seed);
    const up = new Upload({ client: s3, params: { Bucket: c.bucket, Key: c.key, Body: streamOf(data) } });
    const r = await up.done();
    return { etag: r.ETag, sha256: createHash("sha256").update(data).digest("hex"), ...checksums(r) };
  },
};

const cmd = JSON.parse(process.argv[2]);
try {
  const r = await ops[cmd.op](cmd);
  console.log(JSON.stringify({ ok: true, ...r }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, name: e.name, status: e.$metadata?.httpStatusCode ?? null,
    message: String(e.message) }));
}
