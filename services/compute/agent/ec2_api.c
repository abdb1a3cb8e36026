/* ec2_api.c - the EC2 Query API client of one public region (ec2_api.h). */
#include "ec2_api.h"

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "log.h"
#include "sealed.h"
#include "sigv4.h"
#include "vm_state.h"

#define EC2_VERSION "2016-11-15"
#define MAX_ANSWER (16u << 20)

struct ec2_client {
    char cloud[64];
    char endpoint[512];
    char host[256];           /* the Host header: host[:port] of the endpoint */
    char path[256];
    char region[64];
    char access_key[128];
    char secret[128];
    long timeout_ms;
    int retries;              /* attempts after the first */
    int retry_base_ms, retry_max_ms;
    const _Atomic int *cancel;
};

static void copy_cfg(const config_t *cfg, const char *cloud, const char *key, const char *def, char *out, size_t n)
{
    char k[256];
    snprintf(k, sizeof k, "hybrid.clouds.%s.%s", cloud, key);
    snprintf(out, n, "%s", config_str(cfg, k, def));
}

static long cfg_int(const config_t *cfg, const char *cloud, const char *key, long def)
{
    char k[256];
    snprintf(k, sizeof k, "hybrid.clouds.%s.%s", cloud, key);
    return config_int(cfg, k, def);
}

/* {"access_key_id", "secret_access_key"} sealed in the region's credentials_file. */
static int load_credentials(ec2_client_t *c, const config_t *cfg, verr_t *e)
{
    char file[512];
    unsigned char key[SEALED_KEY_LEN];
    copy_cfg(cfg, c->cloud, "credentials_file", "", file, sizeof file);
    if (!*file)
        return verr_set(e, 400, "InvalidParameterValue", "hybrid.clouds.%s.credentials_file is not set", c->cloud);
    if (sealed_key_load(config_str(cfg, "hybrid.key_file", "/etc/virga/hybrid.key"), key, e) < 0)
        return -1;
    char *text = NULL, *plain = NULL;
    size_t len = 0;
    uint64_t total = 0;
    int rc = -1;
    json_t *doc = NULL;
    if (vm_file_tail(file, 64 * 1024, &text, &len, &total, e) < 0)
        goto out;
    if (!len) {
        verr_set(e, 400, "InvalidParameterValue", "%s is empty or absent", file);
        goto out;
    }
    if (sealed_open(key, text, &plain, e) < 0)
        goto out;
    doc = json_loads(plain, 0, NULL);
    const char *ak = json_str(doc, "access_key_id", ""), *sk = json_str(doc, "secret_access_key", "");
    if (!*ak || !*sk || strlen(ak) >= sizeof c->access_key || strlen(sk) >= sizeof c->secret) {
        verr_set(e, 400, "InvalidParameterValue", "%s does not hold access_key_id and secret_access_key", file);
        goto out;
    }
    snprintf(c->access_key, sizeof c->access_key, "%s", ak);
    snprintf(c->secret, sizeof c->secret, "%s", sk);
    rc = 0;
out:
    json_decref(doc);
    sodium_memzero(key, sizeof key);
    if (plain) {
        sodium_memzero(plain, strlen(plain));
        free(plain);
    }
    free(text);
    return rc;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

ec2_client_t *ec2_client_open(const config_t *cfg, const char *cloud, const _Atomic int *cancel, verr_t *e)
{
    pthread_once(&curl_once, curl_init);
    ec2_client_t *c = xcalloc(1, sizeof *c);
    snprintf(c->cloud, sizeof c->cloud, "%s", cloud);
    c->cancel = cancel;
    copy_cfg(cfg, cloud, "endpoint", "", c->endpoint, sizeof c->endpoint);
    copy_cfg(cfg, cloud, "region", "us-east-1", c->region, sizeof c->region);
    c->timeout_ms = cfg_int(cfg, cloud, "timeout_ms", 10000);
    c->retries = (int)cfg_int(cfg, cloud, "retries", 4);
    c->retry_base_ms = (int)cfg_int(cfg, cloud, "retry_base_ms", 200);
    c->retry_max_ms = (int)cfg_int(cfg, cloud, "retry_max_ms", 5000);
    const char *u = c->endpoint, *sep = strstr(u, "://");
    if (!*u || !sep || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8))) {
        verr_set(e, 400, "InvalidParameterValue", "hybrid.clouds.%s.endpoint must be an http(s) URL, not '%s'", cloud,
                 u);
        goto fail;
    }
    const char *h = sep + 3, *slash = strchr(h, '/');
    snprintf(c->host, sizeof c->host, "%.*s", (int)(slash ? (size_t)(slash - h) : strlen(h)), h);
    snprintf(c->path, sizeof c->path, "%s", slash ? slash : "/");
    if (c->timeout_ms < 100 || c->retries < 0 || c->retries > 20 || c->retry_base_ms < 1 ||
        c->retry_max_ms < c->retry_base_ms) {
        verr_set(e, 400, "InvalidParameterValue", "hybrid.clouds.%s: timeout_ms, retries or retry_*_ms out of range",
                 cloud);
        goto fail;
    }
    if (load_credentials(c, cfg, e) < 0)
        goto fail;
    return c;
