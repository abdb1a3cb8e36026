/* test_keypair.c - unit tests for common/keypair.c, checked against the real tools
 * rather than against itself: created keys must be read back by OpenSSL and by
 * `ssh-keygen -y`, and every fingerprint must equal what the openssl/ssh-keygen
 * pipelines AWS documents print; keys made by ssh-keygen must import with the same
 * prints; and malformed tenant input (empty, unsupported types, bad or truncated
 * base64, trailing bytes, wrong sizes, 1 MiB of junk) must be refused with
 * InvalidKey.Format without crashing. Temporary files live in one mkdtemp directory
 * that is removed at the end. Needs ssh-keygen and the openssl CLI on PATH. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <unistd.h>

#include "keypair.h"

#define BAD_FORMAT "Key is not in valid OpenSSH public key format"

static char tmpdir[64];

/* ---- helpers: files and commands ----------------------------------------------------- */

static char *tmp_path(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

/* 0600: ssh-keygen refuses private keys that others can read. */
static void write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    size_t n = strlen(data);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = xcalloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Run a shell pipeline and return its first output line, without the newline. */
static char *run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *run(const char *fmt, ...)
{
    va_list ap;
    char *cmd = NULL;
    va_start(ap, fmt);
    assert_true(vasprintf(&cmd, fmt, ap) >= 0);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[8192] = "";
    if (!fgets(line, sizeof line, p))
        line[0] = '\0';
    while (fgetc(p) != EOF) { /* drain so the writer never sees SIGPIPE */
    }
    int rc = pclose(p);
    if (rc != 0)
        fail_msg("command failed (%d): %s -> %s", rc, cmd, line);
    free(cmd);
    line[strcspn(line, "\r\n")] = '\0';
    return xstrdup(line);
}

/* "SHA1(stdin)= aa:bb:..." -> "aa:bb:..." */
static const char *digest_part(const char *s)
{
    const char *eq = strstr(s, "= ");
    assert_non_null(eq);
    return eq + 2;
}

/* "256 SHA256:abc... comment (ED25519)" -> "abc..." (written into out) */
static void sha256_part(const char *s, char *out, size_t outsz)
{
    const char *p = strstr(s, "SHA256:");
    assert_non_null(p);
    p += strlen("SHA256:");
    snprintf(out, outsz, "%.*s", (int)strcspn(p, " "), p);
}

static void strip_padding(char *s)
{
    size_t n = strlen(s);
    while (n && s[n - 1] == '=')
        s[--n] = '\0';
}

/* ---- helpers: building SSH blobs for hostile input ----------------------------------- */

typedef struct blob {
    uint8_t d[8192];
    size_t len;
} blob_t;

static void put(blob_t *b, const void *p, size_t n)
{
    assert_true(b->len + n <= sizeof b->d);
    memcpy(b->d + b->len, p, n);
    b->len += n;
}

static void put_u32(blob_t *b, uint32_t v)
{
    uint8_t be[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    put(b, be, 4);
}

static void put_str(blob_t *b, const void *p, size_t n)
{
    put_u32(b, (uint32_t)n);
    put(b, p, n);
}

static void put_cstr(blob_t *b, const char *s)
{
    put_str(b, s, strlen(s));
}

/* mpint of a big-endian magnitude given without a sign byte */
static void put_mpint(blob_t *b, const uint8_t *mag, size_t n)
{
    int pad = n && (mag[0] & 0x80);
    put_u32(b, (uint32_t)(n + (size_t)pad));
    if (pad)
        put(b, "", 1);
    put(b, mag, n);
}

static void put_bn(blob_t *b, const BIGNUM *bn)
{
    uint8_t mag[2100];
    int n = BN_bn2bin(bn, mag);
    put_mpint(b, mag, (size_t)n);
}

static char *line_of(const char *type, const blob_t *b, const char *tail)
{
    size_t cap = sodium_base64_ENCODED_LEN(b->len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = xmalloc(cap);
    sodium_bin2base64(b64, cap, b->d, b->len, sodium_base64_VARIANT_ORIGINAL);
    char *line = xasprintf("%s %s%s", type, b64, tail ? tail : "");
    free(b64);
    return line;
}

/* A real RSA public key of any size OpenSSL will make (512 included, which ssh-keygen
 * refuses to generate). */
static void rsa_blob(unsigned bits, blob_t *b)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    assert_non_null(pk);
    BIGNUM *n = NULL, *e = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    put_cstr(b, "ssh-rsa");
    put_bn(b, e);
    put_bn(b, n);
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(pk);
}

/* A syntactically valid RSA blob with an arbitrary modulus size (no primes needed to
 * test the size limits). */
static void fake_rsa_blob(unsigned bits, blob_t *b)
{
    uint8_t n[2100] = { 0 };
    size_t nlen = (bits + 7) / 8;
    assert_true(nlen <= sizeof n);
    randombytes_buf(n, nlen);
    n[0] |= (uint8_t)(1u << ((bits - 1) % 8));
    n[0] &= (uint8_t)((2u << ((bits - 1) % 8)) - 1);
    n[nlen - 1] |= 1;
    put_cstr(b, "ssh-rsa");
    put_mpint(b, (const uint8_t[]){ 0x01, 0x00, 0x01 }, 3);
    put_mpint(b, n, nlen);
}

static void ed25519_blob(blob_t *b)
{
    uint8_t pk[32], sk[64];
    crypto_sign_keypair(pk, sk);
    put_cstr(b, "ssh-ed25519");
    put_str(b, pk, sizeof pk);
}

/* The material is handed over as an exact-size heap copy with no NUL after it, so an
 * over-read shows up under AddressSanitizer. */
static char *exact_copy(const char *material, size_t len)
{
    if (!material)
        return NULL;
    char *c = xmalloc(len);
    memcpy(c, material, len);
    return c;
}

/* Import must fail with InvalidKey.Format/400 and leave *out empty. */
static void expect_bad_n(const char *material, size_t len)
{
    keypair_t k;
    verr_t e = { 0 };
    char *copy = exact_copy(material, len);
    assert_int_equal(keypair_import(copy, len, &k, &e), -1);
    free(copy);
    assert_string_equal(e.code, "InvalidKey.Format");
    assert_int_equal(e.http_status, 400);
    assert_memory_equal(e.message, BAD_FORMAT, strlen(BAD_FORMAT));
    assert_null(k.public_openssh);
    assert_null(k.private_pem);
    keypair_free(&k);
}

static void expect_bad(const char *material)
{
    expect_bad_n(material, strlen(material));
}

static void expect_ok(const char *material, keypair_t *k)
{
    verr_t e = { 0 };
    char *copy = exact_copy(material, strlen(material));
    int rc = keypair_import(copy, strlen(material), k, &e);
    free(copy);
    if (rc != 0)
        fail_msg("import refused [%s]: %s: %s", material, e.code, e.message);
    assert_null(k->private_pem);
}

/* ---- created keys -------------------------------------------------------------------- */

static void test_create_rsa(void **state)
{
    (void)state;
    keypair_t k;
    verr_t e = { 0 };
    assert_int_equal(keypair_create("rsa", &k, &e), 0);
    assert_string_equal(k.type, "rsa");
    assert_memory_equal(k.private_pem, "-----BEGIN RSA PRIVATE KEY-----\n", 32);
    assert_memory_equal(k.public_openssh, "ssh-rsa AAAAB3NzaC1yc2E", 23);
    assert_int_equal(strlen(k.fingerprint), 59);   /* 20 bytes as colon hex */

    /* OpenSSL reads it back as a 2048-bit RSA key */
    BIO *bio = BIO_new_mem_buf(k.private_pem, -1);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    assert_non_null(pk);
    assert_true(EVP_PKEY_is_a(pk, "RSA"));
    assert_int_equal(EVP_PKEY_get_bits(pk), 2048);
    EVP_PKEY_free(pk);
    BIO_free(bio);

    char *f = tmp_path("rsa_created");
    write_file(f, k.private_pem);
    char *sha1 = run("openssl pkcs8 -in '%s' -inform PEM -outform DER -topk8 -nocrypt"
                     " | openssl sha1 -c", f);
    assert_string_equal(k.fingerprint, digest_part(sha1));
    char *pub = run("ssh-keygen -y -f '%s'", f);
    assert_string_equal(pub, k.public_openssh);

    /* importing the public half gives the imported-RSA print: MD5 of the SPKI DER */
    keypair_t imp;
    expect_ok(k.public_openssh, &imp);
    char *md5 = run("openssl pkey -in '%s' -pubout -outform DER | openssl md5 -c", f);
    assert_string_equal(imp.fingerprint, digest_part(md5));
    assert_string_equal(imp.public_openssh, k.public_openssh);

    unlink(f);
    free(f), free(sha1), free(pub), free(md5);
    keypair_free(&imp);
    keypair_free(&k);
}

static void test_create_ed25519(void **state)
{
    (void)state;
    keypair_t k;
    verr_t e = { 0 };
    assert_int_equal(keypair_create("ed25519", &k, &e), 0);
    assert_string_equal(k.type, "ed25519");
    assert_memory_equal(k.private_pem, "-----BEGIN OPENSSH PRIVATE KEY-----\n", 36);
    assert_non_null(strstr(k.private_pem, "\n-----END OPENSSH PRIVATE KEY-----\n"));
    assert_memory_equal(k.public_openssh, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", 32);
    assert_int_equal(strlen(k.fingerprint), 44);   /* base64 of 32 bytes, padded */
    assert_int_equal(k.fingerprint[43], '=');

    /* base64 body lines are at most 70 columns, as ssh-keygen writes them */
    for (const char *l = strchr(k.private_pem, '\n') + 1; *l; l = strchr(l, '\n') + 1)
        assert_true(strcspn(l, "\n") <= 70);

    char *f = tmp_path("ed_created");
    char *fpub = tmp_path("ed_created.pub");
    write_file(f, k.private_pem);
    char *pub = run("ssh-keygen -y -f '%s'", f);
    assert_string_equal(pub, k.public_openssh);

    char *line = xasprintf("%s\n", k.public_openssh);
    write_file(fpub, line);
    char *l = run("ssh-keygen -l -f '%s'", fpub);
    char digest[128], fp[128];
    sha256_part(l, digest, sizeof digest);
    snprintf(fp, sizeof fp, "%s", k.fingerprint);
    strip_padding(fp);
    assert_string_equal(fp, digest);

    /* importing the public half gives the same print */
    keypair_t imp;
    expect_ok(k.public_openssh, &imp);
    assert_string_equal(imp.fingerprint, k.fingerprint);
    assert_string_equal(imp.type, "ed25519");

    /* each call makes a new key */
    keypair_t k2;
    assert_int_equal(keypair_create("ed25519", &k2, &e), 0);
    assert_string_not_equal(k2.public_openssh, k.public_openssh);

    unlink(f), unlink(fpub);
    free(f), free(fpub), free(pub), free(line), free(l);
    keypair_free(&imp);
    keypair_free(&k2);
    keypair_free(&k);
}

static void test_create_unknown_type(void **state)
{
    (void)state;
    static const char *bad[] = { "dsa", "", "RSA", "ecdsa", "rsa ", "ed25519x" };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        keypair_t k;
        verr_t e = { 0 };
        assert_int_equal(keypair_create(bad[i], &k, &e), -1);
        assert_string_equal(e.code, "InvalidParameterValue");
        assert_int_equal(e.http_status, 400);
        assert_non_null(strstr(e.message, "not supported"));
        assert_null(k.public_openssh);
        keypair_free(&k);
    }
    keypair_t k;
    verr_t e = { 0 };
    assert_int_equal(keypair_create("dsa", &k, &e), -1);
    assert_string_equal(e.message, "The key type 'dsa' is not supported; use rsa or ed25519");
    assert_int_equal(keypair_create(NULL, &k, &e), -1);
    assert_string_equal(e.code, "InvalidParameterValue");
    /* the tenant's string is quoted back printable-only */
    assert_int_equal(keypair_create("bad\x01type\n", &k, &e), -1);
    assert_string_equal(e.message, "The key type 'bad?type?' is not supported; use rsa or ed25519");
}

/* ---- imports of ssh-keygen's keys ---------------------------------------------------- */

/* ssh-keygen makes the key; returns the .pub line; *type_b64 gets "type base64". */
static char *ssh_keygen_pub(const char *name, const char *args, char **type_b64)
{
    char *f = tmp_path(name);
    char *out = run("ssh-keygen -q %s -N '' -C 'someone@example host' -f '%s' </dev/null"
                    " && echo ok", args, f);
    assert_string_equal(out, "ok");
    char *fpub = xasprintf("%s.pub", f);
    char *line = read_file(fpub);
    const char *sp = strchr(strchr(line, ' ') + 1, ' ');   /* before the comment */
    *type_b64 = strndup(line, (size_t)(sp - line));
    free(out), free(f), free(fpub);
    return line;
}

static void test_import_rsa_from_ssh_keygen(void **state)
{
    (void)state;
    char *norm;
    char *line = ssh_keygen_pub("rsa_imp", "-t rsa -b 2048", &norm);
    keypair_t k;
    expect_ok(line, &k);
    assert_string_equal(k.type, "rsa");
    assert_string_equal(k.public_openssh, norm);
    char *md5 = run("ssh-keygen -e -m PKCS8 -f '%s/rsa_imp.pub' | openssl pkey -pubin"
                    " -outform DER | openssl md5 -c", tmpdir);
    assert_string_equal(k.fingerprint, digest_part(md5));
    assert_int_equal(strlen(k.fingerprint), 47);
    free(line), free(norm), free(md5);
    keypair_free(&k);
}

static void test_import_ed25519_from_ssh_keygen(void **state)
{
    (void)state;
    char *norm;
    char *line = ssh_keygen_pub("ed_imp", "-t ed25519", &norm);
    keypair_t k;
    expect_ok(line, &k);
    assert_string_equal(k.type, "ed25519");
    assert_string_equal(k.public_openssh, norm);
    char *l = run("ssh-keygen -l -f '%s/ed_imp.pub'", tmpdir);
    char digest[128], fp[128];
    sha256_part(l, digest, sizeof digest);
    snprintf(fp, sizeof fp, "%s", k.fingerprint);
    strip_padding(fp);
    assert_string_equal(fp, digest);
    assert_int_equal(strlen(k.fingerprint), 44);   /* AWS keeps the '=' */
    free(line), free(norm), free(l);
    keypair_free(&k);
}

/* Whitespace, CRLF, tabs, no comment and authorized_keys options are all the same key. */
static void test_import_tolerated_forms(void **state)
{
    (void)state;
    blob_t b = { .len = 0 };
    ed25519_blob(&b);
    char *base = line_of("ssh-ed25519", &b, NULL);
    const char *b64 = strchr(base, ' ') + 1;
    char *forms[] = {
        xasprintf("%s", base),
        xasprintf("%s\n", base),
        xasprintf("  \t%s me@host\r\n\n", base),
        xasprintf("ssh-ed25519\t%s\tcomment with  spaces", b64),
        xasprintf("from=\"10.0.0.1\",command=\"echo a b \\\"c d\\\"\",no-pty %s x", base),
        xasprintf("restrict %s", base),
    };
    keypair_t ref;
    expect_ok(base, &ref);
    for (size_t i = 0; i < ARRAY_LEN(forms); i++) {
        keypair_t k;
        expect_ok(forms[i], &k);
        assert_string_equal(k.public_openssh, base);
        assert_string_equal(k.fingerprint, ref.fingerprint);
        keypair_free(&k);
        free(forms[i]);
    }
    keypair_free(&ref);
    free(base);
}

static void test_import_rsa_size_limits(void **state)
{
    (void)state;
    blob_t b512 = { .len = 0 }, b1024 = { .len = 0 }, b16384 = { .len = 0 },
           b16392 = { .len = 0 }, b1023 = { .len = 0 };
    rsa_blob(512, &b512);
    rsa_blob(1024, &b1024);
    fake_rsa_blob(16384, &b16384);
    fake_rsa_blob(16392, &b16392);
    fake_rsa_blob(1023, &b1023);
    char *l512 = line_of("ssh-rsa", &b512, " small");
    char *l1024 = line_of("ssh-rsa", &b1024, NULL);
    char *l16384 = line_of("ssh-rsa", &b16384, NULL);
    char *l16392 = line_of("ssh-rsa", &b16392, NULL);
    char *l1023 = line_of("ssh-rsa", &b1023, NULL);

    keypair_t k;
    expect_ok(l1024, &k);
    keypair_free(&k);
    expect_ok(l16384, &k);
    keypair_free(&k);
    expect_bad(l512);
    expect_bad(l1023);
    expect_bad(l16392);
    free(l512), free(l1024), free(l16384), free(l16392), free(l1023);
}

/* ---- rejections ---------------------------------------------------------------------- */

static void test_reject_empty(void **state)
{
    (void)state;
    expect_bad("");
    expect_bad(" \t\r\n ");
    expect_bad_n(NULL, 0);
    expect_bad_n(NULL, 10);
    expect_bad("ssh-rsa");
    expect_bad("ssh-rsa   ");
    expect_bad("# a comment line");
}

static void test_reject_unsupported_types(void **state)
{
    (void)state;
    blob_t dss = { .len = 0 };
    put_cstr(&dss, "ssh-dss");
    for (int i = 0; i < 4; i++)
        put_mpint(&dss, (const uint8_t[]){ 0x05, 0x07 }, 2);
    char *l = line_of("ssh-dss", &dss, " old@key");
    expect_bad(l);
    free(l);
    expect_bad("ssh-dss AAAAB3NzaC1kc3MAAACBAP1");
    expect_bad("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY=");
    expect_bad("sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t");
    expect_bad("ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t");
    expect_bad("garbage");
    expect_bad("-----BEGIN RSA PRIVATE KEY-----");
    expect_bad("hello world and more");
    expect_bad("ssh-rsa\x01x AAAAB3NzaC1yc2E");
    expect_bad("ssh-RSA AAAAB3NzaC1yc2E");
}

static void test_reject_type_mismatch(void **state)
{
    (void)state;
    blob_t r = { .len = 0 }, ed = { .len = 0 };
    fake_rsa_blob(2048, &r);
    ed25519_blob(&ed);
    char *a = line_of("ssh-ed25519", &r, NULL);
    char *b = line_of("ssh-rsa", &ed, NULL);
    expect_bad(a);
    expect_bad(b);
    free(a), free(b);
}

static void test_reject_truncated_base64(void **state)
{
    (void)state;
    blob_t r = { .len = 0 }, ed = { .len = 0 };
    fake_rsa_blob(2048, &r);
    ed25519_blob(&ed);
    char *lines[] = { line_of("ssh-rsa", &r, NULL), line_of("ssh-ed25519", &ed, NULL) };
    for (size_t i = 0; i < ARRAY_LEN(lines); i++) {
        size_t n = strlen(lines[i]);
        /* cut by 1..12 characters: bad base64 length, or valid base64 of a short blob */
        for (size_t cut = 1; cut <= 12; cut++)
            expect_bad_n(lines[i], n - cut);
        /* just the first few characters */
        expect_bad_n(lines[i], (size_t)(strchr(lines[i], ' ') - lines[i]) + 5);
        free(lines[i]);
    }
}

static void test_reject_bad_base64_chars(void **state)
{
    (void)state;
    blob_t r = { .len = 0 };
    fake_rsa_blob(2048, &r);
    char *line = line_of("ssh-rsa", &r, NULL);
    /* every byte outside the base64 alphabet (and '=' mid-string), including the high
     * bytes libsodium 1.0.18's decoder lets through, and the URL-safe '-' and '_' */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int c = 1; c < 256; c++) {
        if (strchr(alphabet, c))
            continue;
        char *l = xstrdup(line);
        l[40] = (char)c;
        expect_bad(l);   /* a blank splits the field: a truncated blob, still refused */
        free(l);
    }
    /* padding where none belongs, stray bits in the final quantum */
    char *l = xasprintf("%s==", line);
    expect_bad(l);
    free(l);
    expect_bad("ssh-ed25519 AAB=");
    expect_bad("ssh-ed25519 A");
    /* a NUL inside the material */
    char nul[] = "ssh-ed25519 AAAA\0AAAA";
    expect_bad_n(nul, sizeof nul - 1);
    free(line);
}

static void test_reject_trailing_bytes(void **state)
{
    (void)state;
    blob_t r = { .len = 0 }, ed = { .len = 0 };
    fake_rsa_blob(2048, &r);
    ed25519_blob(&ed);
    put_u32(&r, 0);
    put(&ed, "x", 1);
    char *a = line_of("ssh-rsa", &r, NULL);
    char *b = line_of("ssh-ed25519", &ed, NULL);
    expect_bad(a);
    expect_bad(b);
    free(a), free(b);
}

/* Structurally wrong blobs: lengths that overrun, odd field sizes, bad numbers. */
static void test_reject_malformed_blobs(void **state)
{
    (void)state;
    uint8_t pk[33] = { 0 };
    blob_t bs[8];
    memset(bs, 0, sizeof bs);
    put_u32(&bs[0], 0xffffffffu);                /* type length far past the end */
    put(&bs[0], "ssh-rsa", 7);
    put_cstr(&bs[1], "ssh-ed25519");             /* 31-byte key */
    put_str(&bs[1], pk, 31);
    put_cstr(&bs[2], "ssh-ed25519");             /* 33-byte key */
    put_str(&bs[2], pk, 33);
    put_cstr(&bs[3], "ssh-ed25519");             /* key length past the end */
    put_u32(&bs[3], 0x7fffffffu);
    put(&bs[3], pk, 32);
    put_cstr(&bs[4], "ssh-rsa");                 /* even exponent */
    put_mpint(&bs[4], (const uint8_t[]){ 0x01, 0x00, 0x00 }, 3);
    put_mpint(&bs[4], (const uint8_t[2048 / 8]){ 0x80, [255] = 1 }, 256);
    put_cstr(&bs[5], "ssh-rsa");                 /* negative modulus (no sign byte) */
    put_mpint(&bs[5], (const uint8_t[]){ 0x03 }, 1);
    put_str(&bs[5], (const uint8_t[2048 / 8]){ 0x80, [255] = 1 }, 256);
    put_cstr(&bs[6], "ssh-rsa");                 /* zero modulus */
    put_mpint(&bs[6], (const uint8_t[]){ 0x03 }, 1);
    put_u32(&bs[6], 0);
    put_cstr(&bs[7], "ssh-rsa");                 /* exponent only */
    put_mpint(&bs[7], (const uint8_t[]){ 0x01, 0x00, 0x01 }, 3);
    const char *types[] = { "ssh-rsa", "ssh-ed25519", "ssh-ed25519", "ssh-ed25519",
                            "ssh-rsa", "ssh-rsa", "ssh-rsa", "ssh-rsa" };
    for (size_t i = 0; i < ARRAY_LEN(bs); i++) {
        char *l = line_of(types[i], &bs[i], NULL);
        expect_bad(l);
        free(l);
    }
    /* two keys in one material */
    blob_t ed = { .len = 0 };
    ed25519_blob(&ed);
    char *one = line_of("ssh-ed25519", &ed, NULL);
    char *two = xasprintf("%s\n%s\n", one, one);
    expect_bad(two);
    free(one), free(two);
}

static void test_reject_huge(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *big = xmalloc(n + 16);
    memset(big, 'A', n);
    big[n] = '\0';
    expect_bad(big);
    memcpy(big, "ssh-rsa ", 8);
    expect_bad(big);
    /* under the length cap, so it is decoded: all zero bytes, an empty type name */
    big[10008] = '\0';
    expect_bad(big);
    free(big);
}

static void test_free_null_safe(void **state)
{
    (void)state;
    keypair_free(NULL);
    keypair_t k;
    memset(&k, 0, sizeof k);
    keypair_free(&k);
    verr_t e = { 0 };
    assert_int_equal(keypair_create("ed25519", &k, &e), 0);
    keypair_free(&k);
    assert_null(k.private_pem);
    assert_null(k.public_openssh);
    keypair_free(&k);   /* a second free of the same struct is harmless */
}

/* ---- fixture ------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_keypair.XXXXXX");
    if (!mkdtemp(tmpdir) || sodium_init() < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_rsa),
        cmocka_unit_test(test_create_ed25519),
        cmocka_unit_test(test_create_unknown_type),
        cmocka_unit_test(test_import_rsa_from_ssh_keygen),
        cmocka_unit_test(test_import_ed25519_from_ssh_keygen),
        cmocka_unit_test(test_import_tolerated_forms),
        cmocka_unit_test(test_import_rsa_size_limits),
        cmocka_unit_test(test_reject_empty),
        cmocka_unit_test(test_reject_unsupported_types),
        cmocka_unit_test(test_reject_type_mismatch),
        cmocka_unit_test(test_reject_truncated_base64),
        cmocka_unit_test(test_reject_bad_base64_chars),
        cmocka_unit_test(test_reject_trailing_bytes),
        cmocka_unit_test(test_reject_malformed_blobs),
        cmocka_unit_test(test_reject_huge),
        cmocka_unit_test(test_free_null_safe),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
