/* instance_not_found.c - EC2's InvalidInstanceID.NotFound for a list of instance ids:
 * every id of the request that does not exist is named ("The instance IDs 'i-a, i-b' do
 * not exist"; one: "The instance ID 'i-a' does not exist"), worded by
 * common/not_found.c. */
#include "compute.h"
#include "not_found.h"

int instance_ids_not_found(verr_t *e, const json_t *asked, instance_known_fn known, const void *arg)
{
    size_t i, n = 0;
    json_t *v;
    AUTOFREE const char **missing = xcalloc(json_array_size(asked) + 1, sizeof *missing);
    json_array_foreach(asked, i, v) {
        const char *id = json_string_value(v);
        if (id && !known(id, arg))
            missing[n++] = id;
    }
    return ids_not_found(e, "InvalidInstanceID.NotFound", "instance ID", missing, n, 0);
}
