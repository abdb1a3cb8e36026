"""Large messages on the real broker (docs/bus.md, "How large a message"): a request and a
reply of several MB cross the bus (a DescribeInstances page of a thousand instances is about
1.3 MB, over Kafka's default 1 MB), and one over bus.max_message_bytes (4 MiB) fails at once
with an error that names the bound, never as a timeout."""
import json
import os
import subprocess
import time

from harness import BIN


def echo(cloud, body, timeout_ms=20000, extra=()):
    """virgadm call compute sys.echo with the body on stdin: (returncode, stdout, stderr, seconds)."""
    t = time.time()
    r = subprocess.run([os.path.join(BIN, "virgadm"), "-c", cloud.config, *extra, "call", "compute", "sys.echo", "-",
                        "--timeout", str(timeout_ms)], input=json.dumps(body), capture_output=True, text=True,
                       timeout=timeout_ms / 1000 + 30)
    return r.returncode, r.stdout, r.stderr, time.time() - t


def test_a_reply_of_several_mb_crosses_the_bus(cloud):
    blob = "v" * (2500 * 1000)
    rc, out, err, _ = echo(cloud, {"blob": blob})
    assert rc == 0, err
    assert json.loads(out)["blob"] == blob


def test_a_message_over_the_bound_fails_at_once_with_why(cloud):
    # refused by the caller's bus before it leaves
    rc, _, err, took = echo(cloud, {"blob": "w" * (5 * 1000 * 1000)})
    assert rc != 0
    assert "bus.max_message_bytes" in err, err
    assert took < 15
    # a caller set larger than the cloud: the broker's topic bound refuses it, and the call
    # fails on that answer, not at its deadline
    rc, _, err, took = echo(cloud, {"blob": "w" * (5 * 1000 * 1000)}, timeout_ms=30000,
                            extra=("--set", "bus.max_message_bytes=8388608"))
    assert rc != 0
    assert "RequestTimeout" not in err and "too large" in err.lower(), err
    assert took < 25
