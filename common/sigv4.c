/* sigv4.c - AWS Signature Version 4 as the EC2 Query gateway and the S3 server verify
 * it: canonical request, string to sign, key derivation, parsing of the Authorization
 * header and of presigned query parameters, the time window, and the constant-time
 * comparison. Canonicalisation follows what botocore (awscli, boto3) actually signs,
 * because a byte of difference means SignatureDoesNotMatch for a correct client.
 * Everything read from the request is untrusted: lengths are checked before copying
 * and no input can make a parser read or write past its buffers. */
#include "sigv4.h"
#include "strbuf.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define TERMINATOR "aws4_request"
#define MAX_EXPIRES 604800L
#define SIG_HEX 64

/* ---- small helpers ------------------------------------------------------------- */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

static void sodium_setup(void)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "virga: sodium_init failed\n");
        abort();
    }
}

static void crypto_ready(void)
{
    pthread_once(&sodium_once, sodium_setup);
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* ASCII-only classes: <ctype.h> depends on the locale and on signedness of char. */
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_ws(int c) { return c == ' ' || c == '\t'; }

static int unreserved(int c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* n bytes at s equal the NUL-terminated lit */
static int span_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static void buf_pct(strbuf_t *b, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    char t[3] = {'%', hex[c >> 4], hex[c & 15]};
    strbuf_put(b, t, 3);
}

/* ---- hashing ------------------------------------------------------------------- */

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];

    crypto_ready();
    crypto_hash_sha256(h, data ? data : (const void *)"", data ? len : 0);
    sodium_bin2hex(out, 65, h, sizeof h);
}

/* The streaming API because crypto_auth_hmacsha256() insists on a 32-byte key and
 * the first SigV4 key, "AWS4" + secret, is longer. */
void sigv4_hmac(const uint8_t *key, size_t keylen, const void *msg, size_t len, uint8_t out[32])
{
    crypto_auth_hmacsha256_state st;

    crypto_ready();
    crypto_auth_hmacsha256_init(&st, key ? key : (const uint8_t *)"", key ? keylen : 0);
    crypto_auth_hmacsha256_update(&st, msg ? msg : (const void *)"", msg ? len : 0);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

static void hmac_str(const uint8_t key[32], const char *msg, uint8_t out[32])
{
    sigv4_hmac(key, 32, msg, strlen(msg), out);
}

void sigv4_signing_key(const char *secret, const char *date, const char *region,
                       const char *service, uint8_t out[SIGV4_KEY_LEN])
{
    char *k0 = xasprintf("AWS4%s", nz(secret));
    size_t k0len = strlen(k0);
    uint8_t kdate[32], kregion[32], kservice[32];

    sigv4_hmac((const uint8_t *)k0, k0len, nz(date), strlen(nz(date)), kdate);
    hmac_str(kdate, nz(region), kregion);
    hmac_str(kregion, nz(service), kservice);
    hmac_str(kservice, TERMINATOR, out);
    /* Intermediate keys are as good as the secret for that day: do not leave them. */
    sodium_memzero(k0, k0len);
    free(k0);
    sodium_memzero(kdate, sizeof kdate);
    sodium_memzero(kregion, sizeof kregion);
    sodium_memzero(kservice, sizeof kservice);
}

void sigv4_sign(const uint8_t key[SIGV4_KEY_LEN], const char *string_to_sign, char out[65])
{
    uint8_t mac[32];

    sigv4_hmac(key, SIGV4_KEY_LEN, nz(string_to_sign), strlen(nz(string_to_sign)), mac);
    sodium_bin2hex(out, 65, mac, sizeof mac);
}

/* ---- encoding ------------------------------------------------------------------ */

char *sigv4_uri_encode(const char *s, size_t len, int keep_slash)
{
    strbuf_t b = {0};

    strbuf_put(&b, "", 0);
    for (size_t i = 0; s && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/'))
            strbuf_putc(&b, (char)c);
        else
            buf_pct(&b, c);
    }
    return b.s;
}

/* Decode %XX escapes of s[0..n) into a new buffer (NUL-terminated; *outlen excludes
 * the NUL, and the data may hold NULs of its own). '+' stays '+': SigV4 clients send
 * spaces as %20, so a '+' on the wire is a plus. NULL if a '%' lacks two hex digits. */
static char *pct_decode(const char *s, size_t n, size_t *outlen)
{
    char *out = xmalloc(n + 1);
    size_t j = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[j++] = s[i];
            continue;
        }
        if (i + 2 < n) {
            int hi = hex_digit_value((unsigned char)s[i + 1]);
            int lo = hex_digit_value((unsigned char)s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out[j++] = (char)(hi << 4 | lo);
                i += 2;
                continue;
            }
        }
        free(out);
        return NULL;
    }
    out[j] = '\0';
    if (outlen)
        *outlen = j;
    return out;
}

