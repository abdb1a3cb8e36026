/* render.c - AWS-shaped XML from the JSON results services return.
 *
 * A result object's keys are the response's element names, so the conversion is
 * generic (common/json_xml.h): objects become nested elements, arrays become repeated
 * <item> (EC2) or <member> (IAM) children, booleans true/false, null is left out. It
 * reads the service's JSON text as the bus delivered it and writes the XML into one
 * buffer, without a tree of either (a listing of 1,005 security groups: most of the
 * gateway's CPU per call was that tree). The envelope and the error documents follow
 * each API's own form, which is what botocore parses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bigbuf.h"
#include "gateway.h"
#include "json_xml.h"
#include "jsonutil.h"
#include "xml.h"

#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define EC2_NS "http://ec2.amazonaws.com/doc/2016-11-15/"
#define IAM_NS "https://iam.amazonaws.com/doc/2010-05-08/"

static void put3(strbuf_t *b, const char *a, const char *name, const char *c)
{
    strbuf_puts(b, a);
    strbuf_puts(b, name);
    strbuf_puts(b, c);
}

int gw_render_text(const gw_req_t *r, const char *body, size_t len, http_resp_t *resp)
{
    const char *name = r->action->name, *id = r->http->request_id;
    strbuf_t b = {0};
    /* the XML of a JSON answer is 1.3 to 1.8 times its size; a page's (3.3 MB for 1,000
     * instances) in a mapping of its own on huge pages (bigbuf.h) */
    int big = len * 2 >= BIGBUF_MIN_BYTES;
    if (big)
        bigbuf_start(&b, len * 2 + 512, len * 3 / 2);
    else
        strbuf_reserve(&b, len * 2 + 512);
    strbuf_puts(&b, XML_DECL);
    int rc = 0;
    if (r->api == API_EC2) {
        put3(&b, "<", name, "Response xmlns=\"" EC2_NS "\"><requestId>");
        xml_escape_append(&b, id, strlen(id));
        strbuf_puts(&b, "</requestId>");
        if (body)
            rc = json_xml_members(&b, body, len, "item");
        put3(&b, "</", name, "Response>");
    } else {
        put3(&b, "<", name, "Response xmlns=\"" IAM_NS "\">");
        put3(&b, "<", name, "Result>");
        if (body)
            rc = json_xml_members(&b, body, len, "member");
        put3(&b, "</", name, "Result><ResponseMetadata><RequestId>");
        xml_escape_append(&b, id, strlen(id));
        put3(&b, "</RequestId></ResponseMetadata></", name, "Response>");
    }
    if (rc < 0) {
        big ? bigbuf_free(b.s) : free(b.s);
        return -1;
    }
    http_resp_take_as(resp, 200, "text/xml;charset=UTF-8", b.s, b.len, big ? bigbuf_free : NULL);
    return 0;
}

int gw_render_result(const gw_req_t *r, json_t *result, http_resp_t *resp)
{
    size_t len = 0;
    char *text = json_is_object(result) ? json_compact_len(result, &len) : NULL;
    /* -1 only for a string a handler made without jansson's UTF-8 check */
    int rc = gw_render_text(r, text, len, resp);
    free(text);
    return rc;
}

/* IAM names some failures differently from EC2. */
static void iam_code(const verr_t *e, const char **code, const char **msg, int *status)
{
    static const struct {
        const char *ec2, *iam, *msg;
        int status;
    } map[] = {
        {"AuthFailure", "InvalidClientTokenId", "The security token included in the request is invalid.", 403},
        {"RequestLimitExceeded", "Throttling", "Rate exceeded", 400},
        {"Unavailable", "ServiceUnavailable", NULL, 503},
    };
    for (size_t i = 0; i < ARRAY_LEN(map); i++)
        if (!strcmp(e->code, map[i].ec2)) {
            *code = map[i].iam;
            if (map[i].msg)
                *msg = map[i].msg;
            *status = map[i].status;
            return;
        }
}

/* The error document in the API's own shape; IAM names some failures differently. */
static void error_doc(gw_api_t api, const char *request_id, int status, const char *code, const char *msg,
                      http_resp_t *resp)
{
    xml_t *x = xml_new();
    if (api == API_IAM) {
        verr_t tmp = {0};
        snprintf(tmp.code, sizeof tmp.code, "%s", code);
        iam_code(&tmp, &code, &msg, &status);
        xml_open(x, "ErrorResponse", IAM_NS);
        xml_open(x, "Error", NULL);
        xml_elem(x, "Type", status >= 500 ? "Receiver" : "Sender");
        xml_elem(x, "Code", code);
        xml_elem(x, "Message", msg);
        xml_close(x);
        xml_elem(x, "RequestId", request_id);
    } else {
        xml_open(x, "Response", NULL);
        xml_open(x, "Errors", NULL);
        xml_open(x, "Error", NULL);
        xml_elem(x, "Code", code);
        xml_elem(x, "Message", msg);
        xml_close(x);
        xml_close(x);
        xml_elem(x, "RequestID", request_id);
    }
    size_t len;
    char *doc = xml_take(x, &len);
    http_resp_take(resp, status, "text/xml;charset=UTF-8", doc, len);
}

void gw_public_error(const verr_t *in, verr_t *out)
{
    *out = *in;
    if (!out->code[0])
        snprintf(out->code, sizeof out->code, "InternalError");
    if (!out->http_status)
        out->http_status = 500;
    /* a bus timeout inside the cloud is the tenant's "try again", not a gateway timeout */
    if (!strcmp(out->code, "RequestTimeout"))
        verr_set(out, 503, "Unavailable", "The service is unavailable. Please try again shortly.");
}

void gw_render_error(gw_api_t api, const char *request_id, const verr_t *in, http_resp_t *resp)
{
    verr_t shown;
    gw_public_error(in, &shown);
    error_doc(api, request_id, shown.http_status, shown.code, shown.message, resp);
}

/* EC2 and IAM document no codes for these HTTP-level refusals: the codes name the
 * condition as AWS does elsewhere (S3's RequestHeaderSectionTooLarge, RequestTimeout
 * and IncompleteBody; RequestEntityTooLarge of AWS's JSON APIs), the status says it
 * in HTTP's terms. */
void gw_refuse(const http_req_t *req, http_refusal_t why, uint64_t limit, http_resp_t *resp)
{
    static const struct {
        int status;
        const char *code;
    } map[] = {
        [HTTP_URI_TOO_LONG] = {414, "RequestURITooLong"},
        [HTTP_HEADERS_TOO_LARGE] = {400, "RequestHeaderSectionTooLarge"},
        [HTTP_BODY_TOO_LARGE] = {413, "RequestEntityTooLarge"},
        [HTTP_BODY_TIMEOUT] = {400, "RequestTimeout"},
        [HTTP_BODY_INCOMPLETE] = {400, "IncompleteBody"},
    };
    char message[256];
    http_refusal_message(why, limit, message, sizeof message);
    error_doc(gw_api_claimed(req), req->request_id, map[why].status, map[why].code, message, resp);
}
