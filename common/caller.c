/* caller.c - see caller.h. */
#include <string.h>

#include "caller.h"
#include "jsonutil.h"

const char *caller_account(const json_t *caller, verr_t *e)
{
    const char *a = json_str(caller, "account_id", NULL);
    if (!a || strlen(a) != 12) {
        verr_set(e, 401, "AuthFailure", "request has no calling account");
        return NULL;
    }
    return a;
}

int caller_is_operator_admin(const json_t *caller)
{
    return json_bool(caller, "is_operator", 0) && json_bool(caller, "is_admin", 0);
}

int caller_is_service(const json_t *caller, const char *service)
{
    const char *p = json_str(caller, "principal", NULL);
    return p && service && !strcmp(p, service);
}
