/* keypair.c - EC2 key pairs: CreateKeyPair makes an RSA-2048 key with OpenSSL (returned
 * as a PKCS#1 PEM, as AWS does) or an ed25519 key with libsodium (returned in OpenSSH's
 * own private key format, the only one ssh reads for ed25519); ImportKeyPair parses an
 * OpenSSH public key line (tenant input, so parsing is strict and bounded). Both
 * produce the OpenSSH public line and the fingerprint AWS would show. The SSH wire
 * encodings (RFC 4253 string/mpint) are written and read here by hand: they are small,
 * and neither library exposes them. Private key bytes are wiped before being freed. */
#include "keypair.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <sodium.h>

#define RSA_CREATE_BITS   2048
#define RSA_MIN_BITS      1024
#define RSA_MAX_BITS      16384
#define RSA_MAX_E_BYTES   8            /* OpenSSL refuses public exponents over 64 bits */
#define IMPORT_MAX_LEN    16384        /* a 16384-bit RSA line is ~2.8 KB; room for options */
#define OPENSSH_WRAP      70           /* column OpenSSH wraps its private key base64 at */
#define OPENSSH_BLOCK     8            /* cipher "none" pads the private section to 8 */

#define BAD_FORMAT_MSG    "Key is not in valid OpenSSH public key format"

/* ---- growable byte buffer (the SSH wire writer) ------------------------------------ */

/* Growth copies into a fresh block and wipes the old one, so a buffer holding secret
 * bytes never leaves stale copies behind on the heap (realloc could). */
typedef struct sbuf {
    uint8_t *d;
    size_t len, cap;
} sbuf_t;

static void sbuf_reserve(sbuf_t *b, size_t more)
{
    if (b->cap - b->len >= more)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more)
        cap *= 2;
    uint8_t *d = xmalloc(cap);
    if (b->d) {
        memcpy(d, b->d, b->len);
        sodium_memzero(b->d, b->cap);
        free(b->d);
    }
    b->d = d;
    b->cap = cap;
}

static void sbuf_free(sbuf_t *b)
{
    if (b->d) {
        sodium_memzero(b->d, b->cap);
        free(b->d);
    }
    memset(b, 0, sizeof *b);
}

static void sbuf_put(sbuf_t *b, const void *p, size_t n)
{
    sbuf_reserve(b, n);
    if (n)
        memcpy(b->d + b->len, p, n);
    b->len += n;
}

static void sbuf_put_u8(sbuf_t *b, uint8_t v)
{
    sbuf_put(b, &v, 1);
}

static void sbuf_put_u32(sbuf_t *b, uint32_t v)
{
    uint8_t be[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    sbuf_put(b, be, sizeof be);
}

static void sbuf_put_string(sbuf_t *b, const void *p, size_t n)
{
    sbuf_put_u32(b, (uint32_t)n);
    sbuf_put(b, p, n);
}

static void sbuf_put_cstring(sbuf_t *b, const char *s)
{
    sbuf_put_string(b, s, strlen(s));
}

/* RFC 4253 mpint of a non-negative number: minimal big-endian magnitude, with a 0 byte
 * in front when the top bit is set so it does not read as negative. */
static void sbuf_put_mpint(sbuf_t *b, const BIGNUM *bn)
{
    int n = BN_num_bytes(bn);
    uint8_t *mag = xmalloc((size_t)n + 1);
    mag[0] = 0;
    BN_bn2bin(bn, mag + 1);
    bool pad = n > 0 && (mag[1] & 0x80);
    sbuf_put_string(b, pad ? mag : mag + 1, (size_t)n + (pad ? 1 : 0));
    free(mag);
}

/* ---- SSH wire reader (bounds-checked; input is tenant-supplied) --------------------- */

typedef struct sreader {
    const uint8_t *d;
    size_t len, off;
} sreader_t;

static int sr_u32(sreader_t *r, uint32_t *v)
{
    if (r->len - r->off < 4)
        return -1;
    const uint8_t *p = r->d + r->off;
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    r->off += 4;
    return 0;
}

/* Compared against what remains, never added to off first, so a length of 0xffffffff
 * cannot wrap. */
static int sr_string(sreader_t *r, const uint8_t **p, size_t *n)
{
    uint32_t len;
    if (sr_u32(r, &len) < 0 || len > r->len - r->off)
        return -1;
    *p = r->d + r->off;
    *n = len;
    r->off += len;
    return 0;
}

static bool mem_is(const uint8_t *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* ---- small encoders ------------------------------------------------------------------ */

static char *b64_encode(const uint8_t *p, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *s = xmalloc(cap);
    sodium_bin2base64(s, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
    return s;
}

/* "aa:bb:cc" - AWS's form for the MD5 and SHA-1 fingerprints. */
static void colon_hex(const uint8_t *p, size_t n, char *out, size_t outsz)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 3 < outsz; i++) {
        if (i)
            out[o++] = ':';
        out[o++] = hex[p[i] >> 4];
        out[o++] = hex[p[i] & 15];
    }
    out[o] = '\0';
}

static char *openssh_line(const char *sshtype, const sbuf_t *blob)
{
    char *b64 = b64_encode(blob->d, blob->len);
    char *line = xasprintf("%s %s", sshtype, b64);
    free(b64);
    return line;
}

static void ed25519_fingerprint(const uint8_t *blob, size_t n, char *out, size_t outsz)
{
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, blob, n);
    sodium_bin2base64(out, outsz, h, sizeof h, sodium_base64_VARIANT_ORIGINAL);
}

