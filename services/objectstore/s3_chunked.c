/* s3_chunked.c - aws-chunked decoding with per-chunk signature verification. */
#include "s3_chunked.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

enum state { HEADER, DATA, DATA_CRLF, DONE };

struct s3_chunked {
    uint8_t key[SIGV4_KEY_LEN];
    char amz_date[17];
    char scope[160];
    char prev_sig[65];
    enum state st;
    char hdr[160];            /* the chunk header line being read */
    size_t hdr_len;
    uint64_t left;            /* data bytes left in this chunk */
    uint64_t size;
    char sig[65];             /* this chunk's declared signature */
    crypto_hash_sha256_state h;
    int crlf_seen;
    uint64_t decoded;
};

s3_chunked_t *s3_chunked_new(const uint8_t key[SIGV4_KEY_LEN], const char *amz_date, const char *scope,
                             const char *seed_signature)
{
    s3_chunked_t *c = xcalloc(1, sizeof *c);
    memcpy(c->key, key, SIGV4_KEY_LEN);
    snprintf(c->amz_date, sizeof c->amz_date, "%s", amz_date);
    snprintf(c->scope, sizeof c->scope, "%s", scope);
    snprintf(c->prev_sig, sizeof c->prev_sig, "%s", seed_signature);
    return c;
}

uint64_t s3_chunked_decoded(const s3_chunked_t *c) { return c->decoded; }

void s3_chunked_free(s3_chunked_t *c)
{
    if (!c)
        return;
    sodium_memzero(c, sizeof *c);
    free(c);
}

static int parse_header(s3_chunked_t *c, verr_t *e)
{
    c->hdr[c->hdr_len] = 0;
    char *semi = strchr(c->hdr, ';');
    if (!semi || strncmp(semi, ";chunk-signature=", 17) || strlen(semi + 17) != 64)
        return verr_set(e, 400, "InvalidRequest", "malformed aws-chunked chunk header");
    uint64_t size = 0;
    for (char *p = c->hdr; p < semi; p++) {
        int d = hex_digit_value((unsigned char)*p);
        if (d < 0 || size > (1ULL << 40))
            return verr_set(e, 400, "InvalidRequest", "malformed aws-chunked chunk size");
        size = size * 16 + (uint64_t)d;
    }
    if (semi == c->hdr)
        return verr_set(e, 400, "InvalidRequest", "malformed aws-chunked chunk size");
    memcpy(c->sig, semi + 17, 65);
    c->size = c->left = size;
    crypto_hash_sha256_init(&c->h);
    return 0;
}

/* string to sign: AWS4-HMAC-SHA256-PAYLOAD \n date \n scope \n prev \n hash("") \n hash(data) */
static int verify_chunk(s3_chunked_t *c, verr_t *e)
{
    unsigned char digest[32];
    char hex[65];
    crypto_hash_sha256_final(&c->h, digest);
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    char *sts = xasprintf("AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n"
                          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n%s",
                          c->amz_date, c->scope, c->prev_sig, hex);
    char want[65];
    sigv4_sign(c->key, sts, want);
    free(sts);
    if (sodium_memcmp(want, c->sig, 64) != 0)
        return verr_set(e, 403, "SignatureDoesNotMatch", "The chunk signature we calculated does not match the signature you provided.");
    memcpy(c->prev_sig, want, 65);
    return 0;
}

int s3_chunked_feed(s3_chunked_t *c, const char *buf, size_t len, s3_chunk_out_fn out, void *arg, verr_t *e)
{
    size_t i = 0;
    while (i < len) {
        switch (c->st) {
        case HEADER: {
            char ch = buf[i++];
            if (ch == '\n') {
                if (c->hdr_len == 0 || c->hdr[c->hdr_len - 1] != '\r')
                    return verr_set(e, 400, "InvalidRequest", "malformed aws-chunked framing");
                c->hdr_len--;
                if (parse_header(c, e) < 0)
                    return -1;
                c->hdr_len = 0;
                c->st = DATA;
                if (c->size == 0) {   /* the last chunk signs the empty string */
                    if (verify_chunk(c, e) < 0)
                        return -1;
                    c->st = DONE;
                }
            } else if (c->hdr_len + 1 >= sizeof c->hdr) {
                return verr_set(e, 400, "InvalidRequest", "aws-chunked chunk header too long");
            } else {
                c->hdr[c->hdr_len++] = ch;
            }
            break;
        }
        case DATA: {
            size_t n = len - i < c->left ? len - i : (size_t)c->left;
            crypto_hash_sha256_update(&c->h, (const unsigned char *)buf + i, n);
            if (out && out(arg, buf + i, n, e) < 0)
                return -1;
            c->decoded += n;
            c->left -= n;
            i += n;
            if (c->left == 0) {
                c->st = DATA_CRLF;
                c->crlf_seen = 0;
            }
            break;
        }
        case DATA_CRLF: {
            char ch = buf[i++];
            if ((c->crlf_seen == 0 && ch != '\r') || (c->crlf_seen == 1 && ch != '\n'))
                return verr_set(e, 400, "InvalidRequest", "malformed aws-chunked framing");
            if (++c->crlf_seen == 2) {
                if (verify_chunk(c, e) < 0)
                    return -1;
                c->st = HEADER;
            }
            break;
        }
        case DONE:
            i = len;   /* trailing CRLF (and trailers) after the final chunk */
            break;
        }
    }
    return 0;
}

int s3_chunked_finish(s3_chunked_t *c, verr_t *e)
{
    if (c->st != DONE)
        return verr_set(e, 400, "IncompleteBody", "The request body ended before the final aws-chunked chunk.");
    return 0;
}
