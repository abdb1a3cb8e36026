"""Helpers of the benchmarks that compare two builds on one cloud, in turns
(tests/bench/ab_reply_path.py, bench_idle_rtt.py): the services swapped to a build's
binaries, each HTTP exchange of a boto3 client timed, CPU ticks of a process, percentiles."""
import os
import subprocess
import time

from harness import DEVCLOUD

TICK = os.sysconf("SC_CLK_TCK")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def ticks(pid):
    """User + system CPU of a process, in clock ticks (TICK a second)."""
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])


def swap(c, bindir, names, env=None):
    """Stop the named services of cloud c and start them again from bindir, with env."""
    for name in names:
        pid = c.pid(name)
        os.kill(pid, 15)
        for _ in range(300):
            if not os.path.exists("/proc/%d" % pid):
                break
            time.sleep(0.05)
    r = subprocess.run([DEVCLOUD, "up", "--dir", c.dir, "--throwaway", "--test-handlers", "--default-images", "none"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, **c.start_env, **(env or {}), "VIRGA_BIN_DIR": bindir})
    assert r.returncode == 0, r.stderr[-2000:]
    exe = os.readlink("/proc/%d/exe" % c.pid(names[0]))
    assert exe.startswith(bindir), exe


def timed_http(client):
    """Time each HTTP exchange of this boto3 client, sent to the last byte read: the
    returned dict holds the last one's seconds ("dt") and body length ("len")."""
    sess = client._endpoint.http_session
    send, marks = sess.send, {}

    def timed(req):
        t0 = time.perf_counter()
        r = send(req)
        marks["len"] = len(r.content)
        marks["dt"] = time.perf_counter() - t0
        return r
    sess.send = timed
    return marks