static int sodium_ready(verr_t *e)
{
    /* sodium_init is idempotent and thread-safe; it fails only without an entropy source */
    if (sodium_init() < 0)
        return verr_set(e, 500, "InternalError", "libsodium could not be initialised");
    return 0;
}

static int ossl_fail(verr_t *e, const char *what)
{
    unsigned long code = ERR_get_error();
    char buf[256] = "";
    if (code)
        ERR_error_string_n(code, buf, sizeof buf);
    ERR_clear_error();   /* leave no stale errors for the next OpenSSL user on this thread */
    return verr_set(e, 500, "InternalError", "%s%s%s", what, *buf ? ": " : "", buf);
}

/* ---- created RSA --------------------------------------------------------------------- */

/* Encode pkey's private half with OpenSSL's encoder; the bytes are secret, so they are
 * copied into our own allocation (NUL-terminated for PEM) and OpenSSL's copy is wiped. */
static int rsa_encode_private(EVP_PKEY *pkey, const char *format, const char *structure,
                              uint8_t **out, size_t *outlen)
{
    OSSL_ENCODER_CTX *ctx = OSSL_ENCODER_CTX_new_for_pkey(pkey, EVP_PKEY_KEYPAIR, format,
                                                          structure, NULL);
    unsigned char *data = NULL;
    size_t len = 0;
    int ok = ctx && OSSL_ENCODER_CTX_get_num_encoders(ctx) > 0 &&
             OSSL_ENCODER_to_data(ctx, &data, &len) == 1;
    OSSL_ENCODER_CTX_free(ctx);
    if (!ok)
        return -1;
    *out = xmalloc(len + 1);
    memcpy(*out, data, len);
    (*out)[len] = 0;
    *outlen = len;
    OPENSSL_clear_free(data, len);
    return 0;
}

static int rsa_public_blob(EVP_PKEY *pkey, sbuf_t *blob)
{
    BIGNUM *n = NULL, *ev = NULL;
    int rc = -1;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &ev) == 1) {
        sbuf_put_cstring(blob, "ssh-rsa");
        sbuf_put_mpint(blob, ev);
        sbuf_put_mpint(blob, n);
        rc = 0;
    }
    BN_free(n);
    BN_free(ev);
    return rc;
}

/* AWS's fingerprint for keys it generated: SHA-1 of the PKCS#8 PrivateKeyInfo DER. */
static int rsa_private_fingerprint(EVP_PKEY *pkey, char *out, size_t outsz)
{
    uint8_t *der = NULL, md[EVP_MAX_MD_SIZE];
    size_t derlen = 0;
    unsigned int mdlen = 0;
    if (rsa_encode_private(pkey, "DER", "PrivateKeyInfo", &der, &derlen) < 0)
        return -1;
    int ok = EVP_Digest(der, derlen, md, &mdlen, EVP_sha1(), NULL) == 1;
    sodium_memzero(der, derlen);
    free(der);
    if (!ok)
        return -1;
    colon_hex(md, mdlen, out, outsz);
    return 0;
}

