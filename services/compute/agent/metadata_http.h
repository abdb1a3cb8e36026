/* metadata_http.h - the instance metadata service's HTTP layer (169.254.169.254), one
 * server per VPC on the host, answering as EC2's IMDS does:
 *
 *   GET /latest/meta-data/[path]   a value, or a listing (one name a line, directories
 *                                  with a trailing '/') built from compute's flat keys
 *   GET /latest/user-data          the instance's user-data (404 when it has none)
 *   GET /latest/dynamic/instance-identity/document
 *   PUT /latest/api/token          IMDSv2: X-aws-ec2-metadata-token-ttl-seconds 1..21600
 *                                  -> a session token, sent with IP TTL = the hop limit
 *
 * The instance is the request's source address in the server's VPC; what it may read
 * comes from a lookup (compute.instance_metadata in production: metadata_server.c; a
 * test double in tests/unit/test_metadata_http.c), asked without holding a thread
 * (http_defer) and cached for a few seconds. A token names the VPC, the address and its
 * expiry under an HMAC with the process's random key: it is good only for the instance
 * it was given to, and until the agent restarts (the client then gets 401 and asks for
 * another, as after a token expires). The instance's own metadata options, in compute's
 * document (`metadata_options`: http_endpoint, http_tokens, hop_limit, each only when set
 * by RunInstances or ModifyInstanceMetadataOptions), come before the host's defaults
 * below; the endpoint turned off answers 403 to everything. */
#ifndef VIRGA_AGENT_METADATA_HTTP_H
#define VIRGA_AGENT_METADATA_HTTP_H

#include <sodium.h>

#include "bus.h"

/* Ask for the metadata of the instance with address ip in vpc_id: 0 when asked (cb then
 * runs exactly once, with compute's answer or an error, on any thread), else -1 with e. */
typedef int (*md_lookup_fn)(void *app, const char *vpc_id, const char *ip, bus_reply_fn cb, void *arg, verr_t *e);

/* The document of the instance with address ip in vpc_id that compute sent ahead (a
 * launch's doorbell: metadata_server.c), as a new reference, or NULL: asked before the
 * cache and the lookup. */
typedef json_t *(*md_primed_fn)(void *app, const char *vpc_id, const char *ip);

typedef struct md_http_opts {
    md_lookup_fn lookup;
    md_primed_fn primed;        /* may be NULL */
    void *lookup_app;
    int cache_s;                /* answers are reused this long (default 5) */
    int hop_limit;              /* IP TTL of the token answer (default 1), unless the instance's */
    int tokens_required;        /* IMDSv2 only: a GET without a token is 401, unless the instance's */
    unsigned char token_key[crypto_auth_hmacsha256_KEYBYTES];
} md_http_opts_t;

typedef struct md_http md_http_t;

/* Serve listen_fd (bound and listening; taken, also on failure) for vpc_id. */
md_http_t *md_http_start(int listen_fd, const char *vpc_id, const md_http_opts_t *o, verr_t *e);
void md_http_stop(md_http_t *m);
/* Drop the cached answer for source address ip (its instance's metadata changed: the next
 * request asks compute). Any thread. */
void md_http_forget(md_http_t *m, const char *ip);

/* The answer to a meta-data path ("" for the root, "placement/", "instance-id") from
 * compute's flat keys: a value, or a listing; NULL when nothing is there (404). */
char *md_meta_data_text(const json_t *meta_data, const char *path);

#endif
