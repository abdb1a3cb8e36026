/* console.c - the web console under /console/ (docs/console.md): its files, built into
 * the binary at make time (tools/embed-console.py), and its small API:
 *
 *   POST /console/api/login    account, user, password -> session cookie + CSRF token
 *   GET  /console/api/session  who the cookie stands for (and the CSRF token, after a reload)
 *   POST /console/api/logout   ends the session
 *   POST /console/api/ec2      an EC2 Query request (Action=...), answered in EC2's XML
 *   POST /console/api/iam      an IAM Query request, answered in IAM's XML
 *   /console/s3/...            S3, relayed to the object store (console_s3.c)
 *
 * The last two are the gateway's own dispatch (request.c) with the caller taken from the
 * session instead of a SigV4 signature: the same action table, the same policies, the same
 * services and the same answers as the CLI. Every POST but login must carry the session's
 * CSRF token in X-Virga-CSRF, and a browser's Origin, when sent, must be this host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "gateway.h"
#include "jsonutil.h"
#include "log.h"
#include "query.h"

#define COOKIE "virga_session"
#define HINT_COOKIE "virga_console"   /* "1" while a session cookie was given: app.js */

typedef enum { K_LOGIN, K_SESSION, K_LOGOUT, K_CALL } kind_t;

/* One console API request while identity answers. */
typedef struct console_call {
    kind_t kind;
    http_deferred_t *d;          /* login/session/logout: answered here */
    gw_req_t *r;                 /* ec2/iam: answered by request.c */
    gateway_t *gw;
    service_t *svc;
    char token[72], csrf[72], remote[64];
    int secure;                  /* Secure cookies (TLS in front) */
} console_call_t;

static void json_answer(http_resp_t *resp, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    http_resp_take(resp, status, "application/json", s, strlen(s));
    http_resp_header(resp, "Cache-Control", "no-store");
    http_resp_header(resp, "X-Content-Type-Options", "nosniff");
}

static void error_answer(http_resp_t *resp, const verr_t *e)
{
    verr_t shown;
    gw_public_error(e, &shown);
    json_answer(resp, shown.http_status, json_pack("{s:s, s:s}", "Code", shown.code, "Message", shown.message));
}

/* The session token from the Cookie header ("" when none). */
void gw_console_cookie(const http_req_t *h, char *out, size_t n)
{
    out[0] = 0;
    const char *c = http_header(h, "Cookie");
    for (const char *p = c; p && *p;) {
        p += strspn(p, " ;");
        size_t len = strcspn(p, ";");
        if (len > sizeof COOKIE && !strncmp(p, COOKIE "=", sizeof COOKIE)) {
            size_t v = len - sizeof COOKIE;
            snprintf(out, n, "%.*s", (int)(v < n ? v : n - 1), p + sizeof COOKIE);
            return;
        }
        p += len;
    }
}

static int tls_in_front(const gateway_t *gw, const http_req_t *h)
{
    const char *mode = gw->console_secure, *proto = http_header(h, "X-Forwarded-Proto");
    if (!strcmp(mode, "true") || !strcmp(mode, "false"))
        return !strcmp(mode, "true");
    return proto && !strcasecmp(proto, "https");
}

/* A browser names the page a request came from in Origin: it must be this host. (The
 * CSRF token is the defence; this refuses a forged request before any work.) */
int gw_console_origin_ok(const http_req_t *h)
{
    const char *origin = http_header(h, "Origin"), *host = http_header(h, "Host");
    if (!origin)
        return 1;
    const char *o = strstr(origin, "://");
    return o && host && !strcmp(o + 3, host);
}

static void set_cookie(http_resp_t *resp, const char *token, long max_age, int secure)
{
    char v[256];
    snprintf(v, sizeof v, COOKIE "=%s; Path=/console/; Max-Age=%ld; HttpOnly; SameSite=Strict%s", token, max_age,
             secure ? "; Secure" : "");
    http_resp_header(resp, "Set-Cookie", v);
    /* a flag the page can read (no secret in it): with none, a first visit shows the login
     * form at once instead of asking /console/api/session first (a round trip saved) */
    snprintf(v, sizeof v, HINT_COOKIE "=%s; Path=/console/; Max-Age=%ld; SameSite=Strict%s", token[0] ? "1" : "",
             max_age, secure ? "; Secure" : "");
    http_resp_header(resp, "Set-Cookie", v);
}

/* What the page is told about who is logged in (never the policies or the token). */
static json_t *who_summary(const json_t *who)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:s}", "account_id", json_str(who, "account_id", ""),
                     "account_name", json_str(who, "account_name", ""), "user_name", json_str(who, "user_name", ""),
                     "arn", json_str(who, "arn", ""), "is_admin", json_bool(who, "is_admin", 0), "is_operator",
                     json_bool(who, "is_operator", 0), "expires_in",
                     json_integer_value(json_object_get(who, "expires_in")), "csrf", json_str(who, "csrf", ""));
}