static int create_rsa(keypair_t *out, verr_t *e)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)RSA_CREATE_BITS);
    if (!pkey)
        return ossl_fail(e, "RSA key generation failed");
    sbuf_t blob = { 0 };
    uint8_t *pem = NULL;
    size_t pemlen = 0;
    int rc = -1;
    if (rsa_encode_private(pkey, "PEM", "type-specific", &pem, &pemlen) < 0)
        ossl_fail(e, "could not encode the RSA private key");
    else if (rsa_private_fingerprint(pkey, out->fingerprint, sizeof out->fingerprint) < 0)
        ossl_fail(e, "could not fingerprint the RSA private key");
    else if (rsa_public_blob(pkey, &blob) < 0)
        ossl_fail(e, "could not read the RSA public key");
    else {
        snprintf(out->type, sizeof out->type, "rsa");
        out->private_pem = (char *)pem;
        out->public_openssh = openssh_line("ssh-rsa", &blob);
        pem = NULL;
        rc = 0;
    }
    if (rc < 0)
        memset(out, 0, sizeof *out);
    if (pem) {
        sodium_memzero(pem, pemlen);
        free(pem);
    }
    sbuf_free(&blob);
    EVP_PKEY_free(pkey);
    return rc;
}

/* ---- created ed25519 (OpenSSH private key format, PROTOCOL.key) ---------------------- */

static void ed25519_public_blob(const uint8_t pk[crypto_sign_PUBLICKEYBYTES], sbuf_t *blob)
{
    sbuf_put_cstring(blob, "ssh-ed25519");
    sbuf_put_string(blob, pk, crypto_sign_PUBLICKEYBYTES);
}

/* The private section: two equal check integers (a wrong passphrase shows as a mismatch;
 * here there is none, but readers still check), the key, an empty comment, padding. */
static void ed25519_private_section(const uint8_t *pk, const uint8_t *sk, sbuf_t *priv)
{
    uint32_t check = randombytes_random();
    sbuf_put_u32(priv, check);
    sbuf_put_u32(priv, check);
    sbuf_put_cstring(priv, "ssh-ed25519");
    sbuf_put_string(priv, pk, crypto_sign_PUBLICKEYBYTES);
    sbuf_put_string(priv, sk, crypto_sign_SECRETKEYBYTES);   /* seed || pk, as OpenSSH */
    sbuf_put_cstring(priv, "");
    for (uint8_t i = 1; priv->len % OPENSSH_BLOCK; i++)
        sbuf_put_u8(priv, i);
}

/* PEM-like armour around base64 wrapped at 70 columns, exactly as ssh-keygen writes. */
static char *openssh_armour(const sbuf_t *body)
{
    static const char head[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
    static const char tail[] = "-----END OPENSSH PRIVATE KEY-----\n";
    char *b64 = b64_encode(body->d, body->len);
    size_t blen = strlen(b64);
    size_t cap = sizeof head + blen + blen / OPENSSH_WRAP + 2 + sizeof tail;
    char *pem = xmalloc(cap);
    size_t o = 0;
    memcpy(pem, head, sizeof head - 1);
    o += sizeof head - 1;
    for (size_t i = 0; i < blen; i += OPENSSH_WRAP) {
        size_t n = blen - i < OPENSSH_WRAP ? blen - i : OPENSSH_WRAP;
        memcpy(pem + o, b64 + i, n);
        o += n;
        pem[o++] = '\n';
    }
    memcpy(pem + o, tail, sizeof tail);   /* includes the NUL */
    sodium_memzero(b64, blen);
    free(b64);
    return pem;
}

static int create_ed25519(keypair_t *out, verr_t *e)
{
    if (sodium_ready(e) < 0)
        return -1;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);

    sbuf_t pub = { 0 }, priv = { 0 }, file = { 0 };
    ed25519_public_blob(pk, &pub);
    ed25519_private_section(pk, sk, &priv);
    sodium_memzero(sk, sizeof sk);

    sbuf_put(&file, "openssh-key-v1", sizeof "openssh-key-v1");   /* with its NUL */
    sbuf_put_cstring(&file, "none");     /* ciphername */
    sbuf_put_cstring(&file, "none");     /* kdfname */
    sbuf_put_cstring(&file, "");         /* kdfoptions */
    sbuf_put_u32(&file, 1);              /* number of keys */
    sbuf_put_string(&file, pub.d, pub.len);
    sbuf_put_string(&file, priv.d, priv.len);

    snprintf(out->type, sizeof out->type, "ed25519");
    out->private_pem = openssh_armour(&file);
    out->public_openssh = openssh_line("ssh-ed25519", &pub);
    ed25519_fingerprint(pub.d, pub.len, out->fingerprint, sizeof out->fingerprint);
    sbuf_free(&pub);
    sbuf_free(&priv);
    sbuf_free(&file);
    return 0;
}