fail:
    free(c);
    return NULL;
}

void ec2_client_close(ec2_client_t *c)
{
    if (!c)
        return;
    sodium_memzero(c->secret, sizeof c->secret);
    free(c);
}

const char *ec2_client_cloud(const ec2_client_t *c) { return c->cloud; }
const char *ec2_client_endpoint(const ec2_client_t *c) { return c->endpoint; }

void ec2_param(ec2_params_t *p, const char *name, const char *value)
{
    char *k = sigv4_uri_encode(name, strlen(name), 0), *v = sigv4_uri_encode(value, strlen(value), 0);
    strbuf_printf(&p->b, "%s%s=%s", p->b.len ? "&" : "", k, v);
    free(k);
    free(v);
}

void ec2_paramf(ec2_params_t *p, const char *name, const char *fmt, ...)
{
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    ec2_param(p, name, v);
}

void ec2_params_free(ec2_params_t *p)
{
    free(p->b.s);
    p->b = (strbuf_t){0};
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    strbuf_t *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > MAX_ANSWER)
        return 0;
    strbuf_put(b, ptr, n);
    return n;
}

/* One signed POST. 0 with *status and the body; -1 when no HTTP answer came (e set). */
static int post_once(ec2_client_t *c, const char *body, long *status, strbuf_t *out, verr_t *e)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char amz[17], date[9], hash[65], sig[65];
    strftime(amz, sizeof amz, "%Y%m%dT%H%M%SZ", &tm);
    strftime(date, sizeof date, "%Y%m%d", &tm);
    sigv4_sha256_hex(body, strlen(body), hash);
    const char *ctype = "application/x-www-form-urlencoded; charset=utf-8";
    sigv4_header_t hs[] = {{"content-type", ctype}, {"host", c->host}, {"x-amz-date", amz}};
    sigv4_request_t req = {.method = "POST", .path = c->path, .query = "", .headers = hs, .nheaders = 3,
                           .payload_hash = hash};
    char *creq = sigv4_canonical_request(&req, "content-type;host;x-amz-date", e);
    if (!creq)
        return -1;
    char *sts = sigv4_string_to_sign(amz, date, c->region, "ec2", creq);
    uint8_t key[SIGV4_KEY_LEN];
    sigv4_signing_key(c->secret, date, c->region, "ec2", key);
    sigv4_sign(key, sts, sig);
    free(creq);
    free(sts);
    char auth[512], h_date[64], h_type[128];
    snprintf(auth, sizeof auth,
             "Authorization: AWS4-HMAC-SHA256 Credential=%s/%s/%s/ec2/aws4_request, "
             "SignedHeaders=content-type;host;x-amz-date, Signature=%s",
             c->access_key, date, c->region, sig);
    snprintf(h_date, sizeof h_date, "X-Amz-Date: %s", amz);
    snprintf(h_type, sizeof h_type, "Content-Type: %s", ctype);
    CURL *cu = curl_easy_init();
    struct curl_slist *hl = NULL;
    hl = curl_slist_append(hl, auth);
    hl = curl_slist_append(hl, h_date);
    hl = curl_slist_append(hl, h_type);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(cu, CURLOPT_URL, c->endpoint);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(cu);
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(cu);
    curl_slist_free_all(hl);
    if (rc != CURLE_OK)
        return verr_set(e, 503, "PublicCloudUnavailable", "%s (%s) did not answer: %s", c->cloud, c->endpoint,
                        curl_easy_strerror(rc));
    return 0;
}

