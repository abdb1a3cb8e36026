/* bus_mac.c - pairwise message authentication between two principals (bus_mac.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_mac.h"

void bus_topic_server(const char *topic, char out[BUS_PRINCIPAL_MAX])
{
    bus_principal_t p;
    verr_t e;
    out[0] = 0;
    if (!strncmp(topic, "virga.rpc.", 10) && bus_principal_parse(topic + 10, &p, &e) == 0 && p.kind != BUS_P_TEST &&
        p.kind != BUS_P_AGENT)
        snprintf(out, BUS_PRINCIPAL_MAX, "%s", p.name);
    else if (!strncmp(topic, "virga.host.", 11) && strlen(topic + 11) < BUS_PRINCIPAL_MAX - 6)
        snprintf(out, BUS_PRINCIPAL_MAX, "agent-%s", topic + 11);
}

void bus_topic_reader(const char *topic, char out[BUS_PRINCIPAL_MAX])
{
    bus_topic_server(topic, out);
    if (!out[0] && !strncmp(topic, "virga.reply.", 12) && bus_name_valid(topic + 12, BUS_PRINCIPAL_MAX - 1))
        snprintf(out, BUS_PRINCIPAL_MAX, "%s", topic + 12);
}

struct peer {
    struct peer *next;
    char name[BUS_PRINCIPAL_MAX];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];   /* the key `key` was derived from */
    unsigned char key[crypto_generichash_KEYBYTES];
};

struct bus_macs {
    pthread_mutex_t mu;
    bus_keys_t *keys;
    char name[BUS_PRINCIPAL_MAX];                   /* this principal */
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];   /* this principal's Ed25519 public key */
    unsigned char xsk[crypto_scalarmult_BYTES];     /* and its X25519 secret */
    struct peer *peers;                             /* one per principal seen, a few dozen */
};

bus_macs_t *bus_macs_new(const bus_credential_t *self, bus_keys_t *keys)
{
    bus_macs_t *m = xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->keys = keys;
    snprintf(m->name, sizeof m->name, "%s", self->principal);
    crypto_sign_ed25519_sk_to_pk(m->pk, self->sk);
    crypto_sign_ed25519_sk_to_curve25519(m->xsk, self->sk);
    return m;
}

void bus_macs_free(bus_macs_t *m)
{
    if (!m)
        return;
    for (struct peer *p = m->peers, *next; p; p = next) {
        next = p->next;
        sodium_memzero(p, sizeof *p);
        free(p);
    }
    sodium_memzero(m->xsk, sizeof m->xsk);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* The key this principal shares with the holder of pk: BLAKE2b of a label, the X25519
 * secret of the two key pairs, and both public keys in byte order (so both ends derive
 * the same key, bound to the two identities). -1 for a public key that is no valid point
 * or gives an all-zero secret. */
static int derive(const bus_macs_t *m, const unsigned char pk[crypto_sign_PUBLICKEYBYTES],
                  unsigned char key[crypto_generichash_KEYBYTES])
{
    static const char label[] = "virga bus mac v1";
    unsigned char xpk[crypto_scalarmult_BYTES], shared[crypto_scalarmult_BYTES];
    if (crypto_sign_ed25519_pk_to_curve25519(xpk, pk) != 0 || crypto_scalarmult(shared, m->xsk, xpk) != 0)
        return -1;
    int mine_first = memcmp(m->pk, pk, crypto_sign_PUBLICKEYBYTES) < 0;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, crypto_generichash_KEYBYTES);
    crypto_generichash_update(&st, (const unsigned char *)label, sizeof label);
    crypto_generichash_update(&st, shared, sizeof shared);
    crypto_generichash_update(&st, mine_first ? m->pk : pk, crypto_sign_PUBLICKEYBYTES);
    crypto_generichash_update(&st, mine_first ? pk : m->pk, crypto_sign_PUBLICKEYBYTES);
    crypto_generichash_final(&st, key, crypto_generichash_KEYBYTES);
    sodium_memzero(shared, sizeof shared);
    sodium_memzero(&st, sizeof st);
    return 0;
}

/* The key shared with peer, from the cache unless peer's public key changed since. */
static int peer_key(bus_macs_t *m, const char *peer, unsigned char key[crypto_generichash_KEYBYTES])
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    if (!m || !peer || bus_keys_get(m->keys, peer, pk) < 0)
        return -1;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    struct peer *p = m->peers;
    while (p && strcmp(p->name, peer))
        p = p->next;
    if (!p || memcmp(p->pk, pk, sizeof pk)) {
        unsigned char k[crypto_generichash_KEYBYTES];
        rc = derive(m, pk, k);
        if (rc == 0) {
            if (!p) {
                p = xcalloc(1, sizeof *p);
                snprintf(p->name, sizeof p->name, "%s", peer);
                p->next = m->peers;
                m->peers = p;
            }
            memcpy(p->pk, pk, sizeof pk);
            memcpy(p->key, k, sizeof k);
        }
        sodium_memzero(k, sizeof k);
    }
    if (rc == 0)
        memcpy(key, p->key, crypto_generichash_KEYBYTES);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* What is authenticated: the sender's name, a NUL, the topic, a NUL, then the payload. The
 * sender's name is in it because the key is the same in both directions: a reply cannot
 * be passed off as a request from the other end. */
static void tag(const unsigned char key[crypto_generichash_KEYBYTES], const char *sender, const char *topic,
                const void *payload, size_t len, unsigned char mac[BUS_MAC_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, crypto_generichash_KEYBYTES, BUS_MAC_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)sender, strlen(sender) + 1);
    crypto_generichash_update(&st, (const unsigned char *)topic, strlen(topic) + 1);
    crypto_generichash_update(&st, payload, len);
    crypto_generichash_final(&st, mac, BUS_MAC_BYTES);
    sodium_memzero(&st, sizeof st);
}

int bus_mac(bus_macs_t *m, const char *peer, const char *topic, const void *payload, size_t len,
            unsigned char mac[BUS_MAC_BYTES])
{
    unsigned char key[crypto_generichash_KEYBYTES];
    if (peer_key(m, peer, key) < 0)
        return -1;
    tag(key, m->name, topic, payload, len, mac);
    sodium_memzero(key, sizeof key);
    return 0;
}

int bus_mac_verify(bus_macs_t *m, const char *sender, const char *topic, const void *payload, size_t len,
                   const unsigned char *mac, size_t maclen)
{
    unsigned char key[crypto_generichash_KEYBYTES], want[BUS_MAC_BYTES];
    if (!mac || maclen != BUS_MAC_BYTES || peer_key(m, sender, key) < 0)
        return -1;
    tag(key, sender, topic, payload, len, want);
    sodium_memzero(key, sizeof key);
    return sodium_memcmp(want, mac, BUS_MAC_BYTES) == 0 ? 0 : -1;
}
