/* identity.h - the identity service's handlers and shared state. */
#ifndef VIRGA_IDENTITY_H
#define VIRGA_IDENTITY_H

#include <sodium.h>

#include "service.h"

typedef struct identity {
    unsigned char master_key[crypto_secretbox_KEYBYTES];
} identity_t;

int identity_init(service_t *svc, verr_t *e);
void identity_fini(service_t *svc);

/* Secret sealing (keys.c). */
int identity_seal(const identity_t *id, const char *secret, unsigned char **out, size_t *outlen);
int identity_open(const identity_t *id, const unsigned char *box, size_t len, char *secret, size_t secretsz);
void identity_new_access_key(char id_out[21], char secret_out[41]);

int identity_bootstrap(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

#endif
