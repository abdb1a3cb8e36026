/* instance_json.h - one instance as DescribeInstances shows it, written as JSON text
 * straight from its row (instance_json.c): no jansson tree per item. */
#ifndef VIRGA_INSTANCE_JSON_H
#define VIRGA_INSTANCE_JSON_H

#include <jansson.h>

#include "strbuf.h"

/* The columns of describe_instances.c's item query, in its order. */
enum {
    IR_ID, IR_RESERVATION, IR_ACCOUNT, IR_IMAGE, IR_STATE, IR_TRANSITION, IR_KEY_NAME, IR_LAUNCH_INDEX,
    IR_TYPE, IR_LAUNCH_TIME, IR_ZONE, IR_KERNEL, IR_RAMDISK, IR_STATE_REASON, IR_CLIENT_TOKEN, IR_VCPUS,
    IR_HOST_UP, IR_ENI, IR_CLOUD, IR_REMOTE_ID, IR_REMOTE_PUBLIC_IP, IR_REMOTE_PRIVATE_IP, IR_SUBNET, IR_VPC,
    IR_MAC, IR_IP, IR_GROUPS, IR_SDC, IR_DESCRIPTION, IR_ATTACHMENT, IR_ATTACHED, IR_PUBLIC_IP,
    IR_PUBLIC_OWNER, IR_MD_TOKENS, IR_MD_HOP_LIMIT, IR_MD_OFF, IR_MD_TAGS,
    IR_PRIMARY_DOT,   /* the primary's DeleteOnTermination: the network's (network_enis), else false for an adopted interface (instances.primary_eni) */
    IR_COLS
};

/* One row: each column's text as PostgreSQL gives it, NULL for SQL NULL. */
typedef struct instance_row {
    const char *v[IR_COLS];
} instance_row_t;

/* The primary interfaces' security groups (IR_GROUPS, PostgreSQL's text of a JSON array)
 * in compact form, kept for the last different text: a page mostly shares one set. */
typedef struct groups_text {
    char *text, *compact;
} groups_text_t;
void groups_text_free(groups_text_t *g);

/* Append row's item to out. tags: its tagSet array (NULL: none). hidden: also the fields
 * _reservationId, _ownerId and _hostUp, after platformDetails, which the in-memory filters
 * and DescribeInstanceStatus use and drop. Member for member what the former jansson
 * builder made (tests/unit/test_instance_json.c compares them). */
void instance_json_put(strbuf_t *out, const instance_row_t *row, const json_t *tags, groups_text_t *gc, int hidden);
/* The same with the tags as the text of their items (tags_text_of, common/tags.h): a
 * page's tags without a tree per tag. */
void instance_json_put_tags_text(strbuf_t *out, const instance_row_t *row, const char *tags, size_t tags_len,
                                 groups_text_t *gc, int hidden);

#endif
