/* s3_chunked.c - aws-chunked decoding: framing, per-chunk and trailer signatures, the
 * announced trailer, and the declared decoded length (s3_chunked.h). A byte-at-a-time
 * state machine over whatever pieces the HTTP layer hands in, holding at most one line. */
#include "s3_chunked.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strbuf.h"

#define SIG_LEN 64
#define LINE_MAX_LEN 256          /* a chunk header or a trailer line */
#define MAX_CHUNK (1ULL << 40)
#define SIG_EXT ";chunk-signature="
#define TRAILER_SIG "x-amz-trailer-signature"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

enum state { SIZE_LINE, DATA, DATA_CR, DATA_LF, TRAILER_LINE, END, FAILED };

struct s3_chunked {
    int signed_;
    uint8_t key[SIGV4_KEY_LEN];
    char amz_date[17];
    char scope[160];
    char prev_sig[SIG_LEN + 1];
    char trailer[64];             /* announced trailer name, "" if none */
    int64_t declared;
    enum state st;
    char line[LINE_MAX_LEN];
    size_t line_len;
    int line_cr;                  /* the line so far ends with '\r' */
    uint64_t left;                /* data bytes left in this chunk */
    char sig[SIG_LEN + 1];        /* this chunk's declared signature */
    crypto_hash_sha256_state h;   /* this chunk's data */
    uint64_t decoded;
    char value[128];              /* the trailer's value once seen */
    int have_value, have_trailer_sig;
    char trailer_canon_hash[SIG_LEN + 1];
    verr_t err;                   /* the failure, repeated once failed */
};

s3_chunked_t *s3_chunked_new(const s3_chunked_opts_t *o)
{
    s3_chunked_t *c = xcalloc(1, sizeof *c);
    if (o->key) {
        c->signed_ = 1;
        memcpy(c->key, o->key, SIGV4_KEY_LEN);
        snprintf(c->amz_date, sizeof c->amz_date, "%s", o->amz_date ? o->amz_date : "");
        snprintf(c->scope, sizeof c->scope, "%s", o->scope ? o->scope : "");
        snprintf(c->prev_sig, sizeof c->prev_sig, "%s", o->seed_signature ? o->seed_signature : "");
    }
    snprintf(c->trailer, sizeof c->trailer, "%s", o->trailer ? o->trailer : "");
    c->declared = o->decoded_length;
    return c;
}

uint64_t s3_chunked_decoded(const s3_chunked_t *c) { return c->decoded; }

const char *s3_chunked_trailer(const s3_chunked_t *c)
{
    return c->st == END && c->have_value ? c->value : NULL;
}

void s3_chunked_free(s3_chunked_t *c)
{
    if (!c)
        return;
    sodium_memzero(c, sizeof *c);
    free(c);
}

/* Record the first failure; every later call repeats it. */
static int fail(s3_chunked_t *c, verr_t *e, int status, const char *code, const char *msg)
{
    c->st = FAILED;
    verr_set(&c->err, status, code, "%s", msg);
    if (e)
        *e = c->err;
    return -1;
}

static int framing(s3_chunked_t *c, verr_t *e, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof msg, "Malformed aws-chunked body: %s.", what);
    return fail(c, e, 400, "InvalidRequest", msg);
}

static int malformed_trailer(s3_chunked_t *c, verr_t *e)
{
    return fail(c, e, 400, "MalformedTrailerError",
                "The request contained trailing data that was not well-formed or did not conform to our published "
                "schema.");
}

