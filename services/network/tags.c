/* tags.c - tags on the network's resources. The handlers are common/tags.c's; this file
 * says which ids are the network's and who owns one. */
#include <stdio.h>
#include <string.h>

#include "network.h"
#include "tags.h"

static int owner_of(db_t *db, const net_kind_t *k, const char *id, const char *account,
                    char owner[TAGS_ACCOUNT_MAX], verr_t *e)
{
    char sql[128], name[48];
    snprintf(sql, sizeof sql, "SELECT account_id FROM %s WHERE id = $1", k->table);
    snprintf(name, sizeof name, "tag_owner_%s", k->table);
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, name, sql, 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0 || (account && strcmp(PQgetvalue(r, 0, 0), account)))
        return verr_set(e, 400, k->not_found, "The %s '%.64s' does not exist", k->what, id);
    snprintf(owner, TAGS_ACCOUNT_MAX, "%s", PQgetvalue(r, 0, 0));
    return 0;
}

#define OWNER_FN(fn, kind)                                                                                      \
    static int fn(db_t *db, const char *id, const char *account, char owner[TAGS_ACCOUNT_MAX], verr_t *e)    \
    {                                                                                                           \
        return owner_of(db, &kind, id, account, owner, e);                                                     \
    }
OWNER_FN(vpc_owner, NET_VPC)
OWNER_FN(subnet_owner, NET_SUBNET)
OWNER_FN(sg_owner, NET_SG)
OWNER_FN(eni_owner, NET_ENI)
OWNER_FN(eip_owner, NET_EIP)
OWNER_FN(igw_owner, NET_IGW)
OWNER_FN(rtb_owner, NET_RTB)

static const tags_kind_t kinds[] = {
    {"vpc", vpc_owner}, {"subnet", subnet_owner}, {"sg", sg_owner}, {"eni", eni_owner}, {"eipalloc", eip_owner},
    {"igw", igw_owner}, {"rtb", rtb_owner},
    {NULL, NULL},
};

int net_create_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return tags_create_handler(ctx, body, kinds, reply, e);
}

int net_delete_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return tags_delete_handler(ctx, body, kinds, reply, e);
}

int net_describe_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return tags_describe_handler(ctx, body, kinds, reply, e);
}