/* Decode and re-encode: the canonical form of an already-encoded string. */
static char *recode(const char *s, size_t n)
{
    size_t dlen;
    char *d = pct_decode(s, n, &dlen);
    if (!d)
        return NULL;
    char *enc = sigv4_uri_encode(d, dlen, 0);
    free(d);
    return enc;
}

/* ---- canonical URI ------------------------------------------------------------- */

/* botocore's remove_dot_segments(): drop "." and empty segments (AWS also wants
 * repeated slashes collapsed), let ".." pop, keep a leading and a trailing slash. */
static char *normalise_path(const char *path)
{
    size_t n = strlen(path);
    size_t nseg = 0;
    const char **seg = xmalloc((n / 2 + 2) * sizeof *seg);
    size_t *seglen = xmalloc((n / 2 + 2) * sizeof *seglen);
    strbuf_t b = {0};

    for (const char *p = path; *p;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (span_eq(p, len, "..")) {
            if (nseg > 0)
                nseg--;
        } else if (len > 0 && !span_eq(p, len, ".")) {
            seg[nseg] = p;
            seglen[nseg++] = len;
        }
        p = end ? end + 1 : p + len;
    }
    strbuf_put(&b, "", 0);
    if (path[0] == '/')
        strbuf_putc(&b, '/');
    for (size_t i = 0; i < nseg; i++) {
        if (i > 0)
            strbuf_putc(&b, '/');
        strbuf_put(&b, seg[i], seglen[i]);
    }
    if (n > 0 && path[n - 1] == '/' && nseg > 0)
        strbuf_putc(&b, '/');
    free(seg);
    free(seglen);
    return b.s;
}

/* Non-S3: botocore signs quote(normalised_path, safe='/~') of the path it sends, which
 * is already percent-encoded, so every '%' becomes "%25" here: the double encoding the
 * SigV4 documentation asks of every service but S3. */
static char *canonical_uri_plain(const char *path)
{
    char *norm = normalise_path(path);
    char *enc = sigv4_uri_encode(norm, strlen(norm), 1);
    free(norm);
    if (!*enc) {
        free(enc);
        return xstrdup("/");
    }
    return enc;
}

/* S3: the path as sent, encoded once, but spelled canonically (%c3 -> %C3, %41 -> A,
 * raw bytes outside the unreserved set -> %XX). An escaped slash stays escaped: a
 * client that sent %2F signed it as part of a key, not as a separator. */
static char *canonical_uri_s3(const char *path, verr_t *e)
{
    strbuf_t b = {0};

    strbuf_put(&b, "", 0);
    for (size_t i = 0; path[i]; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == '%') {
            int hi = path[i + 1] ? hex_digit_value((unsigned char)path[i + 1]) : -1;
            int lo = hi >= 0 ? hex_digit_value((unsigned char)path[i + 2]) : -1;
            if (lo < 0) {
                free(b.s);
                verr_set(e, 400, "InvalidURI", "Couldn't parse the specified URI: bad "
                         "percent-encoding in the path");
                return NULL;
            }
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
            if (unreserved(c))
                strbuf_putc(&b, (char)c);
            else
                buf_pct(&b, c);
        } else if (c == '/' || unreserved(c)) {
            strbuf_putc(&b, (char)c);
        } else {
            buf_pct(&b, c);
        }
    }
    if (b.len == 0)
        strbuf_putc(&b, '/');
    return b.s;
}

/* ---- canonical query ----------------------------------------------------------- */

struct qparam {
    char *name, *value; /* both canonically encoded */
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static void qparams_free(struct qparam *q, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(q[i].name);
        free(q[i].value);
    }
    free(q);
}

/* Split "name=value" at the first '='; a missing '=' means an empty value. */
static void split_param(const char *p, size_t n, size_t *nlen, const char **v, size_t *vlen)
{
    const char *eq = memchr(p, '=', n);
    *nlen = eq ? (size_t)(eq - p) : n;
    *v = eq ? eq + 1 : p + n;
    *vlen = eq ? n - *nlen - 1 : 0;
}

