/* console_s3.c - the console's object store requests: /console/s3/<bucket>/<key>?<query>
 * becomes the same S3 request to the object store, signed with the session's own
 * temporary key (identity/sessions.c), so the object store applies the user's policies,
 * ACLs and bucket policies exactly as for any client. The gateway never holds a secret:
 * it asks identity for the date-scoped signing key and presigns the request (SigV4 query
 * form, valid console.s3_url_ttl_s).
 *
 * Small requests (listings, bucket and object create/delete, uploads up to
 * console.s3_max_upload bytes, and the parts and POSTs of a multipart upload, which the
 * console uses above 8 MiB) are relayed by a worker thread (libcurl), never an HTTP
 * thread; a download (?x-virga-download) is answered with a redirect to the presigned
 * URL, so its bytes go straight from the object store to the browser. Changes need the
 * session's CSRF token (X-Virga-CSRF) like every console change. */
#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gateway.h"
#include "jsonutil.h"
#include "log.h"
#include "strbuf.h"

#define MAX_RELAYS 16
static int relays;   /* worker threads relaying now */

typedef struct s3_call {
    http_deferred_t *d;
    service_t *svc;
    gateway_t *gw;
    char token[72], csrf[72], method[8], ctype[128];
    char *path, *query;           /* after /console/s3, raw */
    int download;
    strbuf_t body;
    size_t max;
    int too_large;
    char akid[32];
    char *url;
    int status;                   /* relayed answer */
    strbuf_t out;
    char *rheaders[4];            /* Content-Type, ETag, Last-Modified, x-amz-version-id as received */
} s3_call_t;

static void s3_error(http_resp_t *resp, int status, const char *code, const char *msg)
{
    char *x = xasprintf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>",
                        code, msg);
    http_resp_take(resp, status, "application/xml", x, strlen(x));
}

/* The call was answered (http_complete): forget it. Deferred calls count in
 * gw->inflight, which the gateway's fini waits for, like forwarded actions. */
static void call_free(s3_call_t *c)
{
    if (c->d)
        __atomic_sub_fetch(&c->gw->inflight, 1, __ATOMIC_SEQ_CST);
    free(c->path);
    free(c->query);
    free(c->body.s);
    free(c->out.s);
    free(c->url);
    for (int i = 0; i < 4; i++)
        free(c->rheaders[i]);
    free(c);
}

static void finish_err(s3_call_t *c, const verr_t *e)
{
    verr_t shown;
    gw_public_error(e, &shown);
    http_resp_t resp = {.status = 200};
    s3_error(&resp, shown.http_status, shown.code, shown.message);
    http_complete(c->d, &resp);
    call_free(c);
}

/* ---- the relay, on its own thread ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    s3_call_t *c = arg;
    if (c->out.len + sz * n > c->max)
        return 0;   /* aborts: too large to relay */
    strbuf_put(&c->out, p, sz * n);
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    static const char *const keep[] = {"Content-Type:", "ETag:", "Last-Modified:", "x-amz-version-id:"};
    s3_call_t *c = arg;
    size_t len = sz * n;
    for (int i = 0; i < 4; i++) {
        size_t k = strlen(keep[i]);
        if (len > k && !strncasecmp(p, keep[i], k) && !c->rheaders[i]) {
            const char *v = p + k;
            size_t vl = len - k;
            while (vl && (*v == ' ')) v++, vl--;
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n')) vl--;
            c->rheaders[i] = xasprintf("%.*s", (int)vl, v);
        }
    }
    return len;
}

