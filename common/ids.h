/* ids.h - EC2-style resource ids: "<prefix>-" followed by 17 lowercase hex digits
 * drawn from libsodium's CSPRNG (i-0123456789abcdef0, ami-..., vpc-...). */
#ifndef VIRGA_IDS_H
#define VIRGA_IDS_H

#include <stddef.h>

#define IDS_HEX_DIGITS 17
#define IDS_MAX 48 /* longest prefix we use + '-' + 17 + NUL fits */

/* Write "<prefix>-<17 hex>" into out (size >= IDS_MAX). Returns out. */
char *ids_new(const char *prefix, char out[IDS_MAX]);
/* 1 if s is "<prefix>-" + exactly 17 lowercase hex digits (8 also accepted, as EC2 does
 * for old ids), else 0. */
int ids_valid(const char *prefix, const char *s);
/* Random lowercase hex string of n chars (n < outsz). Used for request and message ids. */
void ids_hex(char *out, size_t n);
/* A UUID v4 string (36 chars + NUL), as EC2 uses for requestId. */
void ids_uuid(char out[37]);
/* The S3 canonical user id of an account: 64 lowercase hex digits, the SHA-256 of
 * "virga-canonical-user:" followed by the 12-digit account id. Derived, so every service
 * computes it without asking; identity keeps the same formula as a generated column
 * (services/identity/sql/003_contacts.sql) to find an account by it. */
void ids_canonical_user(const char *account, char out[65]);
/* 1 if s has the form of a canonical user id (64 lowercase hex digits). */
int ids_canonical_valid(const char *s);

#endif