static char *canonical_query(const char *query, verr_t *e)
{
    struct qparam *q = NULL;
    size_t nq = 0, capq = 0;

    for (const char *p = nz(query); *p;) {
        const char *piece = p, *v;
        size_t len = strcspn(p, "&"), nlen, vlen;
        p += len;
        if (*p == '&')
            p++;
        if (len == 0)
            continue;
        split_param(piece, len, &nlen, &v, &vlen);
        char *name = recode(piece, nlen);
        char *value = recode(v, vlen);
        if (!name || !value) {
            free(name);
            free(value);
            qparams_free(q, nq);
            verr_set(e, 400, "MalformedQueryString", "The query string has bad percent-encoding");
            return NULL;
        }
        /* The signature cannot sign itself: presigned requests leave it out. */
        if (!strcmp(name, "X-Amz-Signature")) {
            free(name);
            free(value);
            continue;
        }
        if (nq == capq) {
            capq = capq ? capq * 2 : 16;
            q = xrealloc(q, capq * sizeof *q);
        }
        q[nq++] = (struct qparam){name, value};
    }
    if (nq > 1)
        qsort(q, nq, sizeof *q, qparam_cmp);
    strbuf_t b = {0};
    strbuf_put(&b, "", 0);
    for (size_t i = 0; i < nq; i++) {
        if (i > 0)
            strbuf_putc(&b, '&');
        strbuf_puts(&b, q[i].name);
        strbuf_putc(&b, '=');
        strbuf_puts(&b, q[i].value);
    }
    qparams_free(q, nq);
    return b.s;
}

/* ---- canonical headers --------------------------------------------------------- */

/* Trim, and collapse each run of blanks inside the value to one space (botocore:
 * ' '.join(value.split())). */
static void put_trimmed(strbuf_t *b, const char *v)
{
    int pending = 0, any = 0;

    for (; *v; v++) {
        if (is_ws((unsigned char)*v)) {
            pending = any;
            continue;
        }
        if (pending)
            strbuf_putc(b, ' ');
        strbuf_putc(b, *v);
        pending = 0;
        any = 1;
    }
}

/* Append the values of every header called name[0..n), joined by ','. 0 if none. */
static int put_header_values(strbuf_t *b, const sigv4_request_t *r, const char *name, size_t n)
{
    int found = 0;

    for (size_t i = 0; r->headers && i < r->nheaders; i++) {
        const char *hn = r->headers[i].name;
        if (!hn || strlen(hn) != n || strncasecmp(hn, name, n) != 0)
            continue;
        if (found)
            strbuf_putc(b, ',');
        put_trimmed(b, nz(r->headers[i].value));
        found = 1;
    }
    return found;
}

static int canonical_headers(strbuf_t *b, const sigv4_request_t *r, const char *signed_headers,
                             verr_t *e)
{
    const char *p = nz(signed_headers);

    if (!*p)
        return verr_set(e, 403, "AuthFailure", "SignedHeaders is empty");
    for (;;) {
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        if (n == 0)
            return verr_set(e, 403, "AuthFailure", "SignedHeaders has an empty header name");
        strbuf_put(b, p, n);
        strbuf_putc(b, ':');
        if (!put_header_values(b, r, p, n))
            return verr_set(e, 403, "AuthFailure", "Header '%.*s' is listed in SignedHeaders "
                            "but is not present in the request", (int)(n > 128 ? 128 : n), p);
        strbuf_putc(b, '\n');
        if (!semi)
            return 0;
        p = semi + 1;
    }
}

/* ---- canonical request and string to sign --------------------------------------- */

