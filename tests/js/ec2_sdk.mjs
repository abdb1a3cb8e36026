// ec2_sdk.mjs - EC2 calls with today's AWS SDK for JavaScript v3, for
// tests/e2e/test_ec2_js_sdk.py. argv[2] is a JSON list of calls, each
// {"command": "DescribeInstances", "input": {...}}; they run in order on one client and the
// result is one JSON line on stdout: a list with, per call, {"ok": true, "output": {...}} or
// {"ok": false, "name", "status", "message"} (the SDK's parsed EC2 error). Endpoint and
// credentials come from the environment (VIRGA_EC2_URL, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION), as a user's program would take them.
import * as EC2 from "@aws-sdk/client-ec2";

const ec2 = new EC2.EC2Client({
  endpoint: process.env.VIRGA_EC2_URL,
  region: process.env.AWS_DEFAULT_REGION,
  maxAttempts: 1,
});

// Dates and binary fields in plain JSON, so the test compares what the SDK parsed.
function plain(value) {
  return JSON.parse(JSON.stringify(value, (k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v)));
}

const results = [];
for (const call of JSON.parse(process.argv[2])) {
  const Command = EC2[`${call.command}Command`];
  if (!Command) {
    results.push({ ok: false, name: "NoSuchCommand", status: 0, message: call.command });
    continue;
  }
  try {
    const { $metadata, ...output } = await ec2.send(new Command(call.input || {}));
    results.push({ ok: true, status: $metadata.httpStatusCode, output: plain(output) });
  } catch (err) {
    results.push({ ok: false, name: err.name, status: err.$metadata?.httpStatusCode ?? 0, message: err.message });
  }
}
process.stdout.write(JSON.stringify(results) + "\n");