static int incomplete(s3_chunked_t *c, verr_t *e)
{
    return fail(c, e, 400, "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length HTTP header.");
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* HMAC the string to sign and compare with the declared signature; on success the
 * chain moves on to it. */
static int check_sig(s3_chunked_t *c, const char *sts, const char *declared, verr_t *e)
{
    char want[SIG_LEN + 1];
    sigv4_sign(c->key, sts, want);
    if (sodium_memcmp(want, declared, SIG_LEN) != 0)
        return fail(c, e, 403, "SignatureDoesNotMatch",
                    "The chunk signature we calculated does not match the signature you provided.");
    memcpy(c->prev_sig, want, sizeof want);
    return 0;
}

/* string to sign: AWS4-HMAC-SHA256-PAYLOAD \n date \n scope \n prev \n hash("") \n hash(data) */
static int verify_chunk(s3_chunked_t *c, verr_t *e)
{
    if (!c->signed_)
        return 0;
    unsigned char digest[32];
    char hex[SIG_LEN + 1];
    crypto_hash_sha256_final(&c->h, digest);
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    char *sts = xasprintf("AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n" EMPTY_SHA256 "\n%s", c->amz_date, c->scope,
                          c->prev_sig, hex);
    int rc = check_sig(c, sts, c->sig, e);
    free(sts);
    return rc;
}

/* "<hex size>[;chunk-signature=<sig>]": signed chunks must carry exactly that extension;
 * unsigned ones may carry extensions, which mean nothing here. */
static int parse_size_line(s3_chunked_t *c, verr_t *e)
{
    const char *s = c->line, *semi = memchr(s, ';', c->line_len);
    size_t digits = semi ? (size_t)(semi - s) : c->line_len;
    if (digits == 0 || digits > 16)
        return framing(c, e, "bad chunk size");
    uint64_t size = 0;
    for (size_t i = 0; i < digits; i++) {
        int d = hex_digit_value((unsigned char)s[i]);
        if (d < 0)
            return framing(c, e, "bad chunk size");
        size = size * 16 + (uint64_t)d;
        if (size > MAX_CHUNK)
            return framing(c, e, "chunk too large");
    }
    if (c->signed_) {
        size_t rest = c->line_len - digits;
        if (!semi || rest != strlen(SIG_EXT) + SIG_LEN || strncmp(semi, SIG_EXT, strlen(SIG_EXT)) ||
            !is_lower_hex(semi + strlen(SIG_EXT), SIG_LEN))
            return framing(c, e, "a signed chunk needs ;chunk-signature=<64 hex digits>");
        memcpy(c->sig, semi + strlen(SIG_EXT), SIG_LEN);
        c->sig[SIG_LEN] = 0;
        crypto_hash_sha256_init(&c->h);
    }
    c->left = size;
    if (size > 0) {
        c->st = DATA;
        return 0;
    }
    if (verify_chunk(c, e) < 0)   /* the final chunk signs the empty string */
        return -1;
    c->st = TRAILER_LINE;
    return 0;
}

/* One trailer line "name:value" (value trimmed of blanks). */
static int trailer_line(s3_chunked_t *c, verr_t *e)
{
    const char *colon = memchr(c->line, ':', c->line_len);
    if (!colon || colon == c->line)
        return malformed_trailer(c, e);
    size_t nlen = (size_t)(colon - c->line);
    const char *v = colon + 1, *end = c->line + c->line_len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
    if (c->signed_ && nlen == strlen(TRAILER_SIG) && !strncasecmp(c->line, TRAILER_SIG, nlen)) {
        if (c->have_trailer_sig || vlen != SIG_LEN || !is_lower_hex(v, SIG_LEN))
            return malformed_trailer(c, e);
        /* AWS4-HMAC-SHA256-TRAILER \n date \n scope \n last chunk's signature \n
         * hash of the canonical trailers ("name:value\n" each; none when absent) */
        if (!c->have_value) {
            unsigned char d[32];
            crypto_hash_sha256(d, (const unsigned char *)"", 0);
            sodium_bin2hex(c->trailer_canon_hash, sizeof c->trailer_canon_hash, d, sizeof d);
        }
        char declared[SIG_LEN + 1];
        memcpy(declared, v, SIG_LEN);
        declared[SIG_LEN] = 0;
        char *sts = xasprintf("AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s", c->amz_date, c->scope, c->prev_sig,
                              c->trailer_canon_hash);
        int rc = check_sig(c, sts, declared, e);
        free(sts);
        c->have_trailer_sig = 1;
        return rc;
    }
    if (!c->trailer[0] || c->have_value || c->have_trailer_sig || nlen != strlen(c->trailer) ||
        strncasecmp(c->line, c->trailer, nlen) || vlen == 0 || vlen >= sizeof c->value)
        return malformed_trailer(c, e);
    memcpy(c->value, v, vlen);
    c->value[vlen] = 0;
    c->have_value = 1;
    char *canon = xasprintf("%s:%s\n", c->trailer, c->value);
    unsigned char d[32];
    crypto_hash_sha256(d, (const unsigned char *)canon, strlen(canon));
    free(canon);
    sodium_bin2hex(c->trailer_canon_hash, sizeof c->trailer_canon_hash, d, sizeof d);
    return 0;
}

/* The trailer section is over: what was announced came, signed when it had to be. */
static int trailers_done(s3_chunked_t *c, verr_t *e)
{
    if (c->trailer[0] && !c->have_value)
        return malformed_trailer(c, e);
    if (c->signed_ && c->have_value && !c->have_trailer_sig)
        return malformed_trailer(c, e);
    c->st = END;
    return 0;
}

/* A complete line in c->line (without CRLF). */
static int line_done(s3_chunked_t *c, verr_t *e)
{
    if (c->st == SIZE_LINE)
        return parse_size_line(c, e);
    if (c->line_len == 0)
        return trailers_done(c, e);
    return trailer_line(c, e);
}

/* Lines end with CRLF; a bare LF or a CR inside a line is malformed. */
static int line_byte(s3_chunked_t *c, char ch, verr_t *e)
{
    if (ch == '\n') {
        if (!c->line_cr)
            return c->st == SIZE_LINE ? framing(c, e, "lines must end with CRLF") : malformed_trailer(c, e);
        c->line_cr = 0;
        int rc = line_done(c, e);
        c->line_len = 0;
        return rc;
    }
    if (c->line_cr)
        return c->st == SIZE_LINE ? framing(c, e, "stray CR") : malformed_trailer(c, e);
    if (ch == '\r') {
        c->line_cr = 1;
        return 0;
    }
    if (c->line_len + 1 >= sizeof c->line)
        return c->st == SIZE_LINE ? framing(c, e, "chunk header too long") : malformed_trailer(c, e);
    c->line[c->line_len++] = ch;
    return 0;
}

int s3_chunked_feed(s3_chunked_t *c, const char *buf, size_t len, s3_chunk_out_fn out, void *arg, verr_t *e)
{
    size_t i = 0;
    while (i < len) {
        switch (c->st) {
        case SIZE_LINE:
        case TRAILER_LINE:
            if (line_byte(c, buf[i++], e) < 0)
                return -1;
            break;
        case DATA: {
            size_t n = len - i < c->left ? len - i : (size_t)c->left;
            if (c->declared >= 0 && c->decoded + n > (uint64_t)c->declared)
                return incomplete(c, e);
            if (c->signed_)
                crypto_hash_sha256_update(&c->h, (const unsigned char *)buf + i, n);
            if (out && out(arg, buf + i, n, e) < 0) {
                c->st = FAILED;
                c->err = *e;
                return -1;
            }
            c->decoded += n;
            c->left -= n;
            i += n;
            if (c->left == 0)
                c->st = DATA_CR;
            break;
        }
        case DATA_CR:
            if (buf[i++] != '\r')
                return framing(c, e, "chunk data must be followed by CRLF");
            c->st = DATA_LF;
            break;
        case DATA_LF:
            if (buf[i++] != '\n')
                return framing(c, e, "chunk data must be followed by CRLF");
            if (verify_chunk(c, e) < 0)
                return -1;
            c->st = SIZE_LINE;
            break;
        case END:
            return framing(c, e, "data after the end of the body");
        case FAILED:
            if (e)
                *e = c->err;
            return -1;
        }
    }
    return 0;
}

int s3_chunked_finish(s3_chunked_t *c, verr_t *e)
{
    if (c->st == FAILED) {
        if (e)
            *e = c->err;
        return -1;
    }
    /* Some clients end the body right after the last chunk or the last trailer line,
     * without the closing empty line: what was needed has arrived. */
    if (c->st == TRAILER_LINE && c->line_len == 0 && !c->line_cr && trailers_done(c, e) < 0)
        return -1;
    if (c->st != END)
        return fail(c, e, 400, "IncompleteBody", "The request body ended before the final aws-chunked chunk.");
    if (c->declared >= 0 && c->decoded != (uint64_t)c->declared)
        return incomplete(c, e);
    return 0;
}

void s3_chunked_content_encoding(const char *in, char *out, size_t outsz)
{
    size_t o = 0;
    out[0] = '\0';
    while (*in) {
        in += strspn(in, " ,");
        size_t n = strcspn(in, ",");
        size_t t = n;
        while (t && in[t - 1] == ' ')
            t--;
        if (t && !(t == 11 && !strncasecmp(in, "aws-chunked", 11)) && o + t + 2 < outsz) {
            if (o)
                out[o++] = ',';
            memcpy(out + o, in, t);
            o += t;
            out[o] = '\0';
        }
        in += n;
    }
}