static void *relay(void *arg)
{
    s3_call_t *c = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
    char ct[160];
    /* as the browser sent it; none is none (curl would say a POST is a form) */
    snprintf(ct, sizeof ct, "Content-Type:%s%s", c->ctype[0] ? " " : "", c->ctype);
    hdrs = curl_slist_append(hdrs, ct);
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    if (!strcmp(c->method, "HEAD"))
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(c->method, "GET"))
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    if (!strcmp(c->method, "PUT") || !strcmp(c->method, "POST")) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body.s ? c->body.s : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body.len);
    }
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    http_resp_t resp = {.status = 200};
    if (rc == CURLE_WRITE_ERROR)
        s3_error(&resp, 502, "ResponseTooLarge", "The answer is too large for the console; use a client (aws s3).");
    else if (rc != CURLE_OK) {
        log_warn("console s3 %s %s: %s", c->method, c->path, curl_easy_strerror(rc));
        s3_error(&resp, 503, "ServiceUnavailable", "The object store did not answer; try again.");
    } else {
        static const char *const names[] = {"Content-Type", "ETag", "Last-Modified", "x-amz-version-id"};
        for (int i = 1; i < 4; i++)
            if (c->rheaders[i])
                http_resp_header(&resp, names[i], c->rheaders[i]);
        http_resp_header(&resp, "Cache-Control", "no-store");
        http_resp_set(&resp, (int)status, c->rheaders[0] ? c->rheaders[0] : "application/xml", c->out.s ? c->out.s : "",
                      c->out.len);
    }
    http_complete(c->d, &resp);
    call_free(c);
    __atomic_sub_fetch(&relays, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* ---- signing ---- */

static char *presign(s3_call_t *c, const uint8_t key[SIGV4_KEY_LEN], verr_t *e)
{
    const char *base = c->gw->console_s3_url;   /* http://host:port */
    const char *host = strstr(base, "://") ? strstr(base, "://") + 3 : base;
    char amz[17], date[9];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(amz, sizeof amz, "%Y%m%dT%H%M%SZ", &tm);
    memcpy(date, amz, 8);
    date[8] = 0;
    strbuf_t q = {0};
    if (c->query[0])
        strbuf_printf(&q, "%s&", c->query);
    if (c->download)
        strbuf_puts(&q, "response-content-disposition=attachment&");
    strbuf_printf(&q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s%%2F%s%%2F%s%%2Fs3%%2Faws4_request"
                      "&X-Amz-Date=%s&X-Amz-Expires=%ld&X-Amz-SignedHeaders=host",
                  c->akid, date, c->gw->region, amz, c->gw->console_s3_url_ttl_s);
    sigv4_header_t hh = {"host", host};
    sigv4_request_t rq = {.method = c->method, .path = c->path, .query = q.s, .headers = &hh, .nheaders = 1,
                          .payload_hash = "UNSIGNED-PAYLOAD", .s3 = 1};
    char *creq = sigv4_canonical_request(&rq, "host", e);
    if (!creq) {
        free(q.s);
        return NULL;
    }
    char *sts = sigv4_string_to_sign(amz, date, c->gw->region, "s3", creq);
    char sig[65];
    sigv4_sign(key, sts, sig);
    char *url = xasprintf("%s%s?%s&X-Amz-Signature=%s", base, c->path, q.s, sig);
    free(creq);
    free(sts);
    free(q.s);
    return url;
}

static void key_done(void *arg, json_t *reply, const verr_t *err)
{
    s3_call_t *c = arg;
    verr_t e = {0};
    uint8_t key[SIGV4_KEY_LEN];
    const char *hex = json_str(reply, "key", "");
    size_t n = 0;
    int ok = !err && sodium_hex2bin(key, sizeof key, hex, strlen(hex), NULL, &n, NULL) == 0 && n == sizeof key;
    json_decref(reply);
    if (!ok) {
        finish_err(c, err ? err : (verr_set(&e, 500, "InternalError", "no signing key"), &e));
        return;
    }
    c->url = presign(c, key, &e);
    sodium_memzero(key, sizeof key);
    if (!c->url) {
        finish_err(c, &e);
        return;
    }
    if (c->download) {
        http_resp_t resp = {.status = 200};
        http_resp_header(&resp, "Location", c->url);
        http_resp_header(&resp, "Cache-Control", "no-store");
        http_resp_set(&resp, 303, "text/plain", "", 0);
        http_complete(c->d, &resp);
        call_free(c);
        return;
    }
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int started = __atomic_add_fetch(&relays, 1, __ATOMIC_SEQ_CST) <= MAX_RELAYS && pthread_create(&t, &at, relay, c) == 0;
    pthread_attr_destroy(&at);
    if (!started) {
        __atomic_sub_fetch(&relays, 1, __ATOMIC_SEQ_CST);
        finish_err(c, (verr_set(&e, 503, "SlowDown", "The console is relaying too many requests; try again."), &e));
    }
}

static void session_done(void *arg, json_t *who, const verr_t *err)
{
    s3_call_t *c = arg;
    verr_t e = {0};
    const char *want = json_str(who, "csrf", "");
    int change = strcmp(c->method, "GET") && strcmp(c->method, "HEAD");
    if (err)
        finish_err(c, err);
    else if (change && (strlen(want) != strlen(c->csrf) || sodium_memcmp(want, c->csrf, strlen(want))))
        finish_err(c, (verr_set(&e, 403, "InvalidCsrfToken",
                                "The request lacks this session's CSRF token (X-Virga-CSRF); reload the console."), &e));
    else {
        snprintf(c->akid, sizeof c->akid, "%s", json_str(who, "s3_key_id", ""));
        char date[9];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "%Y%m%d", &tm);
        json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "access_key_id", c->akid, "date", date, "region",
                                 c->gw->region, "service", "s3");
        if (bus_call_async(c->svc->bus, "identity", "identity.signing_key", body, NULL, c->gw->call_timeout_ms,
                           key_done, c, &e) < 0)
            finish_err(c, &e);
    }
    json_decref(who);
}

