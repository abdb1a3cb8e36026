#!/usr/bin/python3
"""gateway_breakdown.py DIR BUILD CONNS [SECONDS] - signed DescribeKeyPairs with wrk at CONNS
connections against the cloud in DIR, and where the time went: the gateway's latency (its
/metrics histogram), compute's queue wait and handler time (its sys.metrics), the rest (the
bus hops through the broker, the gateway's own work), and the CPU each process spent per
request (/proc). Loopback only, bounded by SECONDS (default 10)."""
import json, os, re, subprocess, sys, urllib.request
d, build, c = sys.argv[1], sys.argv[2], int(sys.argv[3]); secs = sys.argv[4] if len(sys.argv) > 4 else "10"
here = os.path.dirname(os.path.abspath(__file__))
env = {}
for line in open(d + "/env"):
    k, v = line.replace("export ", "").strip().split("=", 1); env[k] = v
B = os.path.abspath(os.path.join(build, "bin"))
def parse(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m: out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out
def gw(): return parse(urllib.request.urlopen(env["VIRGA_EC2_URL"] + "/metrics").read().decode())
def comp():
    r = subprocess.run([B + "/virgadm", "-c", env["VIRGA_CONFIG"], "call", "compute", "sys.metrics"], capture_output=True, text=True)
    return parse(json.loads(r.stdout)["text"])
def ticks(pid): f = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split(); return int(f[11]) + int(f[12])
pids = {s: open("%s/run/%s.pid" % (d, s)).read().strip() for s in ("gateway", "compute", "kafka")}
def pg():
    r = subprocess.run("pgrep -f 'postgres.*%s'" % d, shell=True, capture_output=True, text=True).stdout.split()
    kids = subprocess.run("for p in %s; do pgrep -P $p; done" % " ".join(r), shell=True, capture_output=True, text=True).stdout.split()
    t = 0
    for p in set(r + kids):
        try: t += ticks(p)
        except Exception: pass
    return t
env2 = dict(os.environ, **env)
lua = subprocess.run(["/usr/bin/python3", os.path.join(here, "sign_request.py"), "DescribeKeyPairs"], capture_output=True, text=True, env=env2).stdout
script = os.path.join(d, "breakdown.lua")
open(script, "w").write(lua)
g0, c0 = gw(), comp(); t0 = {k: ticks(p) for k, p in pids.items()}; p0 = pg()
w = subprocess.run(["wrk", "-t2", "-c%d" % c, "-d%ss" % secs, "--latency", "-s", script, env["VIRGA_EC2_URL"] + "/"], capture_output=True, text=True).stdout
g1, c1 = gw(), comp(); t1 = {k: ticks(p) for k, p in pids.items()}; p1 = pg()
rps = re.search(r"Requests/sec:\s*(\S+)", w).group(1); n = int(re.search(r"(\d+) requests in", w).group(1))
p50 = re.search(r"50%\s+(\S+)", w).group(1); p99 = re.search(r"99%\s+(\S+)", w).group(1)
def dl(a, b, name, lab):
    return b.get((name, lab), 0) - a.get((name, lab), 0)
gl = 'api="ec2",action="DescribeKeyPairs"'
cl = 'service="compute",type="compute.DescribeKeyPairs"'
gn = dl(g0, g1, "virga_gateway_request_duration_seconds_count", gl)
gs = dl(g0, g1, "virga_gateway_request_duration_seconds_sum", gl)
cn = dl(c0, c1, "virga_bus_handled_total", cl)
qw = dl(c0, c1, "virga_bus_queue_wait_seconds_sum", cl); hs = dl(c0, c1, "virga_bus_handler_seconds_sum", cl)
load = open("/proc/loadavg").read().split()[0]
print("DescribeKeyPairs c%d: %s req/s, wrk p50 %s p99 %s, load %s" % (c, rps, p50, p99, load))
if gn and cn:
    print("  mean per request: gateway arrival->answer %.2f ms = compute queue wait %.2f ms + compute handler %.2f ms + the rest (bus hops, gateway) %.2f ms"
          % (gs / gn * 1e3, qw / cn * 1e3, hs / cn * 1e3, (gs / gn - qw / cn - hs / cn) * 1e3))
print("  CPU us/request: " + ", ".join("%s %d" % (k, (t1[k] - t0[k]) * 10000 // n) for k in pids) + ", postgres %d" % ((p1 - p0) * 10000 // n))
