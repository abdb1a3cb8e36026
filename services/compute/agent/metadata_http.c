/* metadata_http.c - the instance metadata service's HTTP layer (metadata_http.h). */
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http.h"
#include "jsonutil.h"
#include "log.h"
#include "metadata_http.h"
#include "strbuf.h"

#define MD_CACHE_MAX 256
#define TOKEN_TTL_MAX 21600
#define TTL_HEADER "X-aws-ec2-metadata-token-ttl-seconds"
#define TOKEN_HEADER "X-aws-ec2-metadata-token"

typedef struct md_cached {
    char ip[64];
    json_t *answer;
    time_t until;
} md_cached_t;

struct md_http {
    http_server_t *http;
    char vpc_id[64];
    md_http_opts_t o;
    pthread_mutex_t mu;         /* the cache */
    md_cached_t cache[MD_CACHE_MAX];
    int refs;                   /* the owner's, and one per lookup in flight (which may
                                 * answer after md_http_stop) */
};

static void md_unref(md_http_t *m)
{
    if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL))
        return;
    for (int i = 0; i < MD_CACHE_MAX; i++)
        json_decref(m->cache[i].answer);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* ---- the cache of compute's answers, per source address ---- */

static json_t *cache_get(md_http_t *m, const char *ip)
{
    json_t *j = NULL;
    time_t now = time(NULL);
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < MD_CACHE_MAX && !j; i++)
        if (m->cache[i].answer && m->cache[i].until > now && !strcmp(m->cache[i].ip, ip))
            j = json_incref(m->cache[i].answer);
    pthread_mutex_unlock(&m->mu);
    return j;
}

static void cache_put(md_http_t *m, const char *ip, json_t *answer)
{
    if (m->o.cache_s <= 0)
        return;
    time_t now = time(NULL);
    pthread_mutex_lock(&m->mu);
    int slot = 0;   /* the same address, else a free or expired slot, else the oldest */
    for (int i = 0; i < MD_CACHE_MAX; i++) {
        md_cached_t *c = &m->cache[i];
        if (c->answer && !strcmp(c->ip, ip)) {
            slot = i;
            break;
        }
        if (!c->answer || c->until <= now || c->until < m->cache[slot].until)
            slot = i;
    }
    md_cached_t *c = &m->cache[slot];
    json_decref(c->answer);
    snprintf(c->ip, sizeof c->ip, "%s", ip);
    c->answer = json_incref(answer);
    c->until = now + m->o.cache_s;
    pthread_mutex_unlock(&m->mu);
}

void md_http_forget(md_http_t *m, const char *ip)
{
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < MD_CACHE_MAX; i++)
        if (m->cache[i].answer && !strcmp(m->cache[i].ip, ip)) {
            json_decref(m->cache[i].answer);
            m->cache[i].answer = NULL;
        }
    pthread_mutex_unlock(&m->mu);
}

/* ---- IMDSv2 tokens: "<expiry>.<hex HMAC(key, vpc|ip|expiry)>" ---- */

static void token_mac(const md_http_t *m, const char *ip, long long expiry, char hex[65])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char msg[192];
    int n = snprintf(msg, sizeof msg, "%s|%s|%lld", m->vpc_id, ip, expiry);
    crypto_auth_hmacsha256(mac, (const unsigned char *)msg, (unsigned long long)n, m->o.token_key);
    sodium_bin2hex(hex, 65, mac, sizeof mac);
}

static int token_valid(const md_http_t *m, const char *ip, const char *token)
{
    char *dot = NULL;
    long long expiry = strtoll(token, &dot, 10);
    if (!dot || *dot != '.' || strlen(dot + 1) != 64 || expiry <= (long long)time(NULL))
        return 0;
    char want[65];
    token_mac(m, ip, expiry, want);
    return sodium_memcmp(want, dot + 1, 64) == 0;
}

static void put_token(md_http_t *m, http_req_t *req, int hops, http_resp_t *resp)
{
    const char *ttl_s = http_header(req, TTL_HEADER);
    char *end = NULL;
    long ttl = ttl_s ? strtol(ttl_s, &end, 10) : 0;
    if (http_header(req, "X-Forwarded-For")) {   /* a proxy in the instance: refused, as on AWS */
        http_resp_set(resp, 403, "text/plain", "Forbidden\n", 10);
        return;
    }
    if (!ttl_s || !*ttl_s || *end || ttl < 1 || ttl > TOKEN_TTL_MAX) {
        http_resp_set(resp, 400, "text/plain", "Bad Request\n", 12);
        return;
    }
    long long expiry = (long long)time(NULL) + ttl;
    char mac[65];
    token_mac(m, req->remote, expiry, mac);
    char *token = xasprintf("%lld.%s", expiry, mac);
    http_resp_take(resp, 200, "text/plain", token, strlen(token));
    http_resp_header(resp, TTL_HEADER, ttl_s);
    /* The hop limit: a token answer dies after hop_limit routers, so a process behind
     * a NAT or bridge inside the instance (a container) cannot get one. */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci && setsockopt(ci->connect_fd, IPPROTO_IP, IP_TTL, &hops, sizeof hops) < 0)
        log_warn("metadata: cannot set the hop limit: %m");
}

