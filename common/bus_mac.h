/* bus_mac.h - who sent a message to one reader, for a MAC's price instead of a signature's
 * (docs/security.md, "Who sent a message", and docs/architecture.md).
 *
 * A request goes to a topic only its server reads (virga.rpc.<service>, virga.host.<host>)
 * and a reply to a topic only its caller reads (virga.reply.<principal>). For those, the
 * sender authenticates the message with a key only it and that reader can know: the
 * X25519 shared secret of their two Ed25519 keys (the same keys the principals file
 * publishes), hashed with both public keys. Derived once per peer and kept, so a message
 * costs a keyed BLAKE2b (about 1 us) instead of an Ed25519ph signature and its check
 * (about 22 + 65 us on this VM). Broadcasts (virga.events, virga.usage) keep signatures:
 * every reader of a shared key could forge for the others. */
#ifndef VIRGA_BUS_MAC_H
#define VIRGA_BUS_MAC_H

#include <sodium.h>
#include <stddef.h>

#include "bus_auth.h"

#define BUS_MAC_BYTES 32

/* Who answers on a topic: "<service>" on virga.rpc.<service> when that is a fixed
 * principal, "agent-<host>" on virga.host.<host>; "" otherwise. */
void bus_topic_server(const char *topic, char out[BUS_PRINCIPAL_MAX]);
/* The one principal that reads a topic: its server, or <principal> on
 * virga.reply.<principal>; "" for a topic several principals read (broadcasts). */
void bus_topic_reader(const char *topic, char out[BUS_PRINCIPAL_MAX]);

/* This principal's pairwise MAC keys, derived from its credential and the principals
 * file on first use and again when a peer's public key changes. Thread-safe. */
typedef struct bus_macs bus_macs_t;
bus_macs_t *bus_macs_new(const bus_credential_t *self, bus_keys_t *keys);
void bus_macs_free(bus_macs_t *m);

/* The tag of a message this principal sends to peer on topic: 0, or -1 when peer has no
 * usable public key (the caller signs instead). */
int bus_mac(bus_macs_t *m, const char *peer, const char *topic, const void *payload, size_t len,
            unsigned char mac[BUS_MAC_BYTES]);
/* 0 when mac is sender's tag of (topic, payload) for this principal; -1 otherwise. */
int bus_mac_verify(bus_macs_t *m, const char *sender, const char *topic, const void *payload, size_t len,
                   const unsigned char *mac, size_t maclen);

#endif