/* The requested type is tenant input quoted back in the error: keep it short and
 * printable so it cannot corrupt the XML/JSON error body or the logs. */
static void printable_copy(const char *s, char *out, size_t outsz)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < outsz; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[i] = '\0';
}

int keypair_create(const char *type, keypair_t *out, verr_t *e)
{
    memset(out, 0, sizeof *out);
    if (type && strcmp(type, "rsa") == 0)
        return create_rsa(out, e);
    if (type && strcmp(type, "ed25519") == 0)
        return create_ed25519(out, e);
    char shown[65];
    printable_copy(type, shown, sizeof shown);
    return verr_set(e, 400, "InvalidParameterValue",
                    "The key type '%s' is not supported; use rsa or ed25519", shown);
}

/* ---- import: the public key line -------------------------------------------------- */

/* One key line split into its key type and base64 fields (pointers into the input). */
typedef struct keyline {
    const char *type, *b64;
    size_t type_len, b64_len;
} keyline_t;

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_space(char c)
{
    return is_blank(c) || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* A field ends at a blank; in authorized_keys options, blanks inside "..." do not count
 * (command="echo a b"), and \" does not end the quote. */
static size_t field_len(const char *p, size_t n, bool quoted_ok)
{
    size_t i = 0;
    bool inq = false;
    for (; i < n && (inq || !is_blank(p[i])); i++) {
        if (quoted_ok && p[i] == '\\' && inq && i + 1 < n)
            i++;
        else if (quoted_ok && p[i] == '"')
            inq = !inq;
    }
    return i;
}

static size_t skip_blanks(const char *p, size_t n, size_t i)
{
    while (i < n && is_blank(p[i]))
        i++;
    return i;
}

/* Key type names look like ssh-*, ecdsa-*, sk-*; authorized_keys options never do. The
 * character set is checked too, because the name is quoted back in error messages. */
static bool looks_like_keytype(const char *p, size_t n)
{
    if (n > 64)
        return false;
    for (size_t i = 0; i < n; i++)   /* bounded: the material is not NUL-terminated */
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-' ||
              p[i] == '@' || p[i] == '.'))
            return false;
    return (n > 4 && memcmp(p, "ssh-", 4) == 0) || (n > 6 && memcmp(p, "ecdsa-", 6) == 0) ||
           (n > 3 && memcmp(p, "sk-", 3) == 0);
}

/* Split "[options] type base64 [comment]"; the comment is dropped. */
static int split_line(const char *p, size_t n, keyline_t *kl, verr_t *e)
{
    size_t i = skip_blanks(p, n, 0);
    size_t f = field_len(p + i, n - i, false);
    if (f == 0)
        return verr_set(e, 400, "InvalidKey.Format", BAD_FORMAT_MSG ": the key is empty");
    if (!looks_like_keytype(p + i, f)) {
        /* authorized_keys form: the first field is the options, skipped as sshd would */
        i = skip_blanks(p, n, i + field_len(p + i, n - i, true));
        f = field_len(p + i, n - i, false);
        if (f == 0 || !looks_like_keytype(p + i, f))
            return verr_set(e, 400, "InvalidKey.Format",
                            BAD_FORMAT_MSG ": no key type (such as ssh-rsa) found");
    }
    kl->type = p + i;
    kl->type_len = f;
    i = skip_blanks(p, n, i + f);
    kl->b64 = p + i;
    kl->b64_len = field_len(p + i, n - i, false);
    if (kl->b64_len == 0)
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": the base64 key data is missing");
    return 0;
}