/* ---- answers from compute's document ---- */

static int add_unique(char ***names, size_t *n, const char *name, size_t len)
{
    for (size_t i = 0; i < *n; i++)
        if (strlen((*names)[i]) == len && !strncmp((*names)[i], name, len))
            return 0;
    *names = xrealloc(*names, (*n + 1) * sizeof **names);
    (*names)[(*n)++] = xasprintf("%.*s", (int)len, name);
    return 1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *value_text(const json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return xasprintf("%lld", (long long)json_integer_value(v));
    if (json_is_array(v)) {   /* security-groups and the like: one a line */
        strbuf_t b = {0};
        strbuf_puts(&b, "");
        size_t i;
        const json_t *x;
        json_array_foreach(v, i, x)
            strbuf_printf(&b, "%s%s", i ? "\n" : "", json_is_string(x) ? json_string_value(x) : "");
        return b.s;
    }
    return NULL;
}

char *md_meta_data_text(const json_t *meta_data, const char *path)
{
    char dir[512];
    size_t len = strlen(path);
    while (len && path[len - 1] == '/')
        len--;
    if (len >= sizeof dir - 1)
        return NULL;
    memcpy(dir, path, len);
    dir[len] = 0;
    const json_t *v = json_object_get(meta_data, dir);
    if (v && len)
        return value_text(v);
    /* a listing: the next name under dir of every key, "name/" where more follows */
    if (len)
        strcat(dir, "/");
    size_t dlen = strlen(dir), n = 0;
    char **names = NULL;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)meta_data, key, val) {
        if (strncmp(key, dir, dlen) || !key[dlen])
            continue;
        const char *rest = key + dlen, *slash = strchr(rest, '/');
        add_unique(&names, &n, rest, slash ? (size_t)(slash - rest) + 1 : strlen(rest));
    }
    if (!n)
        return NULL;
    qsort(names, n, sizeof *names, by_name);
    strbuf_t b = {0};
    for (size_t i = 0; i < n; i++) {
        /* a directory with a value of its own (public-keys: "0=<key name>", as EC2 answers
         * public-keys/) is listed once, as a directory */
        int dir_too = 0;
        for (size_t k = 0; k < n && !dir_too; k++)
            dir_too = k != i && !strncmp(names[k], names[i], strlen(names[i])) && !strcmp(names[k] + strlen(names[i]), "/");
        if (!dir_too)
            strbuf_printf(&b, "%s%s", b.len ? "\n" : "", names[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return b.s;
}

static void not_found(http_resp_t *resp)
{
    http_resp_set(resp, 404, "text/plain", "Not Found\n", 10);
}

/* The answer to path for the instance compute described. */
static void answer_from(const json_t *doc, const char *path, http_resp_t *resp)
{
    static const char MD[] = "/latest/meta-data";
    if (!strncmp(path, MD, sizeof MD - 1) && (!path[sizeof MD - 1] || path[sizeof MD - 1] == '/')) {
        const char *sub = path + sizeof MD - 1;
        char *text = md_meta_data_text(json_object_get(doc, "meta_data"), *sub ? sub + 1 : "");
        if (!text)
            return not_found(resp);
        http_resp_take(resp, 200, "text/plain", text, strlen(text));
    } else if (!strcmp(path, "/latest/user-data")) {
        const char *b64 = json_str(doc, "user_data", NULL);
        size_t cap = b64 ? strlen(b64) : 0, n = 0;
        char *bin = xmalloc(cap + 1);
        if (!b64 || !*b64 ||
            sodium_base642bin((unsigned char *)bin, cap, b64, cap, "\n\r ", &n, NULL, sodium_base64_VARIANT_ORIGINAL)) {
            free(bin);
            return not_found(resp);
        }
        http_resp_take(resp, 200, "application/octet-stream", bin, n);
    } else if (!strcmp(path, "/latest/dynamic/instance-identity/document")) {
        const json_t *id = json_object_get(doc, "identity_document");
        if (!json_is_object(id))
            return not_found(resp);
        char *text = json_dumps(id, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        http_resp_take(resp, 200, "text/plain", text, strlen(text));
    } else {
        not_found(resp);
    }
}

/* Paths whose answer is the same for every instance. */
static int static_answer(const char *path, http_resp_t *resp)
{
    static const struct {
        const char *path, *text;
    } fixed[] = {
        {"/", "latest"},
        {"/latest", "dynamic\nmeta-data\nuser-data"},
        {"/latest/", "dynamic\nmeta-data\nuser-data"},
        {"/latest/dynamic", "instance-identity/"},
        {"/latest/dynamic/", "instance-identity/"},
        {"/latest/dynamic/instance-identity", "document"},
        {"/latest/dynamic/instance-identity/", "document"},
    };
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        if (!strcmp(path, fixed[i].path)) {
            http_resp_set(resp, 200, "text/plain", fixed[i].text, strlen(fixed[i].text));
            return 1;
        }
    return 0;
}

/* ---- one request ---- */

typedef struct md_pending {
    md_http_t *m;
    http_deferred_t *d;
    http_req_t *req;
} md_pending_t;

/* One request, with compute's document of the instance that sent it. The instance's own
 * metadata options (RunInstances' MetadataOptions, ModifyInstanceMetadataOptions: the
 * document's metadata_options, only what was set) come before this host's
 * agent.metadata_tokens and agent.metadata_hop_limit: the endpoint turned off answers 403
 * to everything, as EC2's does; tokens required refuse a GET without one (401); the hop
 * limit is the token answer's IP TTL. */
static void serve(md_http_t *m, http_req_t *req, const json_t *doc, http_resp_t *resp)
{
    const json_t *mo = json_object_get(doc, "metadata_options");
    if (!strcmp(json_str(mo, "http_endpoint", "enabled"), "disabled")) {
        http_resp_set(resp, 403, "text/plain", "Forbidden\n", 10);
        return;
    }
    const char *tokens = json_str(mo, "http_tokens", NULL);
    int required = tokens ? !strcmp(tokens, "required") : m->o.tokens_required;
    json_int_t hops = json_integer_value(json_object_get(mo, "hop_limit"));
    if (hops < 1 || hops > 64)
        hops = m->o.hop_limit;
    if (!strcmp(req->method, "PUT"))
        return put_token(m, req, (int)hops, resp);
    const char *token = http_header(req, TOKEN_HEADER);
    if ((token || required) && (!token || !token_valid(m, req->remote, token))) {
        http_resp_set(resp, 401, "text/plain", "Unauthorized\n", 13);
        return;
    }
    if (!static_answer(req->path, resp))
        answer_from(doc, req->path, resp);
}

static void looked_up(void *arg, json_t *reply, const verr_t *err)
{
    md_pending_t *p = arg;
    http_resp_t resp = {0};
    if (reply) {
        cache_put(p->m, p->req->remote, reply);
        serve(p->m, p->req, reply, &resp);
    } else if (err->http_status == 404) {
        /* no instance of this VPC has that address here. Only compute's 404 says so: any
         * other refusal (a compute just restarted, a bus that refused the call) is not the
         * instance's absence, and a guest told 404 takes its user-data as absent for good */
        not_found(&resp);
    } else {
        log_warn("metadata for %s in %s: %s %s", p->req->remote, p->m->vpc_id, err->code, err->message);
        http_resp_set(&resp, 503, "text/plain", "Service Unavailable\n", 20);
    }
    json_decref(reply);
    http_complete(p->d, &resp);
    md_unref(p->m);
    free(p);
}

static void handle(http_req_t *req, http_resp_t *resp)
{
    md_http_t *m = req->app;
    int get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    int put = !strcmp(req->method, "PUT") && !strcmp(req->path, "/latest/api/token");
    if (!get && !put) {
        http_resp_set(resp, 405, "text/plain", "Method Not Allowed\n", 19);
        http_resp_header(resp, "Allow", "GET, HEAD, PUT");
        return;
    }
    /* every answer, a token's too, depends on the instance's options: its document first
     * (the one compute sent ahead is the newest: it came after any answer cached) */
    json_t *doc = m->o.primed ? m->o.primed(m->o.lookup_app, m->vpc_id, req->remote) : NULL;
    if (!doc)
        doc = cache_get(m, req->remote);
    if (doc) {
        serve(m, req, doc, resp);
        json_decref(doc);
        return;
    }
    md_pending_t *p = xcalloc(1, sizeof *p);
    p->m = m;
    __atomic_add_fetch(&m->refs, 1, __ATOMIC_ACQ_REL);
    p->req = req;
    p->d = http_defer(req);
    verr_t e;
    if (m->o.lookup(m->o.lookup_app, m->vpc_id, req->remote, looked_up, p, &e) < 0) {
        e.http_status = 503;   /* could not even ask: not the instance's fault */
        looked_up(p, NULL, &e);
    }
}

md_http_t *md_http_start(int listen_fd, const char *vpc_id, const md_http_opts_t *o, verr_t *e)
{
    md_http_t *m = xcalloc(1, sizeof *m);
    snprintf(m->vpc_id, sizeof m->vpc_id, "%s", vpc_id);
    m->o = *o;
    if (m->o.hop_limit < 1 || m->o.hop_limit > 64)
        m->o.hop_limit = 1;
    pthread_mutex_init(&m->mu, NULL);
    m->refs = 1;
    static const http_route_t routes[] = {{NULL, "/", handle, NULL}, {NULL, NULL, NULL, NULL}};
    http_opts_t ho = {
        .listen_fd = listen_fd,
        .threads = 1,
        .max_body = 4096,
        .server_name = "EC2ws",
        .routes = routes,
        .app = m,
    };
    if (!(m->http = http_start(&ho, e))) {
        pthread_mutex_destroy(&m->mu);
        free(m);
        return NULL;
    }
    return m;
}

void md_http_stop(md_http_t *m)
{
    if (!m)
        return;
    http_stop(m->http);
    md_unref(m);
}
