/* s3_chunked.h - the aws-chunked payload (Content-Encoding: aws-chunked), in each of the
 * forms the SDKs send (x-amz-content-sha256):
 *
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD          signed chunks
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER  signed chunks, then a signed trailer
 *   STREAMING-UNSIGNED-PAYLOAD-TRAILER          plain chunks, then a trailer
 *
 * The body is a series of  <hex size>[;chunk-signature=<64 hex>]\r\n<size bytes>\r\n
 * ending with a zero-size chunk, then either \r\n or trailer lines ("name:value\r\n",
 * with "x-amz-trailer-signature:<64 hex>\r\n" when signed) and an empty line. Each chunk
 * signature is over the previous one (the first over the request's own), and the trailer
 * signature over the last chunk's, so a body can be neither cut, reordered, altered nor
 * given another trailer. Memory is bounded (one header line) whatever the input. */
#ifndef VIRGA_S3_CHUNKED_H
#define VIRGA_S3_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "sigv4.h"

typedef struct s3_chunked s3_chunked_t;
typedef int (*s3_chunk_out_fn)(void *arg, const char *data, size_t len, verr_t *e);

typedef struct s3_chunked_opts {
    const uint8_t *key;           /* SigV4 signing key: chunks (and trailer) signed; NULL: unsigned */
    const char *amz_date;         /* signed only: the request's x-amz-date, */
    const char *scope;            /* its credential scope */
    const char *seed_signature;   /* and its signature */
    const char *trailer;          /* the one trailer announced in x-amz-trailer (lowercase), or NULL */
    int64_t decoded_length;       /* x-amz-decoded-content-length, or -1 when not given */
} s3_chunked_opts_t;

s3_chunked_t *s3_chunked_new(const s3_chunked_opts_t *o);
/* Decode bytes as they arrive; decoded payload goes to out. Errors: InvalidRequest
 * (malformed framing), IncompleteBody (more payload than x-amz-decoded-content-length),
 * SignatureDoesNotMatch, MalformedTrailerError. Once it failed, it fails again. */
int s3_chunked_feed(s3_chunked_t *c, const char *buf, size_t len, s3_chunk_out_fn out, void *arg, verr_t *e);
/* At the end of the body: the final chunk, the trailer (and its signature) were seen,
 * and the payload has the declared length (else IncompleteBody / MalformedTrailerError). */
int s3_chunked_finish(s3_chunked_t *c, verr_t *e);
uint64_t s3_chunked_decoded(const s3_chunked_t *c);
/* The announced trailer's value (after a successful finish), NULL if none. */
const char *s3_chunked_trailer(const s3_chunked_t *c);
void s3_chunked_free(s3_chunked_t *c);   /* wipes the key; NULL is a no-op */

/* Content-Encoding as stored with the object: the list without its aws-chunked token
 * (a transfer matter, as S3 treats it), into out; "" when nothing else is left. */
void s3_chunked_content_encoding(const char *in, char *out, size_t outsz);

#endif
