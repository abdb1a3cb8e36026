/* test_s3_chunked.c - unit tests for services/objectstore/s3_chunked.c, the aws-chunked
 * decoder, on bodies built here as the SDKs build them: signed chunks (with and without a
 * signed trailer) and unsigned chunks with a trailer (the JavaScript SDK's stream PUT),
 * each fed whole, one byte at a time and in every piece size up to 97 bytes, giving the
 * payload and the trailer value exactly. Refused, with S3's code and never a crash: a
 * tampered chunk, trailer value or trailer signature (SignatureDoesNotMatch); a missing,
 * unannounced, doubled or renamed trailer, a signed trailer without its signature
 * (MalformedTrailerError); a payload longer or shorter than x-amz-decoded-content-length
 * (IncompleteBody); bad sizes, missing CRs, a size line too long, a missing signature, bytes
 * after the end (InvalidRequest); a body cut anywhere (IncompleteBody at finish); and once
 * failed it keeps failing. Also the Content-Encoding kept with an object (aws-chunked
 * dropped from the list). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3_chunked.h"
#include "sigv4.h"
#include "strbuf.h"

#define AMZ "20260101T000000Z"
#define SCOPE "20260101/us-east-1/s3/aws4_request"
#define SEED "5f6d1d5e1f8a9a3c2b0d4e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b"
#define EMPTY_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static uint8_t key[SIGV4_KEY_LEN];

static int setup(void **state)
{
    (void)state;
    sigv4_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20260101", "us-east-1", "s3", key);
    return 0;
}

/* How a body is built; the defaults make a well-formed one. */
typedef struct body_spec {
    int signed_;
    const char *trailer;       /* trailer name, NULL for none */
    const char *value;         /* its value */
    int tamper_chunk;          /* index of a chunk whose data is changed after signing, -1 none */
    int tamper_trailer;        /* the trailer value is changed after signing */
    int no_trailer_sig;        /* a signed trailer without x-amz-trailer-signature */
    int no_final_crlf;         /* end right after the last line */
} body_spec_t;

static void sign(const char *sts, char out[65])
{
    sigv4_sign(key, sts, out);
}

static char *build(const body_spec_t *b, const char *const *chunks, size_t n, size_t *len)
{
    strbuf_t s = {0};
    char prev[65];
    snprintf(prev, sizeof prev, "%s", SEED);
    for (size_t i = 0; i <= n; i++) {
        const char *c = i < n ? chunks[i] : "";
        size_t cl = strlen(c);
        char head[128];
        if (b->signed_) {
            char hash[65], sig[65];
            sigv4_sha256_hex(c, cl, hash);
            char *sts = xasprintf("AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s", AMZ, SCOPE, prev, EMPTY_HASH, hash);
            sign(sts, sig);
            free(sts);
            memcpy(prev, sig, sizeof sig);
            snprintf(head, sizeof head, "%zx;chunk-signature=%s\r\n", cl, sig);
        } else {
            snprintf(head, sizeof head, "%zx\r\n", cl);
        }
        strbuf_puts(&s, head);
        if (i < n) {
            strbuf_puts(&s, c);
            if ((int)i == b->tamper_chunk)
                s.s[s.len - 1] ^= 1;
            strbuf_puts(&s, "\r\n");
        }
    }
    if (b->trailer) {
        char line[256];
        snprintf(line, sizeof line, "%s:%s", b->trailer, b->value);
        if (b->signed_) {
            char canon[300], hash[65], sig[65];
            snprintf(canon, sizeof canon, "%s\n", line);
            sigv4_sha256_hex(canon, strlen(canon), hash);
            char *sts = xasprintf("AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s", AMZ, SCOPE, prev, hash);
            sign(sts, sig);
            free(sts);
            if (b->tamper_trailer)
                line[strlen(line) - 2] ^= 1;
            strbuf_puts(&s, line);
            strbuf_puts(&s, "\r\n");
            if (!b->no_trailer_sig) {
                strbuf_puts(&s, "x-amz-trailer-signature:");
                strbuf_puts(&s, sig);
                strbuf_puts(&s, "\r\n");
            }
        } else {
            strbuf_puts(&s, line);
            strbuf_puts(&s, "\r\n");
        }
    }
    if (!b->no_final_crlf)
        strbuf_puts(&s, "\r\n");
    *len = s.len;
    return s.s;
}

static int collect(void *arg, const char *data, size_t len, verr_t *e)
{
    (void)e;
    strbuf_put(arg, data, len);
    return 0;
}