/* Trim surrounding whitespace (a trailing newline is normal) and refuse what can never
 * be a single key line. */
static int trim_material(const char *m, size_t len, const char **p, size_t *n, verr_t *e)
{
    if (!m || len == 0)
        return verr_set(e, 400, "InvalidKey.Format", BAD_FORMAT_MSG ": the key is empty");
    if (len > IMPORT_MAX_LEN)
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": the key is too long (%zu bytes; at most %d)", len,
                        IMPORT_MAX_LEN);
    if (memchr(m, '\0', len))
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": the key contains a NUL byte");
    while (len && is_space(*m))
        m++, len--;
    while (len && is_space(m[len - 1]))
        len--;
    if (memchr(m, '\n', len) || memchr(m, '\r', len))
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": only one key line is accepted");
    *p = m;
    *n = len;
    return 0;
}

/* libsodium 1.0.18 decodes some bytes >= 0x80 as if they were base64 letters (its
 * lookup takes a plain char, signed here), so the alphabet is checked first. */
static bool b64_alphabet_only(const char *p, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\0' || !strchr(alphabet, p[i]))
            return false;
    return true;
}

static int decode_blob(const keyline_t *kl, uint8_t **blob, size_t *bloblen, verr_t *e)
{
    if (!b64_alphabet_only(kl->b64, kl->b64_len))
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": the key data is not valid base64");
    size_t cap = kl->b64_len / 4 * 3 + 3;
    uint8_t *d = xmalloc(cap);
    /* no ignore set and no end pointer: any bad character, missing padding or stray
     * bits fails the whole decode */
    if (sodium_base642bin(d, cap, kl->b64, kl->b64_len, NULL, bloblen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        free(d);
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": the key data is not valid base64");
    }
    *blob = d;
    return 0;
}

/* An mpint that must be positive: returns its magnitude without leading zeros. */
static int read_positive_mpint(sreader_t *r, const uint8_t **p, size_t *n)
{
    if (sr_string(r, p, n) < 0 || *n == 0 || (**p & 0x80))
        return -1;
    while (*n && **p == 0)
        (*p)++, (*n)--;
    return *n ? 0 : -1;
}

static int bn_bits(const uint8_t *p, size_t n)
{
    int top = 0;
    for (uint8_t c = p[0]; c; c >>= 1)
        top++;
    return (int)(n - 1) * 8 + top;
}

/* SubjectPublicKeyInfo DER of (n, e), built through the provider API (the RSA_* struct
 * functions are deprecated in OpenSSL 3), and its MD5 - AWS's imported-RSA print. */
static int rsa_spki_md5(const uint8_t *n, size_t nlen, const uint8_t *ev, size_t elen,
                        char *out, size_t outsz)
{
    BIGNUM *bn_n = BN_bin2bn(n, (int)nlen, NULL), *bn_e = BN_bin2bn(ev, (int)elen, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pkey = NULL;
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int derlen = -1, rc = -1;

    if (bn_n && bn_e && bld && ctx && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) &&
        (params = OSSL_PARAM_BLD_to_param(bld)) && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1 &&
        (derlen = i2d_PUBKEY(pkey, &der)) > 0 &&
        EVP_Digest(der, (size_t)derlen, md, &mdlen, EVP_md5(), NULL) == 1) {
        colon_hex(md, mdlen, out, outsz);
        rc = 0;
    }
    OPENSSL_free(der);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    ERR_clear_error();
    return rc;
}

