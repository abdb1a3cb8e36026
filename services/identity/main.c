/* virga-identity - wiring only: the identity service's message table. IAM actions
 * arrive from the gateway as identity.<Action>; identity.* lower-case messages are
 * internal (gateway key lookups, operator commands from virgadm). */
#include "identity.h"

static const bus_route_t routes[] = {
    {"identity.signing_key", identity_signing_key},
    {"identity.sign_v2", identity_sign_v2},
    {"identity.bootstrap", identity_bootstrap},
    {"identity.account_create", identity_account_create},
    {"identity.account_list", identity_account_list},
    {"identity.account_delete", identity_account_delete},
    {"identity.account_set_email", identity_account_set_email},
    {"identity.account_lookup", identity_account_lookup},
    {"identity.set_password", identity_set_password},
    {"identity.verify_password", identity_verify_password},
    {"identity.quota_get", identity_quota_get},
    {"identity.quota_set", identity_quota_set},
    {"identity.CreateUser", iam_create_user},
    {"identity.GetUser", iam_get_user},
    {"identity.ListUsers", iam_list_users},
    {"identity.DeleteUser", iam_delete_user},
    {"identity.CreateAccessKey", iam_create_access_key},
    {"identity.ListAccessKeys", iam_list_access_keys},
    {"identity.UpdateAccessKey", iam_update_access_key},
    {"identity.DeleteAccessKey", iam_delete_access_key},
    {"identity.PutUserPolicy", iam_put_user_policy},
    {"identity.GetUserPolicy", iam_get_user_policy},
    {"identity.ListUserPolicies", iam_list_user_policies},
    {"identity.DeleteUserPolicy", iam_delete_user_policy},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const service_def_t def = {
        .name = "identity",
        .schema = "identity",
        .routes = routes,
        .init = identity_init,
        .fini = identity_fini,
    };
    return service_main(argc, argv, &def);
}
