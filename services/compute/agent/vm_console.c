/* vm_console.c - console files that do not grow without bound. A guest's console is a
 * file the guest's process appends to (O_APPEND: the container's stdout, QEMU's
 * `-chardev file,append=on`, the sim driver's lines), read by the agent for its reports.
 * When it passes agent.console_max_bytes, the oldest bytes are cut off, keeping at least
 * the last half of the cap (and never less than what a report carries, VM_CONSOLE_MAX):
 * in place with fallocate(FALLOC_FL_COLLAPSE_RANGE) where the file system has it (ext4,
 * xfs: whole blocks, and an appending writer loses nothing), else by rewriting the tail
 * (a write landing during that rewrite may be lost; a console line, never an instance).
 * The bytes cut off so far are counted in `console.log.base`, so the console's total
 * (console_seq in the agent's reports) keeps growing as if nothing had been cut. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonutil.h"
#include "vm_state.h"

static uint64_t cap = 1024 * 1024;
static pthread_mutex_t trim_mu = PTHREAD_MUTEX_INITIALIZER;

void vm_console_cap_set(uint64_t bytes) { cap = bytes; }

static uint64_t read_base(const char *path)
{
    char p[PATH_MAX + 8], b[32] = "";
    snprintf(p, sizeof p, "%s.base", path);
    if (vm_read_small(p, b, sizeof b) < 0)
        return 0;
    return strtoull(b, NULL, 10);
}

/* Cut the head off path so that about keep bytes remain; base grows by what was cut. */
static int trim(const char *path, uint64_t keep, uint64_t *base, verr_t *e)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : verr_set(e, 500, "InternalError", "open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size <= keep) {
        close(fd);
        return 0;
    }
    uint64_t blk = sb.st_blksize > 0 ? (uint64_t)sb.st_blksize : 4096;
    uint64_t cut = ((uint64_t)sb.st_size - keep) / blk * blk;
    char p[PATH_MAX + 8], num[32];
    snprintf(p, sizeof p, "%s.base", path);
    /* counted before it is cut: a crash in between repeats a report, never goes back */
    int n = snprintf(num, sizeof num, "%" PRIu64 "\n", *base + cut);
    if (cut && vm_write_file(p, num, (size_t)n, VM_WRITE_DURABLE, e) < 0) {
        close(fd);
        return -1;
    }
    if (cut && fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, (off_t)cut) == 0) {
        *base += cut;
        close(fd);
        return 0;
    }
    /* no collapse here (tmpfs, overlay): rewrite the tail at the start */
    cut = (uint64_t)sb.st_size - keep;
    n = snprintf(num, sizeof num, "%" PRIu64 "\n", *base + cut);
    char *tail = xmalloc(keep);
    ssize_t r = pread(fd, tail, keep, (off_t)cut);
    int ok = r == (ssize_t)keep && vm_write_file(p, num, (size_t)n, VM_WRITE_DURABLE, e) == 0 && ftruncate(fd, 0) == 0 &&
             pwrite(fd, tail, keep, 0) == (ssize_t)keep;
    free(tail);
    close(fd);
    if (!ok)
        return e->code[0] ? -1 : verr_set(e, 500, "InternalError", "trimming %s: %s", path, strerror(errno));
    *base += cut;
    return 0;
}

int vm_console_tail(const char *path, size_t max, char **buf, size_t *len, uint64_t *total, verr_t *e)
{
    pthread_mutex_lock(&trim_mu);
    uint64_t base = read_base(path);
    struct stat sb;
    int have = lstat(path, &sb) == 0, absent = !have && errno == ENOENT;
    if (cap && have && (uint64_t)sb.st_size > cap) {
        uint64_t keep = cap / 2 > VM_CONSOLE_MAX ? cap / 2 : (cap > VM_CONSOLE_MAX ? cap : VM_CONSOLE_MAX);
        verr_t te = {0};
        if (trim(path, keep, &base, &te) < 0)   /* the console is still read and reported */
            fprintf(stderr, "virga-agent: console %s not trimmed: %s\n", path, te.message);
    } else if (max == 0 && ((have && S_ISREG(sb.st_mode)) || absent)) {
        /* only its length (the instance loop asks it of every instance at each report):
         * the stat says it, no open and read */
        pthread_mutex_unlock(&trim_mu);
        *buf = xstrdup("");
        *len = 0;
        *total = base + (have ? (uint64_t)sb.st_size : 0);
        return 0;
    }
    pthread_mutex_unlock(&trim_mu);
    if (vm_file_tail(path, max, buf, len, total, e) < 0)
        return -1;
    *total += base;
    return 0;
}
