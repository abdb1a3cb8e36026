/* s3_chunked.h - the aws-chunked payload (x-amz-content-sha256:
 * STREAMING-AWS4-HMAC-SHA256-PAYLOAD): the body is a series of
 *   <hex size>;chunk-signature=<64 hex>\r\n<size bytes>\r\n
 * ending with a zero-size chunk, each chunk signed over the previous chunk's signature
 * (the first over the request's own), so a body cannot be cut, reordered or altered. */
#ifndef VIRGA_S3_CHUNKED_H
#define VIRGA_S3_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "sigv4.h"

typedef struct s3_chunked s3_chunked_t;
typedef int (*s3_chunk_out_fn)(void *arg, const char *data, size_t len, verr_t *e);

s3_chunked_t *s3_chunked_new(const uint8_t key[SIGV4_KEY_LEN], const char *amz_date, const char *scope,
                             const char *seed_signature);
/* Decode bytes as they arrive; decoded payload goes to out. Errors:
 * IncompleteBody / InvalidRequest (malformed framing), SignatureDoesNotMatch. */
int s3_chunked_feed(s3_chunked_t *c, const char *buf, size_t len, s3_chunk_out_fn out, void *arg, verr_t *e);
/* The final zero-size chunk was seen and verified. */
int s3_chunked_finish(s3_chunked_t *c, verr_t *e);
uint64_t s3_chunked_decoded(const s3_chunked_t *c);
void s3_chunked_free(s3_chunked_t *c);   /* wipes the key; NULL is a no-op */

#endif
