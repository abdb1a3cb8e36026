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

void s3_error(const s3_req_t *r, const verr_t *e, http_resp_t *resp)
{
    int status = e->http_status ? e->http_status : 500;
    const char *code = e->code[0] ? e->code : "InternalError";
    if (!strcmp(code, "RequestTimeout") || !strcmp(code, "Unavailable")) {   /* inside the cloud */
        status = 503;
        code = "ServiceUnavailable";
    }
    http_resp_reset(resp);   /* an error replaces whatever the operation had prepared */
    if (!strcmp(r->http->method, "HEAD")) {   /* no body on HEAD: the status says it */
        http_resp_set(resp, status, NULL, "", 0);
        return;
    }
    xml_t *x = xml_new();
    xml_open(x, "Error", NULL);
    xml_elem(x, "Code", code);
    xml_elem(x, "Message", e->message[0] ? e->message : code);
    if (r->bucket[0])
        xml_elem(x, "BucketName", r->bucket);
    if (r->key[0])
        xml_elem(x, "Key", r->key);
    xml_elem(x, "Resource", r->http->path);
    xml_elem(x, "RequestId", r->http->request_id);
    xml_close(x);
    size_t len;
    char *doc = xml_take(x, &len);
    s3_xml_reply(resp, status, doc, len);
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
