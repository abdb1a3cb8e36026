/* bigbuf.c - a buffer in a mapping of its own, on huge pages (bigbuf.h). The mapping's
 * size is kept in its first bytes, before the text, so bigbuf_free needs only the text's
 * address (what a response or a message hands back). */
#include "bigbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"

#define HUGE_BYTES (2UL << 20)
#define HEAD 64   /* the mapping's size, then the text at an aligned address */

/* as the allocators of err.h: the process cannot go on without the memory */
static void oom(size_t n)
{
    fprintf(stderr, "virga: out of memory mapping %zu bytes\n", n);
    abort();
}

static size_t page_round(size_t n)
{
    size_t p = (size_t)sysconf(_SC_PAGESIZE);
    return (n + p - 1) / p * p;
}

/* size bytes (page-rounded) at a 2 MiB boundary: a mapping of size + 2 MiB, its ends cut */
static char *map_aligned(size_t size)
{
    size_t len = size + HUGE_BYTES;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        oom(len);
    char *a = (char *)(((uintptr_t)p + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (p + len > a + size)
        munmap(a + size, (size_t)(p + len - (a + size)));
    return a;
}

/* The 2 MiB blocks expect bytes fill at least half of: a block's unwritten part is
 * resident while the buffer lives. */
static size_t huge_part(size_t expect)
{
    return (expect + HEAD + HUGE_BYTES / 2) / HUGE_BYTES * HUGE_BYTES;
}

static void advise(char *base, size_t size, size_t expect);

/* A text outgrowing its room (rare: the callers reserve what they expect, and more) moves
 * to a new mapping: mremap cannot move one whose huge-page advice split it in two. */
static char *grow(char *s, size_t cap)
{
    char *base = s - HEAD;
    size_t old = *(size_t *)base, size = page_round(cap + HEAD);
    if (size <= old)
        return s;
    char *to = map_aligned(size);
    advise(to, size, size);
    *(size_t *)to = size;
    memcpy(to + HEAD, s, old - HEAD);
    munmap(base, old);
    return to + HEAD;
}

/* Huge pages for huge_part(expect), at most the mapping's size. */
static void advise(char *base, size_t size, size_t expect)
{
    size_t huge = huge_part(expect);
    if (huge > size)
        huge = size / HUGE_BYTES * HUGE_BYTES;
    /* advice only: without huge pages (THP off, none free) it is 4 KiB pages as before */
    if (huge && madvise(base, huge, MADV_HUGEPAGE) < 0)
        log_debug("bigbuf: no huge pages (madvise: %m)");
}

void bigbuf_start(strbuf_t *b, size_t cap, size_t expect)
{
    size_t huge = huge_part(expect);
    size_t size = page_round(cap + HEAD);
    if (size < huge)
        size = huge;
    if (size < page_round(b->len + 1 + HEAD))
        size = page_round(b->len + 1 + HEAD);
    char *base = map_aligned(size);
    advise(base, size, expect);   /* before the first write: a block touched before it stays on 4 KiB pages */
    *(size_t *)base = size;
    char *text = base + HEAD;
    if (b->s)
        memcpy(text, b->s, b->len);
    text[b->len] = 0;
    free(b->s);
    b->s = text;
    b->cap = size - HEAD;
    b->grow = grow;
}

void (*bigbuf_free_of(const strbuf_t *b))(void *)
{
    return b->grow == grow ? bigbuf_free : free;
}

void bigbuf_free(void *s)
{
    if (!s)
        return;
    char *base = (char *)s - HEAD;
    munmap(base, *(size_t *)base);
}
