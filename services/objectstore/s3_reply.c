/* s3_reply.c - S3-shaped answers: the error document, XML replies, HTTP and ISO dates. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "objectstore.h"
#include "xml.h"

void s3_xml_reply(http_resp_t *resp, int status, char *doc, size_t len)
{
    http_resp_take(resp, status, "application/xml", doc, len);
}

void s3_xml_send(http_resp_t *resp, xml_t *x)
{
    size_t len;
    char *doc = xml_take(x, &len);
    s3_xml_reply(resp, 200, doc, len);
}

/* The S3 error document (no body on HEAD: the status says it). */
static void error_doc(const http_req_t *h, const char *bucket, const char *key, int status, const char *code,
                      const char *message, http_resp_t *resp)
{
    http_resp_reset(resp);   /* an error replaces whatever the operation had prepared */
    if (!strcmp(h->method, "HEAD")) {
        http_resp_set(resp, status, NULL, "", 0);
        return;
    }
    xml_t *x = xml_new();
    xml_open(x, "Error", NULL);
    xml_elem(x, "Code", code);
    xml_elem(x, "Message", message && *message ? message : code);
    if (bucket && bucket[0])
        xml_elem(x, "BucketName", bucket);
    if (key && key[0])
        xml_elem(x, "Key", key);
    xml_elem(x, "Resource", h->path);
    xml_elem(x, "RequestId", h->request_id);
    xml_close(x);
    size_t len;
    char *doc = xml_take(x, &len);
    s3_xml_reply(resp, status, doc, len);
}

void s3_error(const s3_req_t *r, const verr_t *e, http_resp_t *resp)
{
    int status = e->http_status ? e->http_status : 500;
    const char *code = e->code[0] ? e->code : "InternalError";
    if (!strcmp(code, "RequestTimeout") || !strcmp(code, "Unavailable")) {   /* inside the cloud */
        status = 503;
        code = "ServiceUnavailable";
    }
    error_doc(r->http, r->bucket, r->key, status, code, e->message, resp);
}

/* What the HTTP layer refused, as S3 names it. AWS documents 400
 * RequestHeaderSectionTooLarge for a header section over its limit (not HTTP's 431),
 * and has no code of its own for a request target too long: 414 says what happened,
 * InvalidURI (S3's code for a URI it cannot take) is what clients parse. */
void s3_refuse(const http_req_t *req, http_refusal_t why, uint64_t limit, http_resp_t *resp)
{
    static const struct {
        int status;
        const char *code;
    } map[] = {
        [HTTP_URI_TOO_LONG] = {414, "InvalidURI"},
        [HTTP_HEADERS_TOO_LARGE] = {400, "RequestHeaderSectionTooLarge"},
        [HTTP_BODY_TOO_LARGE] = {400, "EntityTooLarge"},
        [HTTP_BODY_TIMEOUT] = {400, "RequestTimeout"},
        [HTTP_BODY_INCOMPLETE] = {400, "IncompleteBody"},
    };
    char message[256];
    http_refusal_message(why, limit, message, sizeof message);
    error_doc(req, NULL, NULL, map[why].status, map[why].code, message, resp);
}

void s3_http_date(int64_t t, char out[40])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void s3_iso_date(int64_t t, char out[40])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 40, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}
