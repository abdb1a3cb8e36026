/* fuzz_s3_chunked.c - libFuzzer target for the aws-chunked decoder
 * (services/objectstore/s3_chunked.c), which sees a tenant's body bytes as they arrive.
 * The first two input bytes choose the decoder (bit 0: signed chunks; bits 1-2: the
 * trailer announced, none / x-amz-checksum-crc32 / -crc64nvme / -sha256; bit 3: a declared
 * decoded length, the value of the second byte) and how the rest is cut into pieces
 * (bits 4-7: piece size 1, 2, 3, 7, 64, whole ...). The rest is the body. Whatever it is,
 * decoding must neither crash nor hang, must never hand out more bytes than came in, and
 * when it succeeds must have handed out exactly the declared length. The same bytes also
 * go through the Content-Encoding filter. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3_chunked.h"

struct sink {
    uint64_t total;
};

static int out(void *arg, const char *data, size_t len, verr_t *e)
{
    (void)data;
    (void)e;
    ((struct sink *)arg)->total += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const uint8_t key[SIGV4_KEY_LEN] = {7, 7, 7};
    static const char *const trailers[] = {NULL, "x-amz-checksum-crc32", "x-amz-checksum-crc64nvme",
                                           "x-amz-checksum-sha256"};
    static const size_t pieces[] = {1, 2, 3, 7, 64, 4096, 0, 0, 5, 11, 13, 256, 1000, 1, 2, 0};
    uint8_t mode = data[0];
    s3_chunked_opts_t o = {.key = mode & 1 ? key : NULL, .amz_date = "20260101T000000Z",
                           .scope = "20260101/us-east-1/s3/aws4_request",
                           .seed_signature = "0000000000000000000000000000000000000000000000000000000000000000",
                           .trailer = trailers[(mode >> 1) & 3], .decoded_length = mode & 8 ? data[1] : -1};
    const char *body = (const char *)data + 2;
    size_t len = size - 2, step = pieces[mode >> 4];
    if (!step)
        step = len ? len : 1;
    s3_chunked_t *c = s3_chunked_new(&o);
    struct sink s = {0};
    verr_t e;
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += step)
        rc = s3_chunked_feed(c, body + off, len - off < step ? len - off : step, out, &s, &e);
    if (rc == 0)
        rc = s3_chunked_finish(c, &e);
    if (s.total > len || s.total != s3_chunked_decoded(c))
        __builtin_trap();
    if (rc == 0 && o.decoded_length >= 0 && s.total != (uint64_t)o.decoded_length)
        __builtin_trap();
    if (rc == 0 && o.trailer && !s3_chunked_trailer(c))
        __builtin_trap();
    if (rc < 0 && !e.code[0])
        __builtin_trap();
    s3_chunked_free(c);

    char *enc = malloc(len + 1), filtered[128];
    if (!enc)
        abort();
    memcpy(enc, body, len);
    enc[len] = '\0';
    s3_chunked_content_encoding(enc, filtered, sizeof filtered);
    if (strnlen(filtered, sizeof filtered) == sizeof filtered)
        __builtin_trap();
    free(enc);
    return 0;
}