static s3_chunked_t *decoder(int signed_, const char *trailer, int64_t declared)
{
    s3_chunked_opts_t o = {.key = signed_ ? key : NULL, .amz_date = AMZ, .scope = SCOPE, .seed_signature = SEED,
                           .trailer = trailer, .decoded_length = declared};
    return s3_chunked_new(&o);
}

/* Feed body in pieces of `piece` bytes (0: whole); 0 or -1 with e set. out gets the payload. */
static int decode(s3_chunked_t *c, const char *body, size_t len, size_t piece, strbuf_t *out, verr_t *e)
{
    strbuf_put(out, "", 0);
    size_t step = piece ? piece : len;
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        if (s3_chunked_feed(c, body + off, n, collect, out, e) < 0)
            return -1;
    }
    return s3_chunked_finish(c, e);
}

static const char *const chunks3[] = {"The quick brown fox ", "jumps over the lazy dog", "!"};
#define PAYLOAD "The quick brown fox jumps over the lazy dog!"

/* Decode spec'd body with every piece size and expect success with PAYLOAD. */
static void expect_ok(const body_spec_t *b, const char *trailer_name, const char *want_trailer)
{
    size_t len;
    char *body = build(b, chunks3, 3, &len);
    for (size_t piece = 0; piece <= 97; piece++) {
        s3_chunked_t *c = decoder(b->signed_, trailer_name, (int64_t)strlen(PAYLOAD));
        strbuf_t out = {0};
        verr_t e = {0};
        int rc = decode(c, body, len, piece, &out, &e);
        if (rc)
            fail_msg("piece %zu: %s %s", piece, e.code, e.message);
        assert_string_equal(out.s, PAYLOAD);
        assert_int_equal(s3_chunked_decoded(c), strlen(PAYLOAD));
        if (want_trailer)
            assert_string_equal(s3_chunked_trailer(c), want_trailer);
        else
            assert_null(s3_chunked_trailer(c));
        free(out.s);
        s3_chunked_free(c);
    }
    free(body);
}

/* Decode and expect code, whole and byte by byte. */
static void expect_fail(const char *body, size_t len, int signed_, const char *trailer, int64_t declared,
                        const char *code)
{
    for (size_t piece = 0; piece <= 1; piece++) {
        s3_chunked_t *c = decoder(signed_, trailer, declared);
        strbuf_t out = {0};
        verr_t e = {0};
        assert_int_equal(decode(c, body, len, piece, &out, &e), -1);
        assert_string_equal(e.code, code);
        verr_t again = {0};   /* a failed decoder keeps failing */
        assert_int_equal(s3_chunked_feed(c, "0\r\n", 3, collect, &out, &again), -1);
        assert_string_equal(again.code, code);
        assert_int_equal(s3_chunked_finish(c, &again), -1);
        free(out.s);
        s3_chunked_free(c);
    }
}

static void test_signed(void **state)
{
    (void)state;
    body_spec_t b = {.signed_ = 1, .tamper_chunk = -1};
    expect_ok(&b, NULL, NULL);
    b.no_final_crlf = 1;   /* some clients stop after the last chunk line */
    expect_ok(&b, NULL, NULL);
}

static void test_signed_trailer(void **state)
{
    (void)state;
    body_spec_t b = {.signed_ = 1, .trailer = "x-amz-checksum-crc32", .value = "DUoRhQ==", .tamper_chunk = -1};
    expect_ok(&b, "x-amz-checksum-crc32", "DUoRhQ==");
    b.no_final_crlf = 1;
    expect_ok(&b, "x-amz-checksum-crc32", "DUoRhQ==");
}

static void test_unsigned_trailer(void **state)
{
    (void)state;
    body_spec_t b = {.trailer = "x-amz-checksum-crc64nvme", .value = "jSnVw/bqjr4=", .tamper_chunk = -1};
    expect_ok(&b, "x-amz-checksum-crc64nvme", "jSnVw/bqjr4=");
    /* exactly what the JavaScript SDK sends for a stream of "hello " "world" */
    const char js[] = "6\r\nhello \r\n5\r\nworld\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
    s3_chunked_t *c = decoder(0, "x-amz-checksum-crc32", 11);
    strbuf_t out = {0};
    verr_t e = {0};
    assert_int_equal(decode(c, js, sizeof js - 1, 0, &out, &e), 0);
    assert_string_equal(out.s, "hello world");
    assert_string_equal(s3_chunked_trailer(c), "DUoRhQ==");
    free(out.s);
    s3_chunked_free(c);
    /* unsigned chunks may carry extensions, which mean nothing */
    const char ext[] = "5;foo=bar\r\nhello\r\n0\r\n\r\n";
    c = decoder(0, NULL, 5);
    out = (strbuf_t){0};
    assert_int_equal(decode(c, ext, sizeof ext - 1, 1, &out, &e), 0);
    assert_string_equal(out.s, "hello");
    free(out.s);
    s3_chunked_free(c);
}

