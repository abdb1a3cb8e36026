/* keys.c - access key ids, secrets, and their encryption at rest. */
#include <stdio.h>
#include <string.h>

#include "identity.h"

/* AWS key ids are "AKIA" + 16 chars of base32 (A-Z2-7); secrets 40 chars base64-ish. */
void identity_new_access_key(char id_out[21], char secret_out[41])
{
    static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char r[56];
    randombytes_buf(r, sizeof r);
    memcpy(id_out, "AKIA", 4);
    for (int i = 0; i < 16; i++)
        id_out[4 + i] = b32[r[i] & 31];
    id_out[20] = 0;
    for (int i = 0; i < 40; i++)
        secret_out[i] = b64[r[16 + i] & 63];
    secret_out[40] = 0;
}

int identity_seal(const identity_t *id, const char *secret, unsigned char **out, size_t *outlen)
{
    size_t mlen = strlen(secret);
    size_t n = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + mlen;
    unsigned char *box = xmalloc(n);
    randombytes_buf(box, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, (const unsigned char *)secret, mlen, box,
                          id->master_key);
    *out = box;
    *outlen = n;
    return 0;
}

int identity_open(const identity_t *id, const unsigned char *box, size_t len, char *secret, size_t secretsz)
{
    if (len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
        return -1;
    size_t mlen = len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    if (mlen + 1 > secretsz)
        return -1;
    if (crypto_secretbox_open_easy((unsigned char *)secret, box + crypto_secretbox_NONCEBYTES,
                                   len - crypto_secretbox_NONCEBYTES, box, id->master_key) != 0)
        return -1;
    secret[mlen] = 0;
    return 0;
}
