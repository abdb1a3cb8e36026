/* virga-identity - wiring only: the identity service's message table. IAM actions
 * arrive from the gateway as identity.<Action>; identity.* lower-case messages are
 * internal (gateway key lookups, operator commands from virgadm). */
#include "identity.h"
#include "log.h"
#include "replay.h"

/* Who may send what (bus_auth.h): the signing keys go only to the two endpoints that
 * check tenants' signatures; the tenant API (IAM actions) comes from the gateway or from
 * the operator's virgadm; account and quota administration only from the operator. */
#define TENANT_API (BUS_P_GATEWAY | BUS_P_OPERATOR)

static const bus_route_t routes[] = {
    {"identity.signing_key", identity_signing_key, BUS_P_GATEWAY | BUS_P_OBJECTSTORE},
    {"identity.sign_v2", identity_sign_v2, BUS_P_OBJECTSTORE},
    {"identity.bootstrap", identity_bootstrap, BUS_P_OPERATOR},
    {"identity.account_create", identity_account_create, BUS_P_OPERATOR},
    {"identity.account_list", identity_account_list, BUS_P_OPERATOR},
    {"identity.account_delete", identity_account_delete, BUS_P_OPERATOR},
    {"identity.account_set_email", identity_account_set_email, BUS_P_OPERATOR},
    /* canonical ids and e-mail addresses in S3 grants: no secret in the answer */
    {"identity.account_lookup", identity_account_lookup, BUS_P_OBJECTSTORE | BUS_P_OPERATOR},
    {"identity.set_password", identity_set_password, BUS_P_OPERATOR},
    {"identity.verify_password", identity_verify_password, BUS_P_OPERATOR | BUS_P_GATEWAY},
    /* web console logins: only the gateway serves the console; the operator revokes */
    {"identity.console_login", identity_console_login, BUS_P_GATEWAY},
    {"identity.console_session", identity_console_session, BUS_P_GATEWAY},
    {"identity.console_logout", identity_console_logout, BUS_P_GATEWAY},
    {"identity.console_revoke", identity_console_revoke, BUS_P_OPERATOR},
    {"identity.quota_get", identity_quota_get, BUS_P_GATEWAY | BUS_P_OBJECTSTORE | BUS_P_COMPUTE | BUS_P_NETWORK | BUS_P_OPERATOR},
    {"identity.quota_set", identity_quota_set, BUS_P_OPERATOR},
    /* the same for the operator account's callers through the gateway (operator_api.c) */
    {"identity.DescribeAccounts", identity_describe_accounts, TENANT_API},
    {"identity.DescribeAccountQuotas", identity_describe_account_quotas, TENANT_API},
    {"identity.ModifyAccountQuota", identity_modify_account_quota, TENANT_API},
    {"identity.CreateUser", iam_create_user, TENANT_API},
    {"identity.GetUser", iam_get_user, TENANT_API},
    {"identity.ListUsers", iam_list_users, TENANT_API},
    {"identity.DeleteUser", iam_delete_user, TENANT_API},
    {"identity.CreateAccessKey", iam_create_access_key, TENANT_API},
    {"identity.ListAccessKeys", iam_list_access_keys, TENANT_API},
    {"identity.UpdateAccessKey", iam_update_access_key, TENANT_API},
    {"identity.DeleteAccessKey", iam_delete_access_key, TENANT_API},
    {"identity.PutUserPolicy", iam_put_user_policy, TENANT_API},
    {"identity.GetUserPolicy", iam_get_user_policy, TENANT_API},
    {"identity.ListUserPolicies", iam_list_user_policies, TENANT_API},
    {"identity.DeleteUserPolicy", iam_delete_user_policy, TENANT_API},
    {NULL, NULL, 0},
};

/* Forget CreateUser answers whose retry window has passed (common/replay.h). */
static void reconcile(service_t *svc)
{
    verr_t e;
    if (replay_expire(svc->db, &e) < 0)
        log_warn("forgetting old answers: %s", e.message);
    identity_console_expire(svc->db);
}

int main(int argc, char **argv)
{
    static const service_def_t def = {
        .name = "identity",
        .schema = "identity",
        .routes = routes,
        .init = identity_init,
        .fini = identity_fini,
        .reconcile = reconcile,
    };
    return service_main(argc, argv, &def);
}
