/* sealed.c - secretbox-sealed small secrets under a key file (sealed.h). */
#include "sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sealed_key_load(const char *path, unsigned char key[SEALED_KEY_LEN], verr_t *e)
{
    int fd = open(path ? path : "", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return verr_set(e, 400, "InvalidParameterValue", "key file %s: %s", path ? path : "(none)", strerror(errno));
    struct stat st;
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && !(st.st_mode & 077) && st.st_size == SEALED_KEY_LEN)
        n = read(fd, key, SEALED_KEY_LEN);
    close(fd);
    if (n != SEALED_KEY_LEN)
        return verr_set(e, 400, "InvalidParameterValue",
                        "key file %s must hold exactly %d bytes and be readable by its owner only", path,
                        SEALED_KEY_LEN);
    return 0;
}

char *sealed_seal(const unsigned char key[SEALED_KEY_LEN], const char *plain)
{
    size_t mlen = strlen(plain), n = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + mlen;
    unsigned char *box = xmalloc(n);
    randombytes_buf(box, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, (const unsigned char *)plain, mlen, box, key);
    size_t blen = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *out = xmalloc(blen);
    sodium_bin2base64(out, blen, box, n, sodium_base64_VARIANT_ORIGINAL);
    free(box);
    return out;
}

int sealed_open(const unsigned char key[SEALED_KEY_LEN], const char *sealed, char **plain, verr_t *e)
{
    size_t slen = strlen(sealed), len = 0;
    while (slen && strchr(" \t\r\n", sealed[slen - 1]))
        slen--;
    unsigned char *box = xmalloc(slen + 1);
    if (sodium_base642bin(box, slen + 1, sealed, slen, NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
        free(box);
        return verr_set(e, 400, "InvalidParameterValue", "not a sealed text");
    }
    size_t mlen = len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    char *out = xmalloc(mlen + 1);
    if (crypto_secretbox_open_easy((unsigned char *)out, box + crypto_secretbox_NONCEBYTES,
                                   len - crypto_secretbox_NONCEBYTES, box, key) != 0) {
        free(box);
        free(out);
        return verr_set(e, 403, "AuthFailure", "the key does not open this sealed text");
    }
    free(box);
    out[mlen] = 0;
    *plain = out;
    return 0;
}