static void test_tampering(void **state)
{
    (void)state;
    size_t len;
    body_spec_t b = {.signed_ = 1, .tamper_chunk = 1};
    char *body = build(&b, chunks3, 3, &len);
    expect_fail(body, len, 1, NULL, -1, "SignatureDoesNotMatch");
    free(body);
    b = (body_spec_t){.signed_ = 1, .trailer = "x-amz-checksum-crc32", .value = "DUoRhQ==", .tamper_chunk = -1,
                      .tamper_trailer = 1};
    body = build(&b, chunks3, 3, &len);
    expect_fail(body, len, 1, "x-amz-checksum-crc32", -1, "SignatureDoesNotMatch");
    free(body);
    /* the trailer signature itself altered */
    b.tamper_trailer = 0;
    body = build(&b, chunks3, 3, &len);
    char *sig = strstr(body, "x-amz-trailer-signature:") + 24;
    sig[10] = sig[10] == 'a' ? 'b' : 'a';
    expect_fail(body, len, 1, "x-amz-checksum-crc32", -1, "SignatureDoesNotMatch");
    free(body);
    /* a signed body is not accepted as unsigned-with-signatures, nor the reverse */
    b = (body_spec_t){.tamper_chunk = -1};
    body = build(&b, chunks3, 3, &len);
    expect_fail(body, len, 1, NULL, -1, "InvalidRequest");
    free(body);
}

static void test_trailer_errors(void **state)
{
    (void)state;
    size_t len;
    /* signed trailer without its signature */
    body_spec_t b = {.signed_ = 1, .trailer = "x-amz-checksum-crc32", .value = "DUoRhQ==", .tamper_chunk = -1,
                     .no_trailer_sig = 1};
    char *body = build(&b, chunks3, 3, &len);
    expect_fail(body, len, 1, "x-amz-checksum-crc32", -1, "MalformedTrailerError");
    free(body);
    /* announced but absent */
    b = (body_spec_t){.tamper_chunk = -1};
    body = build(&b, chunks3, 3, &len);
    expect_fail(body, len, 0, "x-amz-checksum-crc32", -1, "MalformedTrailerError");
    free(body);
    /* present but not announced, or another one than announced */
    b = (body_spec_t){.trailer = "x-amz-checksum-crc32", .value = "DUoRhQ==", .tamper_chunk = -1};
    body = build(&b, chunks3, 3, &len);
    expect_fail(body, len, 0, NULL, -1, "MalformedTrailerError");
    expect_fail(body, len, 0, "x-amz-checksum-sha256", -1, "MalformedTrailerError");
    free(body);
    const char twice[] = "0\r\nx-amz-checksum-crc32:DUoRhQ==\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
    expect_fail(twice, sizeof twice - 1, 0, "x-amz-checksum-crc32", -1, "MalformedTrailerError");
    const char nocolon[] = "0\r\nx-amz-checksum-crc32 DUoRhQ==\r\n\r\n";
    expect_fail(nocolon, sizeof nocolon - 1, 0, "x-amz-checksum-crc32", -1, "MalformedTrailerError");
    const char empty[] = "0\r\nx-amz-checksum-crc32:\r\n\r\n";
    expect_fail(empty, sizeof empty - 1, 0, "x-amz-checksum-crc32", -1, "MalformedTrailerError");
    const char bare_lf[] = "0\r\nx-amz-checksum-crc32:DUoRhQ==\n\r\n";
    expect_fail(bare_lf, sizeof bare_lf - 1, 0, "x-amz-checksum-crc32", -1, "MalformedTrailerError");
    char longline[600];
    snprintf(longline, sizeof longline, "0\r\nx-amz-checksum-crc32:%0500d\r\n\r\n", 0);
    expect_fail(longline, strlen(longline), 0, "x-amz-checksum-crc32", -1, "MalformedTrailerError");
    /* an unsigned stream has no trailer signature to give */
    const char unsig[] = "0\r\nx-amz-trailer-signature:" SEED "\r\n\r\n";
    expect_fail(unsig, sizeof unsig - 1, 0, NULL, -1, "MalformedTrailerError");
}

