/* ports.h - what port_create (ports.c) and port_create_many (ports_many.c) share: one
 * port's question read and checked, and its answer. */
#ifndef VIRGA_NETWORK_PORTS_H
#define VIRGA_NETWORK_PORTS_H

#include "enis.h"
#include "ids.h"
#include "service.h"

/* One port asked: the interface to make (s points into subnet and token). */
typedef struct port_request {
    eni_spec_t s;
    char subnet[IDS_MAX];   /* as asked, else the account's default subnet of the zone */
    char token[96];         /* client_token, by default "instance:<instance_id>" */
    int kept_default;       /* in: the default subnet may come from default_subnets.c;
                             * out: it did (a stale one is forgotten and looked up again) */
} port_request_t;

/* default_subnets.c: the default subnet of {account, zone} this process looked up last
 * (1, written to out; 0: none kept), kept after a lookup, forgotten when gone. */
int default_subnets_get(const char *account, const char *az, char out[IDS_MAX]);
void default_subnets_put(const char *account, const char *az, const char *id);
void default_subnets_forget(const char *account, const char *az);

/* Only compute's principal asks for ports (403 UnauthorizedOperation). */
int ports_trusted(bus_ctx_t *ctx, verr_t *e);
/* A port_create body ({instance_id, host?, az?, subnet?, private_ip?, groups?,
 * device_kind?, associate_public_ip?, plug?, client_token?}) of account, checked, into q
 * (the default subnet looked up, or made with the default VPC, when none is named). */
int ports_request_of(bus_ctx_t *ctx, const json_t *body, const char *account, port_request_t *q, verr_t *e);
/* The answer for port id made (or found by its token) for q: the port (read: as
 * ports_read read it, taken; NULL: read now), plugged on q's host now if it asked for the
 * plug and the port found was not. */
int ports_answer(bus_ctx_t *ctx, const port_request_t *q, const char *id, json_t *read, json_t **reply, verr_t *e);
/* The ports of ids (a JSON array) in one statement: {id: port} (one gone is absent), or
 * NULL with e. */
json_t *ports_read(db_t *db, const json_t *ids, verr_t *e);

#endif