/* Deferred calls count in gw->inflight, which the gateway's fini waits for. */
static http_deferred_t *defer(console_call_t *c, http_req_t *h)
{
    __atomic_add_fetch(&c->gw->inflight, 1, __ATOMIC_SEQ_CST);
    return http_defer(h);
}

static void finish_json(console_call_t *c, http_resp_t *resp)
{
    http_complete(c->d, resp);
    __atomic_sub_fetch(&c->gw->inflight, 1, __ATOMIC_SEQ_CST);
    free(c);
}

static void logout_done(void *arg, json_t *reply, const verr_t *err)
{
    console_call_t *c = arg;
    http_resp_t resp = {.status = 200};
    json_decref(reply);
    if (err)
        error_answer(&resp, err);
    else {
        set_cookie(&resp, "", 0, c->secure);
        json_answer(&resp, 200, json_object());
    }
    finish_json(c, &resp);
}

static int csrf_ok(const console_call_t *c, const json_t *who)
{
    const char *want = json_str(who, "csrf", "");
    return strlen(want) == strlen(c->csrf) && *want && sodium_memcmp(want, c->csrf, strlen(want)) == 0;
}

static const char csrf_refused[] = "The request lacks this session's CSRF token (X-Virga-CSRF); reload the console.";

/* identity said who the session is (or that it is not). */
static void session_done(void *arg, json_t *who, const verr_t *err)
{
    console_call_t *c = arg;
    verr_t e = {0};
    if (c->kind == K_CALL) {
        gw_req_t *r = c->r;
        log_set_request_id(r->http->request_id);
        if (err)
            gw_finish(r, -1, NULL, err);
        else if (!csrf_ok(c, who))
            gw_finish(r, -1, NULL, (verr_set(&e, 403, "InvalidCsrfToken", csrf_refused), &e));
        else {
            /* the caller a signing key would give, named for the rate limit and the logs */
            char akid[64];
            snprintf(akid, sizeof akid, "console:%s", json_str(who, "session_id", ""));
            json_object_set_new(who, "access_key_id", json_string(akid));
            json_object_del(who, "csrf");
            json_object_del(who, "expires_in");
            json_object_del(who, "s3_key_id");
            r->caller = json_incref(who);
            gw_authenticated(r);
        }
        log_set_request_id(NULL);
        free(c);
        return;
    }
    http_resp_t resp = {.status = 200};
    if (err)
        error_answer(&resp, err);
    else if (c->kind == K_LOGOUT && !csrf_ok(c, who))
        error_answer(&resp, (verr_set(&e, 403, "InvalidCsrfToken", csrf_refused), &e));
    else if (c->kind == K_LOGOUT) {
        json_decref(who);
        if (bus_call_async(c->svc->bus, "identity", "identity.console_logout", json_pack("{s:s}", "token", c->token),
                           NULL, c->gw->call_timeout_ms, logout_done, c, &e) == 0)
            return;
        error_answer(&resp, &e);
        finish_json(c, &resp);
        return;
    } else
        json_answer(&resp, 200, who_summary(who));
    json_decref(who);
    finish_json(c, &resp);
}

static void login_done(void *arg, json_t *reply, const verr_t *err)
{
    console_call_t *c = arg;
    http_resp_t resp = {.status = 200};
    if (err) {
        if (err->http_status == 401)
            authfail_record(c->gw->console_fails, c->remote);
        error_answer(&resp, err);
    } else {
        set_cookie(&resp, json_str(reply, "token", ""), (long)json_integer_value(json_object_get(reply, "expires_in")),
                   c->secure);
        json_answer(&resp, 200, who_summary(reply));
    }
    json_decref(reply);
    finish_json(c, &resp);
}

static int login(console_call_t *c, http_req_t *h, verr_t *e)
{
    if (authfail_blocked(c->gw->console_fails, h->remote))
        return verr_set(e, 429, "Throttling", "Too many failed logins from your address; wait a minute.");
    query_t q = {0};
    if (query_parse(h->body ? h->body : "", h->body_len, &q, e) < 0)
        return -1;
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "account", query_get(&q, "account") ? query_get(&q, "account") : "",
                             "user_name", query_get(&q, "user") ? query_get(&q, "user") : "", "password",
                             query_get(&q, "password") ? query_get(&q, "password") : "", "address", h->remote);
    query_free(&q);
    c->d = defer(c, h);
    if (bus_call_async(c->svc->bus, "identity", "identity.console_login", body, NULL, c->gw->call_timeout_ms, login_done,
                       c, e) < 0) {
        http_resp_t resp = {.status = 200};
        error_answer(&resp, e);
        finish_json(c, &resp);
    }
    return 0;
}

/* The console's API: read what later steps need from the headers (they are gone once
 * the connection is suspended), then ask identity. */