/* ---- the stream route ---- */

static int s3_begin(http_req_t *h, void **ctx, http_resp_t *resp)
{
    gateway_t *gw = ((service_t *)h->app)->state;
    static const char *const methods[] = {"GET", "HEAD", "PUT", "POST", "DELETE"};
    int known = 0;
    for (size_t i = 0; i < ARRAY_LEN(methods); i++)
        known |= !strcmp(h->method, methods[i]);
    if (!known) {
        s3_error(resp, 405, "MethodNotAllowed", "The console relays GET, HEAD, PUT, POST and DELETE.");
        return -1;
    }
    if (!gw_console_origin_ok(h)) {
        s3_error(resp, 403, "InvalidOrigin", "Console requests must come from the console's own pages.");
        return -1;
    }
    const char *cl = http_header(h, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > gw->console_s3_max_upload) {
        s3_error(resp, 400, "EntityTooLarge", "The console uploads objects up to console.s3_max_upload bytes; use a client (aws s3) for larger ones.");
        return -1;
    }
    s3_call_t *c = xcalloc(1, sizeof *c);
    c->svc = h->app;
    c->gw = gw;
    c->max = gw->console_s3_max_upload;
    gw_console_cookie(h, c->token, sizeof c->token);
    const char *v = http_header(h, "X-Virga-CSRF");
    snprintf(c->csrf, sizeof c->csrf, "%s", v ? v : "");
    v = http_header(h, "Content-Type");
    snprintf(c->ctype, sizeof c->ctype, "%s", v && strlen(v) < 120 && !strpbrk(v, "\r\n") ? v : "");
    snprintf(c->method, sizeof c->method, "%s", h->method);
    *ctx = c;
    return 0;
}

static int s3_data(void *ctx, const char *buf, size_t len, http_resp_t *resp)
{
    s3_call_t *c = ctx;
    if (c->body.len + len > c->max) {
        s3_error(resp, 400, "EntityTooLarge", "The console uploads objects up to console.s3_max_upload bytes.");
        return -1;
    }
    strbuf_put(&c->body, buf, len);
    return 0;
}

static void s3_end(void *ctx, http_req_t *h, http_resp_t *resp)
{
    (void)resp;
    s3_call_t *c = xcalloc(1, sizeof *c);
    *c = *(s3_call_t *)ctx;   /* the call goes on without the route's context */
    *(s3_call_t *)ctx = (s3_call_t){0};
    const char *rest = h->path + strlen("/console/s3");
    c->path = xstrdup(*rest ? rest : "/");
    /* the console's own flag is not the object store's business */
    strbuf_t q = {0};
    for (const char *p = h->query; *p;) {
        size_t n = strcspn(p, "&");
        if (n >= 16 && !strncmp(p, "x-virga-download", 16))
            c->download = 1;
        else if (n)
            strbuf_printf(&q, "%s%.*s", q.len ? "&" : "", (int)n, p);
        p += n + (p[n] == '&');
    }
    c->query = q.s ? q.s : xstrdup("");
    c->max = c->gw->console_s3_max_response;
    c->d = http_defer(h);
    __atomic_add_fetch(&c->gw->inflight, 1, __ATOMIC_SEQ_CST);
    verr_t e = {0};
    if (bus_call_async(c->svc->bus, "identity", "identity.console_session", json_pack("{s:s}", "token", c->token),
                       NULL, c->gw->call_timeout_ms, session_done, c, &e) < 0)
        finish_err(c, &e);
}

static void s3_done(void *ctx)
{
    s3_call_t *c = ctx;
    free(c->body.s);
    free(c);
}

const http_stream_t gw_console_s3 = {s3_begin, s3_data, s3_end, s3_done};
