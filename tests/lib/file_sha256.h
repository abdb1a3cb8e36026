/* file_sha256.h - the SHA-256 of a whole file in hex (libsodium), for the tests and
 * benchmarks that hand a driver an image file with its digest. */
#ifndef VIRGA_TESTS_FILE_SHA256_H
#define VIRGA_TESTS_FILE_SHA256_H

#include <sodium.h>
#include <stdio.h>

/* 0, or -1 when the file cannot be opened. */
static inline int file_sha(const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[65536], d[32];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0)
        crypto_hash_sha256_update(&st, buf, r);
    fclose(f);
    crypto_hash_sha256_final(&st, d);
    sodium_bin2hex(hex, 65, d, 32);
    return 0;
}

#endif
