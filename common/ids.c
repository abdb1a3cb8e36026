/* ids.c - random identifiers: EC2-style resource ids ("i-0123456789abcdef0"), plain
 * hex strings for request and message ids, and UUID v4 request ids. All randomness
 * comes from libsodium's CSPRNG because ids are guessable otherwise, and a guessable
 * resource id lets one tenant probe for another's resources. */
#include "ids.h"
#include "strbuf.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

static void sodium_setup(void)
{
    /* Without a working CSPRNG every id we hand out would be predictable: refuse to run. */
    if (sodium_init() < 0) {
        fprintf(stderr, "virga: sodium_init failed\n");
        abort();
    }
}

static void random_bytes(void *buf, size_t n)
{
    pthread_once(&sodium_once, sodium_setup);
    randombytes_buf(buf, n);
}

void ids_hex(char *out, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char chunk[32];

    if (!out)
        return;
    /* Each random byte yields two uniformly distributed nibbles. */
    for (size_t i = 0; i < n; i += 2 * sizeof chunk) {
        random_bytes(chunk, sizeof chunk);
        for (size_t j = 0; j < 2 * sizeof chunk && i + j < n; j++) {
            unsigned b = chunk[j / 2];
            out[i + j] = digits[(j & 1) ? (b & 0x0f) : (b >> 4)];
        }
    }
    out[n] = '\0';
}

char *ids_new(const char *prefix, char out[IDS_MAX])
{
    /* Room left for the prefix once '-', the digits and the NUL are accounted for. */
    const int max_prefix = IDS_MAX - IDS_HEX_DIGITS - 2;
    char hex[IDS_HEX_DIGITS + 1];

    if (!out)
        return NULL;
    ids_hex(hex, IDS_HEX_DIGITS);
    snprintf(out, IDS_MAX, "%.*s-%s", max_prefix, prefix ? prefix : "", hex);
    return out;
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int ids_valid(const char *prefix, const char *s)
{
    if (!prefix || !s)
        return 0;
    size_t plen = strlen(prefix);
    if (strncmp(s, prefix, plen) != 0 || s[plen] != '-')
        return 0;
    const char *digits = s + plen + 1;
    size_t n = strlen(digits);
    /* 8 digits: the short ids EC2 issued before 2016, still accepted on input. */
    return (n == IDS_HEX_DIGITS || n == 8) && is_lower_hex(digits, n);
}

void ids_uuid(char out[37])
{
    unsigned char b[16];

    if (!out)
        return;
    random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4: random */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
             b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void ids_canonical_user(const char *account, char out[65])
{
    static const char prefix[] = "virga-canonical-user:";
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)prefix, sizeof prefix - 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)account, strlen(account));
    crypto_hash_sha256_final(&st, d);
    sodium_bin2hex(out, 65, d, sizeof d);
}

int ids_canonical_valid(const char *s)
{
    return hex_lower_exact(s, 64);
}
