"""What a cloud's Virga services hold in memory, read from /proc: the benchmarks that print
memory figures (bench_memory.py, bench_scale.py) share it. Only the processes whose pid
files are in the cloud's own run/ directory are read, never another cloud's.

VmRSS counts every resident page a process maps, so the shared libraries' pages (libc,
libcrypto, the binary...) count once in every process; Pss divides each shared page among
the processes that map it, so the Pss sum is what the services together cost the machine.
PostgreSQL and the Kafka broker are not Virga services (the database and the broker) and
are not counted."""
import os

SERVICES = ("gateway", "identity", "compute", "image", "network", "objectstore", "accounting", "agent")


def service_pids(cloud):
    """{service: pid} of the cloud's Virga services that run."""
    out = {}
    run = os.path.join(cloud.dir, "run")
    for name in SERVICES:
        try:
            with open(os.path.join(run, name + ".pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            out[name] = pid
        except (OSError, ValueError):
            pass
    return out


def _fields(path, keys):
    got = {}
    with open(path) as f:
        for line in f:
            k = line.split(":", 1)[0]
            if k in keys:
                got[k] = int(line.split()[1])
    return got


def usage(cloud):
    """{service: {"rss": MiB, "pss": MiB, "anon": MiB (private anonymous: heap, arenas,
    stacks), "threads": n}}."""
    out = {}
    for name, pid in service_pids(cloud).items():
        try:
            st = _fields("/proc/%d/status" % pid, ("VmRSS", "Threads", "RssAnon"))
            sm = _fields("/proc/%d/smaps_rollup" % pid, ("Pss",))
        except OSError:
            continue
        out[name] = {"rss": st.get("VmRSS", 0) / 1024.0, "pss": sm.get("Pss", 0) / 1024.0,
                     "anon": st.get("RssAnon", 0) / 1024.0, "threads": st.get("Threads", 0)}
    return out


def _kind(path, perms, size_kib):
    """Which part of a process a mapping is: the heap, a thread's stack, malloc's other
    arenas (anonymous 64 MiB-aligned reservations), other anonymous memory (big mmapped
    allocations, library caches), or the file it maps."""
    if path == "[heap]":
        return "heap (main arena)"
    if path.startswith("[stack"):
        return "main stack"
    if path.startswith("["):
        return path
    if path:
        base = os.path.basename(path).split(".so")[0]
        return "file " + base
    if perms.startswith("---"):
        return "guard/reserved"
    if size_kib in (8192, 8188, 2048, 2044, 1024, 1020, 512, 508, 256, 252):
        return "anon, thread-stack sized"
    return "anon (arenas, mmapped blocks)"


def breakdown(pid):
    """[(kind, Rss KiB, Pss KiB, Private_Dirty KiB, mappings)] from /proc/PID/smaps, the
    largest Pss first."""
    kinds = {}
    cur = None
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                parts = line.split()
                if not parts:
                    continue
                if "-" in parts[0] and not parts[0].endswith(":"):
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    path = parts[5] if len(parts) > 5 else ""
                    k = _kind(path, parts[1], (hi - lo) // 1024)
                    cur = kinds.setdefault(k, [0, 0, 0, 0])
                    cur[3] += 1
                elif cur is not None and parts[0] in ("Rss:", "Pss:", "Private_Dirty:"):
                    cur[("Rss:", "Pss:", "Private_Dirty:").index(parts[0])] += int(parts[1])
    except OSError:
        return []
    return sorted(((k, *v) for k, v in kinds.items()), key=lambda x: -x[2])


def table(mem):
    """The per-service lines and the sums, as printed by the benchmarks."""
    lines = ["  %-12s %8s %8s %8s %8s" % ("service", "VmRSS", "Pss", "anon", "threads")]
    for k in sorted(mem):
        v = mem[k]
        lines.append("  %-12s %8.1f %8.1f %8.1f %8d" % (k, v["rss"], v["pss"], v["anon"], v["threads"]))
    lines.append("  %-12s %8.1f %8.1f %8.1f %8d   (MiB)" % (
        "together", sum(v["rss"] for v in mem.values()), sum(v["pss"] for v in mem.values()),
        sum(v["anon"] for v in mem.values()), sum(v["threads"] for v in mem.values())))
    return "\n".join(lines)
