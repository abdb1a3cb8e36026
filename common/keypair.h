/* keypair.h - SSH key pairs as EC2 makes them: CreateKeyPair (rsa 2048 or ed25519; the
 * private key is returned once and never stored), ImportKeyPair (an OpenSSH public key
 * line), and AWS's fingerprints:
 *   - created RSA:   SHA-1 of the private key in PKCS#8 DER, colon-separated hex
 *   - imported RSA:  MD5 of the public key in DER (SubjectPublicKeyInfo), colon hex
 *   - ED25519 (created or imported): base64 (with padding) of the SHA-256 of the
 *     OpenSSH public key blob
 * RSA comes from OpenSSL's libcrypto (libsodium has none); ed25519 from libsodium. */
#ifndef VIRGA_KEYPAIR_H
#define VIRGA_KEYPAIR_H

#include "err.h"

typedef struct keypair {
    char type[16];          /* "rsa" or "ed25519" */
    char *public_openssh;   /* "ssh-rsa AAAA..." / "ssh-ed25519 AAAA..." (no comment) */
    char *private_pem;      /* created keys only: "-----BEGIN RSA PRIVATE KEY-----" (PKCS#1)
                             * for rsa, "-----BEGIN OPENSSH PRIVATE KEY-----" for ed25519;
                             * NULL for imported keys */
    char fingerprint[128];
} keypair_t;

/* type: "rsa" (2048 bits) or "ed25519"; anything else: InvalidParameterValue 400. */
int keypair_create(const char *type, keypair_t *out, verr_t *e);
/* material: the raw OpenSSH public key line ("ssh-rsa AAAA... comment"), as bytes
 * (the gateway has already base64-decoded the API's blob). RSA keys of 1024..16384 bits
 * and ed25519 accepted; anything else: InvalidKey.Format 400 with a clear message. */
int keypair_import(const char *material, size_t len, keypair_t *out, verr_t *e);
void keypair_free(keypair_t *k);   /* frees the strings (zeroes the private key) */

#endif
