/* sealed.h - small secrets at rest, sealed with libsodium's secretbox under a 32-byte key
 * file the deploy makes (mode 0600). Used for the credentials of public cloud regions
 * (docs/hybrid.md): `virgadm hybrid seal` writes them, the ec2 driver opens them. A
 * sealed text is one line: base64 of nonce | box. */
#ifndef VIRGA_SEALED_H
#define VIRGA_SEALED_H

#include <sodium.h>
#include <stddef.h>

#include "err.h"

#define SEALED_KEY_LEN crypto_secretbox_KEYBYTES

/* Read a key file: exactly 32 bytes, not readable by group or others (else
 * InvalidParameterValue naming the file). */
int sealed_key_load(const char *path, unsigned char key[SEALED_KEY_LEN], verr_t *e);
/* The sealed line for plain (caller frees). */
char *sealed_seal(const unsigned char key[SEALED_KEY_LEN], const char *plain);
/* Open a sealed line (trailing whitespace ignored): *plain is NUL-terminated, the
 * caller's (free it after sodium_memzero). AuthFailure when the key does not open it. */
int sealed_open(const unsigned char key[SEALED_KEY_LEN], const char *sealed, char **plain, verr_t *e);

#endif
