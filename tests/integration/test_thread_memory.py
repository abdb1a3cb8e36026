"""What every thread of a service costs in memory before it does anything: its static
thread-local storage. glibc zeroes a thread's static TLS block at the thread's start, so
all of it is resident in every thread, whether the thread ever touches it or not; a
`static __thread char buf[65536]` in common/transfer.c was 64 KiB in each of the agent's
31 and the image service's 26 threads, 3.5 MiB of issue 11's 150 MiB for all services
(docs/performance.md, tail12). Read from the binaries' ELF program headers (PT_TLS), so
it needs no cloud. librdkafka's own buffers are about 15 KiB of it; the bound leaves room
for that and for small per-thread state, not for buffers."""
import os
import struct

import pytest

from harness import BIN

SERVICES = ("virga-gateway", "virga-identity", "virga-compute", "virga-image", "virga-network",
            "virga-objectstore", "virga-accounting", "virga-agent")
TLS_BOUND = 24 * 1024
PT_TLS = 7


def static_tls_bytes(path):
    """The memory size of the executable's PT_TLS segment (0 when it has none)."""
    with open(path, "rb") as f:
        head = f.read(64)
        assert head[:4] == b"\x7fELF" and head[4] == 2, "%s is not a 64-bit ELF file" % path
        end = "<" if head[5] == 1 else ">"
        phoff, = struct.unpack_from(end + "Q", head, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, = struct.unpack_from(end + "I", table, i * phentsize)
        if p_type == PT_TLS:
            memsz, = struct.unpack_from(end + "Q", table, i * phentsize + 0x28)
            return memsz
    return 0


@pytest.mark.parametrize("name", SERVICES)
def test_a_threads_static_tls_is_small(name):
    path = os.path.join(BIN, name)
    size = static_tls_bytes(path)
    assert 0 < size <= TLS_BOUND, (
        "%s has %d bytes of static thread-local storage (bound %d): every thread of it keeps "
        "that much resident; put buffers on the heap or the stack, not in __thread arrays"
        % (name, size, TLS_BOUND))
