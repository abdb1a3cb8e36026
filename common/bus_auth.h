/* bus_auth.h - who sent a bus message, in a way the sender cannot forge (docs/security.md).
 *
 * Every process on the bus is a principal: a service ("identity", "gateway", ...), the
 * operator's tool ("virgadm") or one host's agent ("agent-<host id>"). A principal has
 * one credential file (0600): its SCRAM password for the broker, which lets the broker
 * hold it to its ACLs, and its Ed25519 signing key. Every message carries the sender's
 * name and its signature over the topic and the payload (Kafka record headers); a
 * receiver checks the signature against the public keys in the principals file and drops
 * what does not verify. What a principal may do besides is a table here (which kind it
 * is, whether it may speak for a tenant) and, per message type, the `from` column of the
 * handler table (bus.h). */
#ifndef VIRGA_BUS_AUTH_H
#define VIRGA_BUS_AUTH_H

#include <sodium.h>
#include <stddef.h>

#include "err.h"

/* Kinds of principal, one bit each, for the `from` column of handler tables. */
enum {
    BUS_P_IDENTITY = 1u << 0,
    BUS_P_COMPUTE = 1u << 1,
    BUS_P_IMAGE = 1u << 2,
    BUS_P_NETWORK = 1u << 3,
    BUS_P_OBJECTSTORE = 1u << 4,
    BUS_P_GATEWAY = 1u << 5,
    BUS_P_ACCOUNTING = 1u << 6,
    BUS_P_OPERATOR = 1u << 7,    /* virgadm */
    BUS_P_AGENT = 1u << 8,       /* any host's agent */
    BUS_P_TEST = 1u << 9,        /* principals named "test-*": unit tests only */
    BUS_P_BILLING = 1u << 10,    /* a billing system: reads virga.usage, sends nothing */
};
#define BUS_FROM_SERVICES (BUS_P_IDENTITY | BUS_P_COMPUTE | BUS_P_IMAGE | BUS_P_NETWORK | BUS_P_OBJECTSTORE | \
                           BUS_P_GATEWAY | BUS_P_ACCOUNTING)
#define BUS_FROM_ANY (BUS_FROM_SERVICES | BUS_P_OPERATOR | BUS_P_AGENT | BUS_P_TEST)

#define BUS_PRINCIPAL_MAX 72
#define BUS_SIG_BYTES crypto_sign_BYTES

typedef struct bus_principal {
    char name[BUS_PRINCIPAL_MAX];
    unsigned kind;          /* one BUS_P_* bit */
    int asserts_callers;    /* may name the tenant a request acts for */
    const char *host;       /* agents: the host id (inside name); else NULL */
} bus_principal_t;

/* 1 when s is 1..max letters, digits, '-' and '_': no '.', so that one principal's topic
 * and group prefixes ("virga.reply.<name>", "<name>.") never cover another's. Principal
 * names and host ids are such words. */
int bus_name_valid(const char *s, size_t max);

/* What a name stands for: 0, or -1 with AccessDenied for a name that is no principal
 * ("agent-" with a host id of letters, digits, '-' and '_'; the fixed service names;
 * "virgadm"; "test-*"). */
int bus_principal_parse(const char *name, bus_principal_t *out, verr_t *e);

/* A principal's own credential, from its file (JSON: principal, password, signing_key). */
typedef struct bus_credential {
    char principal[BUS_PRINCIPAL_MAX];
    char password[128];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
} bus_credential_t;

/* Read a credential file; refused when others may read it (mode & 077). */
int bus_credential_load(const char *path, bus_credential_t *c, verr_t *e);
/* A new credential for name (random password and key pair), written 0600 to path, and
 * its public key added to (or replaced in) the principals file at pubs. */
int bus_credential_create(const char *name, const char *path, const char *pubs, verr_t *e);
void bus_credential_wipe(bus_credential_t *c);

/* The principals file: every principal's public key. Reloaded when it changes (a host
 * added later), checked at most once a second. Thread-safe. */
typedef struct bus_keys bus_keys_t;
bus_keys_t *bus_keys_open(const char *path, verr_t *e);
void bus_keys_free(bus_keys_t *k);
/* name's public key: 0, or -1 for a name not in the file. A name not known yet makes the
 * file be read again (a principal added since), at most once a second. */
int bus_keys_get(bus_keys_t *k, const char *name, unsigned char pk[crypto_sign_PUBLICKEYBYTES]);

/* The signature of a message: over the topic name and the payload. */
void bus_sign(const bus_credential_t *c, const char *topic, const void *payload, size_t len,
              unsigned char sig[BUS_SIG_BYTES]);
/* 0 when sig is name's signature of (topic, payload); -1 for an unknown principal or a
 * signature that does not verify. */
int bus_verify(bus_keys_t *k, const char *name, const char *topic, const void *payload, size_t len,
               const unsigned char *sig, size_t siglen);

#endif