char *sigv4_canonical_request(const sigv4_request_t *r, const char *signed_headers, verr_t *e)
{
    if (!r || !r->method) {
        verr_set(e, 500, "InternalError", "sigv4: no request to canonicalise");
        return NULL;
    }

    const char *path = nz(r->path);
    char *uri = r->s3 ? canonical_uri_s3(path, e) : canonical_uri_plain(path);
    if (!uri)
        return NULL;
    char *query = canonical_query(r->query, e);
    if (!query) {
        free(uri);
        return NULL;
    }

    strbuf_t b = {0};
    strbuf_puts(&b, r->method);
    strbuf_putc(&b, '\n');
    strbuf_puts(&b, uri);
    strbuf_putc(&b, '\n');
    strbuf_puts(&b, query);
    strbuf_putc(&b, '\n');
    free(uri);
    free(query);
    if (canonical_headers(&b, r, signed_headers, e) < 0) {
        free(b.s);
        return NULL;
    }
    strbuf_putc(&b, '\n');
    strbuf_puts(&b, signed_headers);
    strbuf_putc(&b, '\n');
    /* A missing hash means the caller had no body: hash of the empty string. */
    strbuf_puts(&b, r->payload_hash ? r->payload_hash
                                 : "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    return b.s;
}

char *sigv4_string_to_sign(const char *amz_date, const char *date, const char *region,
                           const char *service, const char *canonical_request)
{
    char hash[65];
    const char *creq = nz(canonical_request);

    sigv4_sha256_hex(creq, strlen(creq), hash);
    return xasprintf(ALGORITHM "\n%s\n%s/%s/%s/" TERMINATOR "\n%s", nz(amz_date), nz(date),
                     nz(region), nz(service), hash);
}

/* ---- dates --------------------------------------------------------------------- */

/* Fields must name a real instant: timegm() normalises 31 February into March, so a
 * round trip through gmtime_r() tells a real date from an impossible one. */
static int tm_valid(struct tm *tm, time_t *out)
{
    struct tm want = *tm, back;
    time_t t = timegm(tm);

    if (t == (time_t)-1) /* only 1969-12-31T23:59:59, which callers already refuse */
        return -1;
    if (!gmtime_r(&t, &back) || back.tm_year != want.tm_year || back.tm_mon != want.tm_mon ||
        back.tm_mday != want.tm_mday || back.tm_hour != want.tm_hour ||
        back.tm_min != want.tm_min || back.tm_sec != want.tm_sec)
        return -1;
    if (out)
        *out = t;
    return 0;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* YYYYMMDDTHHMMSSZ, the ISO 8601 basic form SigV4 signs. */
static int parse_iso_basic(const char *s, time_t *t)
{
    if (strnlen(s, 17) != 16 || s[8] != 'T' || s[15] != 'Z')
        return -1;
    int y = digits(s, 4), mo = digits(s + 4, 2), d = digits(s + 6, 2);
    int h = digits(s + 9, 2), mi = digits(s + 11, 2), se = digits(s + 13, 2);
    if (y < 1970 || mo < 1 || d < 1 || h < 0 || mi < 0 || se < 0)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = se};
    return tm_valid(&tm, t);
}

/* "Sun, 30 Aug 2015 12:36:00 GMT" (RFC 1123), what a client that signs the Date
 * header instead of X-Amz-Date sends. Parsed by hand: strptime() follows the locale. */
static int parse_rfc1123(const char *s, time_t *t)
{
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const char *comma = strchr(s, ',');
    if (comma)
        s = comma + 1;
    while (*s == ' ')
        s++;
    /* "30 Aug 2015 12:36:00 GMT" (a one-digit day is tolerated) */
    if (!is_digit((unsigned char)s[0]))
        return -1;
    int dl = is_digit((unsigned char)s[1]) ? 2 : 1;
    int d = digits(s, dl);
    s += dl;
    if (d < 1 || strnlen(s, 23) != 22 || s[0] != ' ' || s[4] != ' ' || s[9] != ' ' ||
        s[12] != ':' || s[15] != ':' || strcmp(s + 18, " GMT") != 0)
        return -1;
    int mo = -1;
    for (int i = 0; i < 12; i++)
        if (!strncasecmp(s + 1, months[i], 3))
            mo = i;
    int y = digits(s + 5, 4), h = digits(s + 10, 2), mi = digits(s + 13, 2);
    int se = digits(s + 16, 2);
    if (mo < 0 || y < 1970 || h < 0 || mi < 0 || se < 0)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = se};
    return tm_valid(&tm, t);
}

static void format_iso_basic(time_t t, char out[17])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm))
        snprintf(out, 17, "?");
}

/* ---- Authorization header ------------------------------------------------------ */

