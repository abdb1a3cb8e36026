/* bigbuf.h - a text of megabytes written once, sent, and let go (a DescribeInstances
 * page's XML: 2.6 MB for a page of 1,000), in a mapping of its own whose 2 MiB blocks
 * the kernel is asked to back with transparent huge pages.
 *
 * Why: such a buffer is fresh memory at every page (the trim after a burst gives a
 * page's memory back before the next one comes: docs/performance.md, page8), and the
 * kernel faulting it in 4 KiB at a time was about 1.7 us a page, 650 faults for the XML
 * of a page of 1,000: a millisecond of the gateway's CPU a page. A huge page is one
 * fault for 2 MiB (about 0.1 ms for the whole XML, tests/bench's numbers in
 * docs/performance.md, page12). Its own mapping, so that nothing else of the heap is
 * ever on a huge page (a small block there would keep 2 MiB resident), and it is given
 * back whole the moment it is freed, without waiting for a trim. */
#ifndef VIRGA_BIGBUF_H
#define VIRGA_BIGBUF_H

#include <stddef.h>

#include "strbuf.h"

/* Below this a buffer is malloc's: a mapping of its own would cost more than it saves. */
#define BIGBUF_MIN_BYTES (1024u * 1024u)

/* Moves b to a mapping of its own with room for cap bytes (b grows by remapping:
 * strbuf's puts work as ever): b is empty, or malloc's, whose text is carried over and
 * freed. The 2 MiB blocks that expect bytes (the caller's guess of what it will write)
 * fill at least half of are advised as huge pages: a block's unwritten part is resident
 * while the buffer lives. Free b->s with bigbuf_free (bigbuf_free_of). */
void bigbuf_start(strbuf_t *b, size_t cap, size_t expect);

/* Unmaps a bigbuf_start buffer's text (its s); NULL is a no-op. */
void bigbuf_free(void *s);

/* How b's text is freed, for whoever takes it: bigbuf_free for bigbuf_start's, else free. */
void (*bigbuf_free_of(const strbuf_t *b))(void *);

#endif