static void api(http_req_t *h, http_resp_t *resp, const char *what)
{
    static const struct { const char *name, *method; kind_t kind; gw_api_t api; } rows[] = {
        {"login", "POST", K_LOGIN, API_EC2}, {"session", "GET", K_SESSION, API_EC2},
        {"logout", "POST", K_LOGOUT, API_EC2}, {"ec2", "POST", K_CALL, API_EC2}, {"iam", "POST", K_CALL, API_IAM},
    };
    gateway_t *gw = ((service_t *)h->app)->state;
    verr_t e = {0};
    size_t i = 0;
    while (i < ARRAY_LEN(rows) && strcmp(rows[i].name, what))
        i++;
    if (i == ARRAY_LEN(rows) || strcmp(h->method, rows[i].method)) {
        verr_set(&e, i == ARRAY_LEN(rows) ? 404 : 405, "InvalidAction", "No console API %s %s", h->method, what);
        error_answer(resp, &e);
        return;
    }
    if (!strcmp(h->method, "POST") && !gw_console_origin_ok(h)) {
        verr_set(&e, 403, "InvalidOrigin", "Console requests must come from the console's own pages.");
        if (rows[i].kind != K_CALL) {
            error_answer(resp, &e);
            return;
        }
    }
    console_call_t *c = xcalloc(1, sizeof *c);
    *c = (console_call_t){.kind = rows[i].kind, .gw = gw, .svc = h->app, .secure = tls_in_front(gw, h)};
    snprintf(c->remote, sizeof c->remote, "%s", h->remote);
    gw_console_cookie(h, c->token, sizeof c->token);
    const char *csrf = http_header(h, "X-Virga-CSRF");
    snprintf(c->csrf, sizeof c->csrf, "%s", csrf ? csrf : "");
    if (c->kind == K_LOGIN) {
        if (login(c, h, &e) < 0) {
            error_answer(resp, &e);
            free(c);
        }
        return;
    }
    if (!c->token[0] && c->kind != K_CALL) {
        /* no cookie: nobody to ask identity about (the first page load of a visitor) */
        verr_set(&e, 401, "AuthFailure", "Log in to the console.");
        error_answer(resp, &e);
        free(c);
        return;
    }
    if (c->kind == K_CALL) {
        gw_req_t *r = c->r = gw_req_new(h, resp);
        r->api = rows[i].api;
        if (e.code[0] || gw_parse_unsigned(r, &e) < 0) {
            gw_finish(r, -1, NULL, &e);
            free(c);
            return;
        }
        gw_defer(r);
    } else
        c->d = defer(c, h);
    if (bus_call_async(c->svc->bus, "identity", "identity.console_session", json_pack("{s:s}", "token", c->token), NULL,
                       gw->call_timeout_ms, session_done, c, &e) < 0)
        session_done(c, NULL, &e);
}

const console_asset_t *console_asset_find(const char *path)
{
    for (const console_asset_t *a = console_assets; a->path; a++)
        if (!strcmp(a->path, path))
            return a;
    return NULL;
}

static void asset(http_req_t *h, http_resp_t *resp)
{
    const char *path = h->path + strlen("/console/");
    if (!*path)
        path = "index.html";
    const console_asset_t *a = console_asset_find(path);
    if (!a || (strcmp(h->method, "GET") && strcmp(h->method, "HEAD"))) {
        http_resp_set(resp, a ? 405 : 404, "text/plain", a ? "GET only\n" : "Not found\n", a ? 9 : 10);
        return;
    }
    const char *inm = http_header(h, "If-None-Match"), *ae = http_header(h, "Accept-Encoding");
    http_resp_header(resp, "ETag", a->etag);
    http_resp_header(resp, "Cache-Control", "no-cache");
    http_resp_header(resp, "X-Content-Type-Options", "nosniff");
    http_resp_header(resp, "Referrer-Policy", "same-origin");
    http_resp_header(resp, "Content-Security-Policy",
                     "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; form-action 'self'");
    if (inm && !strcmp(inm, a->etag)) {
        resp->status = 304;
        return;
    }
    int gz = ae && strstr(ae, "gzip") && a->gz;
    if (gz)
        http_resp_header(resp, "Content-Encoding", "gzip");
    http_resp_header(resp, "Vary", "Accept-Encoding");
    http_resp_set(resp, 200, a->type, (const char *)(gz ? a->gz : a->data), gz ? a->gzlen : a->len);
}

void gw_console(http_req_t *h, http_resp_t *resp)
{
    if (!strcmp(h->path, "/console")) {
        http_resp_header(resp, "Location", "/console/");
        http_resp_set(resp, 301, "text/plain", "", 0);
    } else if (!strncmp(h->path, "/console/api/", 13))
        api(h, resp, h->path + 13);
    else if (!strncmp(h->path, "/console/", 9))
        asset(h, resp);
    else
        gw_handle(h, resp);   /* "/consolefoo": the Query API's 404 */
}