/* A bounded copy of n bytes of s into dst[cap]; -1 if it does not fit or is empty. */
static int copy_field(char *dst, size_t cap, const char *s, size_t n)
{
    if (n == 0 || n >= cap)
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int printable_span(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* "AKID/20150830/us-east-1/iam/aws4_request" (already percent-decoded). */
static int parse_credential(const char *v, size_t n, sigv4_auth_t *a, int status,
                            const char *code, verr_t *e)
{
    const char *part[5];
    size_t len[5], np = 0;
    const char *p = v, *end = v + n;

    while (np < 5) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        part[np] = p;
        len[np++] = slash ? (size_t)(slash - p) : (size_t)(end - p);
        if (!slash)
            break;
        p = slash + 1;
    }
    if (np != 5 || part[4] + len[4] != end || !span_eq(part[4], len[4], TERMINATOR))
        return verr_set(e, status, code, "Credential must have the form "
                        "<key>/<YYYYMMDD>/<region>/<service>/" TERMINATOR);
    if (!printable_span(v, n) || copy_field(a->access_key, sizeof a->access_key, part[0], len[0]) ||
        len[1] != 8 || digits(part[1], 8) < 0 ||
        copy_field(a->date, sizeof a->date, part[1], len[1]) ||
        copy_field(a->region, sizeof a->region, part[2], len[2]) ||
        copy_field(a->service, sizeof a->service, part[3], len[3]))
        return verr_set(e, status, code, "Credential has an invalid access key, date, region "
                        "or service");
    return 0;
}

/* RFC 7230 token characters, plus ';' between names. */
static int header_name_char(int c)
{
    return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int parse_signed_headers(const char *v, size_t n, sigv4_auth_t *a, int status,
                                const char *code, verr_t *e)
{
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)v[i];
        int edge = i == 0 || i + 1 == n || v[i + 1] == ';';
        if (!(header_name_char(c) || (c == ';' && !edge)))
            return verr_set(e, status, code, "SignedHeaders is malformed");
    }
    if (copy_field(a->signed_headers, sizeof a->signed_headers, v, n) < 0)
        return verr_set(e, status, code, "SignedHeaders is empty or too long");
    return 0;
}

static int parse_signature(const char *v, size_t n, sigv4_auth_t *a, int status,
                           const char *code, verr_t *e)
{
    if (n != SIG_HEX)
        return verr_set(e, status, code, "Signature must be %d hex digits", SIG_HEX);
    for (size_t i = 0; i < n; i++) {
        if (hex_digit_value((unsigned char)v[i]) < 0)
            return verr_set(e, status, code, "Signature must be %d hex digits", SIG_HEX);
        a->signature[i] = (char)(v[i] >= 'A' && v[i] <= 'F' ? v[i] - 'A' + 'a' : v[i]);
    }
    a->signature[n] = '\0';
    return 0;
}

/* The X-Amz-Date (or Date) value, in the form the string to sign uses, and its day
 * must be the credential's day. */
static int check_amz_date(const char *value, int allow_rfc1123, sigv4_auth_t *a, int status,
                          const char *code, verr_t *e)
{
    time_t t;

    if (!value || !*value)
        return verr_set(e, status, code, "Authorization requires either a 'X-Amz-Date' "
                        "or a 'Date' header");
    if (parse_iso_basic(value, &t) == 0)
        snprintf(a->amz_date, sizeof a->amz_date, "%s", value);
    else if (allow_rfc1123 && parse_rfc1123(value, &t) == 0)
        format_iso_basic(t, a->amz_date);
    else
        return verr_set(e, status, code, "X-Amz-Date must be in the form YYYYMMDDTHHMMSSZ, "
                        "got '%.40s'", value);
    if (memcmp(a->date, a->amz_date, 8) != 0)
        return verr_set(e, 403, "SignatureDoesNotMatch", "Date in Credential scope does not "
                        "match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%.8s'",
                        a->date, a->amz_date);
    return 0;
}

enum { F_CREDENTIAL, F_SIGNED_HEADERS, F_SIGNATURE, F_NFIELDS };
static const char *const hnames[F_NFIELDS] = {"Credential", "SignedHeaders", "Signature"};

/* One "Name=value" component of the header, after the algorithm. */
static int header_component(const char *p, size_t n, sigv4_auth_t *a, int seen[F_NFIELDS],
                            verr_t *e)
{
    const char *v;
    size_t nlen, vlen;

    split_param(p, n, &nlen, &v, &vlen);
    for (int f = 0; f < F_NFIELDS; f++) {
        if (!span_eq(p, nlen, hnames[f]) || nlen == n)
            continue;
        if (seen[f]++)
            return verr_set(e, 400, "IncompleteSignature", "Authorization header has '%s' "
                            "twice", hnames[f]);
        if (f == F_CREDENTIAL)
            return parse_credential(v, vlen, a, 400, "IncompleteSignature", e);
        if (f == F_SIGNED_HEADERS)
            return parse_signed_headers(v, vlen, a, 400, "IncompleteSignature", e);
        return parse_signature(v, vlen, a, 400, "IncompleteSignature", e);
    }
    return verr_set(e, 400, "IncompleteSignature", "Authorization header has an unexpected "
                    "component '%.*s'", (int)(nlen > 64 ? 64 : nlen), p);
}

