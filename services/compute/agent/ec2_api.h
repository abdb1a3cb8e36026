/* ec2_api.h - a client of one public EC2-compatible region (docs/hybrid.md): the EC2
 * Query API over libcurl, signed with the project's SigV4 code, with retries (backoff
 * and full jitter) for throttling, 5xx answers and timeouts. Answers are parsed with
 * libxml2; the few fields the ec2 driver needs are read out into plain structs.
 *
 * Threads: one client is used by several driver threads at once; it holds no mutable
 * state after ec2_client_open. */
#ifndef VIRGA_AGENT_EC2_API_H
#define VIRGA_AGENT_EC2_API_H

#include <stdatomic.h>
#include <stddef.h>

#include "config.h"
#include "err.h"
#include "strbuf.h"

typedef struct ec2_client ec2_client_t;

/* The region's settings, hybrid.clouds.<cloud>.* (docs/config.md); the credentials are
 * opened from its sealed credentials_file with hybrid.key_file. */
ec2_client_t *ec2_client_open(const config_t *cfg, const char *cloud, const _Atomic int *cancel, verr_t *e);
void ec2_client_close(ec2_client_t *c);
const char *ec2_client_cloud(const ec2_client_t *c);
const char *ec2_client_endpoint(const ec2_client_t *c);

/* Parameters of one request, form-encoded as they are added. */
typedef struct ec2_params {
    strbuf_t b;
} ec2_params_t;
void ec2_param(ec2_params_t *p, const char *name, const char *value);
void ec2_paramf(ec2_params_t *p, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ec2_params_free(ec2_params_t *p);

/* One remote instance, as DescribeInstances/RunInstances show it. */
typedef struct ec2_instance {
    char id[32];
    char state[16];           /* pending, running, stopping, stopped, shutting-down, terminated */
    char public_ip[46], private_ip[46];
    char owner_tag[128];      /* tag virga:owner */
    char local_id[32];        /* tag virga:instance-id */
} ec2_instance_t;

/* Send Action with p (may be NULL) and parse the instances of the answer (reservationSet
 * or instancesSet, whichever it has) into *out (caller frees; may be NULL for actions
 * whose answer is not needed). *next gets nextToken when given room. Errors: the remote
 * code and message, prefixed with the cloud's name; after the retries, the last one. */
int ec2_call_instances(ec2_client_t *c, const char *action, ec2_params_t *p, ec2_instance_t **out, size_t *n,
                       char *next, size_t next_size, verr_t *e);
/* 1 when e (a remote error, or the driver's own InvalidAMIID.NotFound for an unmapped
 * image) is one no retry fixes: the launch fails for good. */
int ec2_error_permanent(const verr_t *e);
/* GetConsoleOutput: the decoded console text (caller frees), possibly empty. */
int ec2_console_output(ec2_client_t *c, const char *remote_id, char **buf, size_t *len, verr_t *e);

#endif