static void test_declared_length(void **state)
{
    (void)state;
    size_t len;
    body_spec_t b = {.tamper_chunk = -1};
    char *body = build(&b, chunks3, 3, &len);
    expect_fail(body, len, 0, NULL, (int64_t)strlen(PAYLOAD) - 1, "IncompleteBody");   /* more than declared */
    expect_fail(body, len, 0, NULL, (int64_t)strlen(PAYLOAD) + 1, "IncompleteBody");   /* less */
    expect_fail(body, len, 0, NULL, 0, "IncompleteBody");
    free(body);
    const char none[] = "0\r\n\r\n";
    s3_chunked_t *c = decoder(0, NULL, 0);
    strbuf_t out = {0};
    verr_t e = {0};
    assert_int_equal(decode(c, none, sizeof none - 1, 0, &out, &e), 0);   /* an empty object */
    assert_int_equal(s3_chunked_decoded(c), 0);
    free(out.s);
    s3_chunked_free(c);
}

static void test_framing_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "g\r\nhello\r\n0\r\n\r\n",                    /* not hex */
        ";x\r\n0\r\n\r\n",                            /* no size */
        "5\nhello\r\n0\r\n\r\n",                      /* LF without CR */
        "5\r\nhelloXX0\r\n\r\n",                      /* no CRLF after the data */
        "5\r\nhello\rX0\r\n\r\n",
        "5\r\r\nhello\r\n0\r\n\r\n",                  /* stray CR */
        "11111111111111111\r\n",                      /* 17 digits */
        "fffffffffff\r\n",                            /* over 2^40 */
        "0\r\n\r\nmore",                              /* bytes after the end */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_fail(bad[i], strlen(bad[i]), 0, NULL, -1, "InvalidRequest");
    char longsize[300];
    memset(longsize, '0', sizeof longsize);
    memcpy(longsize + sizeof longsize - 2, "\r\n", 2);
    expect_fail(longsize, sizeof longsize, 0, NULL, -1, "InvalidRequest");
    /* signed chunks must carry their signature, a 64-hex one */
    const char nosig[] = "5\r\nhello\r\n0\r\n\r\n";
    expect_fail(nosig, sizeof nosig - 1, 1, NULL, -1, "InvalidRequest");
    const char shortsig[] = "5;chunk-signature=abc\r\nhello\r\n";
    expect_fail(shortsig, sizeof shortsig - 1, 1, NULL, -1, "InvalidRequest");
}

static void test_cut_anywhere(void **state)
{
    (void)state;
    size_t len;
    body_spec_t b = {.signed_ = 1, .trailer = "x-amz-checksum-crc32", .value = "DUoRhQ==", .tamper_chunk = -1};
    char *body = build(&b, chunks3, 3, &len);
    /* every prefix that lacks a needed part fails at finish (IncompleteBody or, when
     * only the trailer is missing, MalformedTrailerError), never succeeds, never crashes */
    size_t complete_from = len - 2;   /* the closing empty line may be left out */
    for (size_t cut = 0; cut < complete_from; cut++) {
        s3_chunked_t *c = decoder(1, "x-amz-checksum-crc32", -1);
        strbuf_t out = {0};
        verr_t e = {0};
        int rc = decode(c, body, cut, 0, &out, &e);
        if (rc == 0)
            fail_msg("a body cut at %zu of %zu was accepted", cut, len);
        assert_true(!strcmp(e.code, "IncompleteBody") || !strcmp(e.code, "MalformedTrailerError"));
        free(out.s);
        s3_chunked_free(c);
    }
    free(body);
}

static void test_content_encoding(void **state)
{
    (void)state;
    char out[64];
    s3_chunked_content_encoding("aws-chunked", out, sizeof out);
    assert_string_equal(out, "");
    s3_chunked_content_encoding("aws-chunked,gzip", out, sizeof out);
    assert_string_equal(out, "gzip");
    s3_chunked_content_encoding("gzip, AWS-Chunked , br", out, sizeof out);
    assert_string_equal(out, "gzip,br");
    s3_chunked_content_encoding("gzip", out, sizeof out);
    assert_string_equal(out, "gzip");
    s3_chunked_content_encoding("", out, sizeof out);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed),           cmocka_unit_test(test_signed_trailer),
        cmocka_unit_test(test_unsigned_trailer), cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_trailer_errors),   cmocka_unit_test(test_declared_length),
        cmocka_unit_test(test_framing_errors),   cmocka_unit_test(test_cut_anywhere),
        cmocka_unit_test(test_content_encoding),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