static int import_rsa(sreader_t *r, keypair_t *out, verr_t *e)
{
    const uint8_t *ev, *n;
    size_t elen, nlen;
    if (read_positive_mpint(r, &ev, &elen) < 0 || read_positive_mpint(r, &n, &nlen) < 0)
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": the RSA key data is truncated or malformed");
    if (r->off != r->len)
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": unexpected data after the RSA key");
    if (elen > RSA_MAX_E_BYTES || !(ev[elen - 1] & 1) || (elen == 1 && ev[0] < 3))
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": the RSA public exponent is invalid");
    if (nlen > RSA_MAX_BITS / 8 + 1 || bn_bits(n, nlen) < RSA_MIN_BITS ||
        bn_bits(n, nlen) > RSA_MAX_BITS)
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": RSA keys must be %d to %d bits (this one is %d)",
                        RSA_MIN_BITS, RSA_MAX_BITS, bn_bits(n, nlen));
    if (!(n[nlen - 1] & 1))
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": the RSA modulus is even");
    if (rsa_spki_md5(n, nlen, ev, elen, out->fingerprint, sizeof out->fingerprint) < 0)
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": the RSA key was refused by the crypto library");
    snprintf(out->type, sizeof out->type, "rsa");
    return 0;
}

static int import_ed25519(sreader_t *r, keypair_t *out, verr_t *e)
{
    const uint8_t *pk;
    size_t pklen;
    if (sr_string(r, &pk, &pklen) < 0 || pklen != crypto_sign_PUBLICKEYBYTES)
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": the ed25519 key must be %d bytes",
                        crypto_sign_PUBLICKEYBYTES);
    if (r->off != r->len)
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": unexpected data after the ed25519 key");
    ed25519_fingerprint(r->d, r->len, out->fingerprint, sizeof out->fingerprint);
    snprintf(out->type, sizeof out->type, "ed25519");
    return 0;
}

/* The blob names its own type; it must agree with the line's, as sshd requires. */
static int import_blob(const keyline_t *kl, const uint8_t *blob, size_t len, keypair_t *out,
                       verr_t *e)
{
    sreader_t r = { blob, len, 0 };
    const uint8_t *t;
    size_t tlen;
    if (sr_string(&r, &t, &tlen) < 0)
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": the key data is truncated");
    if (tlen != kl->type_len || memcmp(t, kl->type, tlen) != 0)
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": the key data is not a '%.*s' key", (int)kl->type_len,
                        kl->type);
    /* the caller only lets ssh-rsa and ssh-ed25519 lines this far */
    return mem_is(t, tlen, "ssh-rsa") ? import_rsa(&r, out, e) : import_ed25519(&r, out, e);
}

int keypair_import(const char *material, size_t len, keypair_t *out, verr_t *e)
{
    memset(out, 0, sizeof *out);
    /* initialised: verr_set's -1 is opaque to gcc's flow analysis */
    const char *line = NULL;
    size_t n = 0;
    keyline_t kl = { 0 };
    if (sodium_ready(e) < 0 || trim_material(material, len, &line, &n, e) < 0 ||
        split_line(line, n, &kl, e) < 0)
        return -1;
    if (!mem_is((const uint8_t *)kl.type, kl.type_len, "ssh-rsa") &&
        !mem_is((const uint8_t *)kl.type, kl.type_len, "ssh-ed25519"))
        return verr_set(e, 400, "InvalidKey.Format",
                        BAD_FORMAT_MSG ": key type '%.*s' is not supported (use ssh-rsa or "
                        "ssh-ed25519)", (int)kl.type_len, kl.type);
    uint8_t *blob = NULL;
    size_t bloblen = 0;
    if (decode_blob(&kl, &blob, &bloblen, e) < 0)
        return -1;
    int rc = import_blob(&kl, blob, bloblen, out, e);
    if (rc == 0) {
        sbuf_t b = { blob, bloblen, bloblen };
        char type[16];
        snprintf(type, sizeof type, "%.*s", (int)kl.type_len, kl.type);
        out->public_openssh = openssh_line(type, &b);   /* re-encoded: comment dropped */
    } else {
        memset(out, 0, sizeof *out);
    }
    free(blob);
    return rc;
}

void keypair_free(keypair_t *k)
{
    if (!k)
        return;
    if (k->private_pem) {
        sodium_memzero(k->private_pem, strlen(k->private_pem));
        free(k->private_pem);
    }
    free(k->public_openssh);
    memset(k, 0, sizeof *k);
}