static xmlNode *child(xmlNode *n, const char *name)
{
    for (xmlNode *k = n ? n->children : NULL; k; k = k->next)
        if (k->type == XML_ELEMENT_NODE && !strcmp((const char *)k->name, name))
            return k;
    return NULL;
}

/* The first element of that name at any depth below n (n included). */
static xmlNode *find(xmlNode *n, const char *name)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (!strcmp((const char *)n->name, name))
            return n;
        xmlNode *f = find(n->children, name);
        if (f)
            return f;
    }
    return NULL;
}

static void text_of(xmlNode *n, char *out, size_t size)
{
    xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
    snprintf(out, size, "%s", t ? (const char *)t : "");
    xmlFree(t);
}

static void path_text(xmlNode *n, const char *a, const char *b, char *out, size_t size)
{
    xmlNode *x = child(n, a);
    text_of(b ? child(x, b) : x, out, size);
}

static void parse_instance(xmlNode *it, ec2_instance_t *o)
{
    memset(o, 0, sizeof *o);
    path_text(it, "instanceId", NULL, o->id, sizeof o->id);
    path_text(it, "instanceState", "name", o->state, sizeof o->state);
    if (!o->state[0])
        path_text(it, "currentState", "name", o->state, sizeof o->state);
    path_text(it, "ipAddress", NULL, o->public_ip, sizeof o->public_ip);
    path_text(it, "privateIpAddress", NULL, o->private_ip, sizeof o->private_ip);
    for (xmlNode *t = child(child(it, "tagSet"), "item"); t; t = t->next) {
        if (t->type != XML_ELEMENT_NODE)
            continue;
        char k[128], v[128];
        path_text(t, "key", NULL, k, sizeof k);
        path_text(t, "value", NULL, v, sizeof v);
        if (!strcmp(k, "virga:owner"))
            snprintf(o->owner_tag, sizeof o->owner_tag, "%s", v);
        else if (!strcmp(k, "virga:instance-id"))
            snprintf(o->local_id, sizeof o->local_id, "%.31s", v);
    }
}

/* Every instancesSet/item below n, appended to *out. */
static void collect(xmlNode *n, ec2_instance_t **out, size_t *cnt)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (!strcmp((const char *)n->name, "instancesSet")) {
            for (xmlNode *it = n->children; it; it = it->next) {
                if (it->type != XML_ELEMENT_NODE || strcmp((const char *)it->name, "item"))
                    continue;
                *out = xrealloc(*out, (*cnt + 1) * sizeof **out);
                parse_instance(it, &(*out)[(*cnt)++]);
            }
            continue;
        }
        collect(n->children, out, cnt);
    }
}

static int retryable(long status, const char *code)
{
    static const char *const codes[] = {"RequestLimitExceeded", "Throttling", "ThrottlingException",
                                        "RequestThrottled", "TooManyRequestsException", "ServiceUnavailable",
                                        "Unavailable", "InternalError", "InternalFailure", NULL};
    if (status >= 500 || status == 429)
        return 1;
    for (size_t i = 0; code && codes[i]; i++)
        if (!strcmp(code, codes[i]))
            return 1;
    return 0;
}

/* Remote errors no retry fixes (docs/hybrid.md, "Permanent and retryable errors"): the
 * request itself, its image, key or groups, or this cloud's permission is wrong. What is
 * not here is retried (throttling, 5xx, capacity, quotas, anything unknown), within
 * the launch deadline compute keeps. */
static const char *const permanent_codes[] = {
    "AuthFailure", "UnauthorizedOperation", "OptInRequired", "Blocked", "PendingVerification",
    "SignatureDoesNotMatch", "InvalidClientTokenId", "AccessDenied",
    "InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable",
    "InvalidParameterValue", "InvalidParameterCombination", "InvalidParameter", "MissingParameter",
    "UnknownParameter", "InvalidAction", "UnsupportedOperation", "Unsupported",
    "InvalidKeyPair.NotFound", "InvalidKeyPair.Format", "InvalidGroup.NotFound",
    "InvalidSecurityGroupID.NotFound", "InvalidSubnetID.NotFound", "InvalidUserData.Malformed",
    NULL,
};