int sigv4_parse_header(const char *authorization, const char *amz_date, sigv4_auth_t *out,
                       verr_t *e)
{
    sigv4_auth_t a = {0};
    int seen[F_NFIELDS] = {0};
    const char *p = nz(authorization);

    while (is_ws((unsigned char)*p))
        p++;
    size_t alen = strcspn(p, " \t");
    if (!span_eq(p, alen, ALGORITHM) || !p[alen])
        return verr_set(e, 400, "IncompleteSignature", "Authorization header must start with "
                        "'" ALGORITHM " ' followed by Credential, SignedHeaders and Signature");
    p += alen;
    /* Components are separated by ',' with or without blanks around it. */
    while (*p) {
        while (is_ws((unsigned char)*p) || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        while (n > 0 && is_ws((unsigned char)p[n - 1]))
            n--;
        if (n > 0 && header_component(p, n, &a, seen, e) < 0)
            return -1;
        p += n;
    }
    for (int f = 0; f < F_NFIELDS; f++)
        if (!seen[f])
            return verr_set(e, 400, "IncompleteSignature", "Authorization header requires "
                            "'%s' parameter", hnames[f]);
    if (check_amz_date(amz_date, 1, &a, 400, "IncompleteSignature", e) < 0)
        return -1;
    if (out)
        *out = a;
    return 0;
}

/* ---- presigned query ----------------------------------------------------------- */

enum { Q_ALGORITHM, Q_CREDENTIAL, Q_DATE, Q_EXPIRES, Q_SIGNED_HEADERS, Q_SIGNATURE, Q_N };

static const char *const qnames[Q_N] = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                                        "X-Amz-Expires", "X-Amz-SignedHeaders",
                                        "X-Amz-Signature"};

/* Pick the decoded values of the X-Amz-* authentication parameters out of query. */
static int collect_query(const char *query, char *val[Q_N], size_t vlen[Q_N], verr_t *e)
{
    for (const char *p = nz(query); *p;) {
        size_t len = strcspn(p, "&");
        const char *v;
        size_t nlen, rawvlen;
        split_param(p, len, &nlen, &v, &rawvlen);
        /* Match decoded names, as canonical_query() does, so "X-Amz-Signatur%65" cannot
         * be dropped from the canonical query yet be ignored here. */
        size_t dlen;
        char *name = pct_decode(p, nlen, &dlen);
        if (!name)
            return verr_set(e, 403, "AuthFailure", "The query string has bad percent-encoding");
        for (int k = 0; k < Q_N; k++) {
            if (!span_eq(name, dlen, qnames[k]))
                continue;
            if (val[k]) {
                free(name);
                return verr_set(e, 403, "AuthFailure", "%s appears more than once", qnames[k]);
            }
            val[k] = pct_decode(v, rawvlen, &vlen[k]);
            if (!val[k]) {
                free(name);
                return verr_set(e, 403, "AuthFailure", "%s has bad percent-encoding",
                                qnames[k]);
            }
        }
        free(name);
        p += len;
        if (*p == '&')
            p++;
    }
    for (int k = 0; k < Q_N; k++)
        if (!val[k] || vlen[k] == 0)
            return verr_set(e, 403, "AuthFailure", "Query-string authentication requires "
                            "the %s parameter", qnames[k]);
    return 0;
}

static int parse_expires(const char *v, size_t n, long *out, verr_t *e)
{
    long x = 0;

    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)v[i]) || x > MAX_EXPIRES)
            return verr_set(e, 403, "AuthFailure", "X-Amz-Expires must be a number of seconds "
                            "between 1 and %ld", MAX_EXPIRES);
        x = x * 10 + (v[i] - '0');
    }
    if (n == 0 || x < 1 || x > MAX_EXPIRES)
        return verr_set(e, 403, "AuthFailure", "X-Amz-Expires must be a number of seconds "
                        "between 1 and %ld", MAX_EXPIRES);
    *out = x;
    return 0;
}

