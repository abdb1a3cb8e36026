/* default_subnets.c - the default subnets this process looked up for launches' ports,
 * {account, zone} -> subnet id, so a launch's port_create runs without that read (a
 * statement before its transaction, on RunInstances' answer path: issue 11).
 *
 * Safe to keep because what the lookup answers cannot change while the subnet exists:
 * a subnet's is_default and its VPC's are set at creation only (default_vpc.c, the
 * migrations' subnets_one_default: one default subnet a VPC and zone), and a default
 * VPC's subnets must be gone before it is. So an entry is wrong only once its subnet is
 * deleted (by this process or another), and then the port's transaction, which locks the
 * subnet's row, finds no row: port_create forgets the entry and looks again (ports.c).
 * Only a zone's lookup is kept (a lookup without a zone takes the lowest of several,
 * which a zone's new default subnet may change). Bounded: emptied when full. */
#include <pthread.h>
#include <stdio.h>

#include "jsonutil.h"
#include "ports.h"

#define KEPT_MAX 4096

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *kept;   /* {"account|zone": subnet id} */

static void key_of(const char *account, const char *az, char *key, size_t n) { snprintf(key, n, "%s|%s", account, az); }

int default_subnets_get(const char *account, const char *az, char out[IDS_MAX])
{
    if (!az || !*az)
        return 0;
    char key[160];
    key_of(account, az, key, sizeof key);
    pthread_mutex_lock(&mu);
    const char *id = json_string_value(json_object_get(kept, key));
    if (id)
        snprintf(out, IDS_MAX, "%s", id);
    pthread_mutex_unlock(&mu);
    return id != NULL;
}

void default_subnets_put(const char *account, const char *az, const char *id)
{
    if (!az || !*az)
        return;
    char key[160];
    key_of(account, az, key, sizeof key);
    pthread_mutex_lock(&mu);
    if (!kept || json_object_size(kept) >= KEPT_MAX) {
        json_decref(kept);
        kept = json_object();
    }
    json_object_set_new(kept, key, json_string(id));
    pthread_mutex_unlock(&mu);
}

void default_subnets_forget(const char *account, const char *az)
{
    if (!az || !*az)
        return;
    char key[160];
    key_of(account, az, key, sizeof key);
    pthread_mutex_lock(&mu);
    json_object_del(kept, key);
    pthread_mutex_unlock(&mu);
}