int ec2_error_permanent(const verr_t *e)
{
    for (size_t i = 0; permanent_codes[i]; i++)
        if (!strcmp(e->code, permanent_codes[i]))
            return 1;
    return 0;
}

/* Full jitter: a random wait in [0, min(max, base * 2^attempt)], cut into short sleeps
 * so that an agent stopping does not wait for it. */
static void backoff(ec2_client_t *c, int attempt)
{
    long cap = c->retry_base_ms;
    for (int i = 0; i < attempt && cap < c->retry_max_ms; i++)
        cap *= 2;
    if (cap > c->retry_max_ms)
        cap = c->retry_max_ms;
    long wait = (long)randombytes_uniform((uint32_t)cap + 1);
    for (long done = 0; done < wait && !(c->cancel && atomic_load(c->cancel)); done += 50)
        vm_sleep_ms((int)(wait - done < 50 ? wait - done : 50));
}

/* The answer of Action as a parsed document, after retries. */
static xmlDoc *call(ec2_client_t *c, const char *action, ec2_params_t *p, verr_t *e)
{
    strbuf_t body = {0};
    strbuf_printf(&body, "Action=%s&Version=%s%s%s", action, EC2_VERSION, p && p->b.len ? "&" : "",
                  p && p->b.len ? p->b.s : "");
    xmlDoc *doc = NULL;
    for (int attempt = 0;; attempt++) {
        strbuf_t out = {0};
        long status = 0;
        int again = 0;
        if (post_once(c, body.s, &status, &out, e) < 0) {
            again = 1;
        } else {
            doc = out.len ? xmlReadMemory(out.s, (int)out.len, NULL, NULL,
                                          XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)
                          : NULL;
            xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
            xmlNode *err = root ? find(root, "Errors") : NULL;
            if (status >= 200 && status < 300 && root && !err) {
                free(out.s);
                break;
            }
            char code[128] = "", msg[512] = "";
            if (err) {
                text_of(find(err, "Code"), code, sizeof code);
                text_of(find(err, "Message"), msg, sizeof msg);
            }
            if (!code[0])
                snprintf(code, sizeof code, "%s", status >= 500 || !status ? "PublicCloudUnavailable" : "PublicCloudError");
            verr_set(e, status >= 400 && status < 600 ? (int)status : 502, code, "%s %s: %s", c->cloud, action,
                     msg[0] ? msg : "no error message (HTTP status only)");
            again = retryable(status, code);
            if (doc)
                xmlFreeDoc(doc);
            doc = NULL;
        }
        free(out.s);
        if (!again || attempt >= c->retries || (c->cancel && atomic_load(c->cancel)))
            break;
        log_warn("%s %s: %s %s (attempt %d of %d, retrying)", c->cloud, action, e->code, e->message, attempt + 1,
                 c->retries + 1);
        backoff(c, attempt);
    }
    free(body.s);
    return doc;
}

int ec2_call_instances(ec2_client_t *c, const char *action, ec2_params_t *p, ec2_instance_t **out, size_t *n,
                       char *next, size_t next_size, verr_t *e)
{
    if (out) {
        *out = NULL;
        *n = 0;
    }
    if (next && next_size)
        next[0] = 0;
    xmlDoc *doc = call(c, action, p, e);
    if (!doc)
        return -1;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (out)
        collect(root, out, n);
    if (next && next_size)
        text_of(child(root, "nextToken"), next, next_size);
    xmlFreeDoc(doc);
    return 0;
}

int ec2_console_output(ec2_client_t *c, const char *remote_id, char **buf, size_t *len, verr_t *e)
{
    ec2_params_t p = {0};
    ec2_param(&p, "InstanceId", remote_id);
    xmlDoc *doc = call(c, "GetConsoleOutput", &p, e);
    ec2_params_free(&p);
    if (!doc)
        return -1;
    xmlChar *t = xmlNodeGetContent(child(xmlDocGetRootElement(doc), "output"));
    const char *b64 = t ? (const char *)t : "";
    size_t bl = strlen(b64), got = 0;
    *buf = xmalloc(bl + 1);
    if (sodium_base642bin((unsigned char *)*buf, bl + 1, b64, bl, " \r\n", &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        got = 0;
    (*buf)[got] = 0;
    *len = got;
    xmlFree(t);
    xmlFreeDoc(doc);
    return 0;
}