static int parse_query_fields(char *const val[Q_N], const size_t vlen[Q_N], sigv4_auth_t *a,
                              verr_t *e)
{
    if (!span_eq(val[Q_ALGORITHM], vlen[Q_ALGORITHM], ALGORITHM))
        return verr_set(e, 403, "AuthFailure", "X-Amz-Algorithm must be " ALGORITHM);
    /* Decoded values may hold a NUL from %00; the length checks below see through it. */
    if (strlen(val[Q_DATE]) != vlen[Q_DATE])
        return verr_set(e, 403, "AuthFailure", "X-Amz-Date is malformed");
    if (parse_credential(val[Q_CREDENTIAL], vlen[Q_CREDENTIAL], a, 403, "AuthFailure", e) < 0 ||
        parse_signed_headers(val[Q_SIGNED_HEADERS], vlen[Q_SIGNED_HEADERS], a, 403,
                             "AuthFailure", e) < 0 ||
        parse_signature(val[Q_SIGNATURE], vlen[Q_SIGNATURE], a, 403, "AuthFailure", e) < 0 ||
        parse_expires(val[Q_EXPIRES], vlen[Q_EXPIRES], &a->expires, e) < 0)
        return -1;
    return check_amz_date(val[Q_DATE], 0, a, 403, "AuthFailure", e);
}

int sigv4_parse_query(const char *query, sigv4_auth_t *out, verr_t *e)
{
    char *val[Q_N] = {0};
    size_t vlen[Q_N] = {0};
    sigv4_auth_t a = {0};

    int rc = collect_query(query, val, vlen, e);
    if (rc == 0)
        rc = parse_query_fields(val, vlen, &a, e);
    for (int k = 0; k < Q_N; k++)
        free(val[k]);
    if (rc < 0)
        return -1;
    a.presigned = 1;
    if (out)
        *out = a;
    return 0;
}

/* ---- time window and verification ---------------------------------------------- */

int sigv4_check_time(const sigv4_auth_t *a, time_t now, long skew, verr_t *e)
{
    time_t t;
    char ts[17], nows[17];

    if (!a || parse_iso_basic(a->amz_date, &t) < 0)
        return verr_set(e, 403, "AuthFailure", "X-Amz-Date is missing or malformed");
    if (skew < 0)
        skew = 0;
    format_iso_basic(t, ts);
    format_iso_basic(now, nows);
    if (a->presigned) {
        if (a->expires < 1 || a->expires > MAX_EXPIRES)
            return verr_set(e, 403, "AuthFailure", "X-Amz-Expires must be between 1 and %ld",
                            MAX_EXPIRES);
        if ((long long)now > (long long)t + a->expires)
            return verr_set(e, 403, "RequestExpired", "Request has expired");
        if ((long long)t > (long long)now + skew)
            return verr_set(e, 403, "RequestExpired", "Request is not yet valid: X-Amz-Date %s "
                            "is later than server time %s plus %ld s", ts, nows, skew);
        return 0;
    }
    if ((long long)t > (long long)now + skew)
        return verr_set(e, 400, "RequestExpired", "Signature not yet current: %s is still later "
                        "than server time %s plus %ld s", ts, nows, skew);
    if ((long long)t < (long long)now - skew)
        return verr_set(e, 400, "RequestExpired", "Signature expired: %s is now earlier than "
                        "server time %s minus %ld s", ts, nows, skew);
    return 0;
}

int sigv4_verify(const sigv4_request_t *r, const sigv4_auth_t *a,
                 const uint8_t key[SIGV4_KEY_LEN], verr_t *e)
{
    char calc[65];

    if (!r || !a || !key)
        return verr_set(e, 500, "InternalError", "sigv4_verify called without request, "
                        "credential or key");
    char *creq = sigv4_canonical_request(r, a->signed_headers, e);
    if (!creq)
        return -1;
    char *sts = sigv4_string_to_sign(a->amz_date, a->date, a->region, a->service, creq);
    sigv4_sign(key, sts, calc);
    free(creq);
    free(sts);
    if (strnlen(a->signature, sizeof a->signature) != SIG_HEX ||
        sodium_memcmp(calc, a->signature, SIG_HEX) != 0)
        return verr_set(e, 403, "SignatureDoesNotMatch", "The request signature we calculated "
                        "does not match the signature you provided. Check your AWS Secret "
                        "Access Key and signing method.");
    return 0;
}
