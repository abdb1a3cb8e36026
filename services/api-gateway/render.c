/* render.c - AWS-shaped XML from the JSON results services return.
 *
 * A result object's keys are the response's element names, so the conversion is
 * generic: objects become nested elements, arrays become repeated <item> (EC2) or
 * <member> (IAM) children, booleans true/false, null is left out. The envelope and the
 * error documents follow each API's own form, which is what botocore parses. */
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "xml.h"

#define EC2_NS "http://ec2.amazonaws.com/doc/2016-11-15/"
#define IAM_NS "https://iam.amazonaws.com/doc/2010-05-08/"

static void value_xml(xml_t *x, const char *tag, json_t *v, const char *item_tag);

static void object_xml(xml_t *x, json_t *o, const char *item_tag)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
        value_xml(x, k, v, item_tag);
}

static void value_xml(xml_t *x, const char *tag, json_t *v, const char *item_tag)
{
    size_t i;
    json_t *it;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        xml_open(x, tag, NULL);
        object_xml(x, v, item_tag);
        xml_close(x);
        break;
    case JSON_ARRAY:
        xml_open(x, tag, NULL);
        json_array_foreach(v, i, it)
            value_xml(x, item_tag, it, item_tag);
        xml_close(x);
        break;
    case JSON_STRING:
        xml_elem(x, tag, json_string_value(v));
        break;
    case JSON_INTEGER:
        xml_elem_int(x, tag, (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        xml_elemf(x, tag, "%.15g", json_real_value(v));   /* sizes are doubles in EC2: keep every digit of a byte count */
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        xml_elem_bool(x, tag, json_is_true(v));
        break;
    case JSON_NULL:
        break;
    }
}

void gw_render_result(const gw_req_t *r, json_t *result, http_resp_t *resp)
{
    char tag[160];
    snprintf(tag, sizeof tag, "%sResponse", r->action->name);
    xml_t *x = xml_new();
    if (r->api == API_EC2) {
        xml_open(x, tag, EC2_NS);
        xml_elem(x, "requestId", r->http->request_id);
        if (json_is_object(result))
            object_xml(x, result, "item");
    } else {
        xml_open(x, tag, IAM_NS);
        snprintf(tag, sizeof tag, "%sResult", r->action->name);
        xml_open(x, tag, NULL);
        if (json_is_object(result))
            object_xml(x, result, "member");
        xml_close(x);
        xml_open(x, "ResponseMetadata", NULL);
        xml_elem(x, "RequestId", r->http->request_id);
        xml_close(x);
    }
    size_t len;
    char *doc = xml_take(x, &len);
    http_resp_take(resp, 200, "text/xml;charset=UTF-8", doc, len);
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
