/* identity_cmds.c - virgadm's account, user, key and quota commands. Each is one row:
 * the words that select it, how many arguments it takes, and the identity message it
 * sends. User and key commands act inside a tenant's account as that account's
 * administrator would (the bus is internal: virgadm is trusted like any service). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jsonutil.h"

typedef json_t *(*build_fn)(char **a);

static json_t *b_account_create(char **a) { return json_pack("{s:s}", "name", a[0]); }
static json_t *b_none(char **a) { (void)a; return json_object(); }
static json_t *b_account(char **a) { return json_pack("{s:s}", "account_id", a[0]); }
static json_t *b_account_email(char **a) { return json_pack("{s:s, s:s}", "account_id", a[0], "email", a[1]); }
static json_t *b_user(char **a) { return json_pack("{s:s}", "UserName", a[1]); }
static json_t *b_key_off(char **a) { return json_pack("{s:s, s:s, s:s}", "UserName", a[1], "AccessKeyId", a[2], "Status", "Inactive"); }
static json_t *b_key_on(char **a) { return json_pack("{s:s, s:s, s:s}", "UserName", a[1], "AccessKeyId", a[2], "Status", "Active"); }
static json_t *b_key_del(char **a) { return json_pack("{s:s, s:s}", "UserName", a[1], "AccessKeyId", a[2]); }
static json_t *b_quota_set(char **a)
{
    return json_pack("{s:s, s:s, s:I}", "account_id", a[0], "resource", a[1], "max", (json_int_t)atoll(a[2]));
}
static json_t *b_password(char **a)
{
    char pw[256] = "";
    if (!fgets(pw, sizeof pw, stdin))
        pw[0] = 0;
    pw[strcspn(pw, "\r\n")] = 0;
    return json_pack("{s:s, s:s, s:s}", "account_id", a[0], "user_name", a[1], "password", pw);
}

static json_t *b_pw_user(char **a) { return json_pack("{s:s, s:s}", "account_id", a[0], "user_name", a[1]); }

static const struct {
    const char *w1, *w2;
    int nargs;
    const char *usage;
    const char *type;
    build_fn build;
    int as_account;     /* a[0] is the account to act in, as its administrator */
} cmds[] = {
    {"account", "create", 1, "account create NAME", "identity.account_create", b_account_create, 0},
    {"account", "list", 0, "account list", "identity.account_list", b_none, 0},
    {"account", "delete", 1, "account delete ACCOUNT_ID", "identity.account_delete", b_account, 0},
    {"account", "email", 2, "account email ACCOUNT_ID ADDRESS   (\"\" removes it)", "identity.account_set_email", b_account_email, 0},
    {"user", "create", 2, "user create ACCOUNT_ID NAME", "identity.CreateUser", b_user, 1},
    {"user", "list", 1, "user list ACCOUNT_ID", "identity.ListUsers", b_none, 1},
    {"user", "delete", 2, "user delete ACCOUNT_ID NAME", "identity.DeleteUser", b_user, 1},
    {"user", "password", 2, "user password ACCOUNT_ID NAME   (password on stdin)", "identity.set_password", b_password, 0},
    {"session", "revoke", 2, "session revoke ACCOUNT_ID NAME   (ends the user's console sessions)", "identity.console_revoke", b_pw_user, 0},
    {"key", "create", 2, "key create ACCOUNT_ID USER", "identity.CreateAccessKey", b_user, 1},
    {"key", "list", 2, "key list ACCOUNT_ID USER", "identity.ListAccessKeys", b_user, 1},
    {"key", "deactivate", 3, "key deactivate ACCOUNT_ID USER KEY_ID", "identity.UpdateAccessKey", b_key_off, 1},
    {"key", "activate", 3, "key activate ACCOUNT_ID USER KEY_ID", "identity.UpdateAccessKey", b_key_on, 1},
    {"key", "delete", 3, "key delete ACCOUNT_ID USER KEY_ID", "identity.DeleteAccessKey", b_key_del, 1},
    {"quota", "show", 1, "quota show ACCOUNT_ID", "identity.quota_get", b_account, 0},
    {"quota", "set", 3, "quota set ACCOUNT_ID RESOURCE MAX", "identity.quota_set", b_quota_set, 0},
};

void identity_cmds_usage(FILE *f)
{
    for (size_t i = 0; i < ARRAY_LEN(cmds); i++)
        fprintf(f, "  %s\n", cmds[i].usage);
}

int identity_cmds_run(bus_t *bus, int argc, char **argv)
{
    for (size_t i = 0; i < ARRAY_LEN(cmds); i++) {
        if (argc < 2 || strcmp(argv[0], cmds[i].w1) || strcmp(argv[1], cmds[i].w2))
            continue;
        if (argc - 2 != cmds[i].nargs) {
            fprintf(stderr, "usage: virgadm %s\n", cmds[i].usage);
            return 2;
        }
        char **a = argv + 2;
        json_t *caller = NULL;
        if (cmds[i].as_account)
            caller = json_pack("{s:s, s:b, s:s}", "account_id", a[0], "is_admin", 1, "user_id", "");
        int rc = cli_print_call(bus, "identity", cmds[i].type, cmds[i].build(a), caller, 10000);
        json_decref(caller);
        return rc;
    }
    return -1;   /* not ours */
}
