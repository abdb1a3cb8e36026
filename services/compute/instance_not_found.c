/* instance_not_found.c - EC2's InvalidInstanceID.NotFound for a list of instance ids.
 * EC2 names every id of the request that does not exist, not only the first: "The
 * instance IDs 'i-a, i-b' do not exist" (one: "The instance ID 'i-a' does not exist").
 * A script that stops or describes a list learns in one answer which ids to drop,
 * instead of one id per retry. The message has room (verr_t's 512 bytes) for about 20
 * ids; past that the list ends with ", ..." rather than with half an id. */
#include <string.h>

#include "compute.h"
#include "strbuf.h"

int instance_ids_not_found(verr_t *e, const json_t *asked, instance_known_fn known, const void *arg)
{
    strbuf_t b = {0};
    size_t i, n = 0, more = 0;
    json_t *v;
    json_array_foreach(asked, i, v) {
        const char *id = json_string_value(v);
        if (!id || known(id, arg))
            continue;
        int again = 0;   /* an id asked twice is named once */
        for (size_t k = 0; k < i && !again; k++) {
            const char *before = json_string_value(json_array_get(asked, k));
            again = before && !strcmp(before, id);
        }
        if (again)
            continue;
        if (b.len + strlen(id) > 400) {
            more = 1;
            continue;
        }
        strbuf_printf(&b, "%s%.64s", n++ ? ", " : "", id);
    }
    if (!n)
        return 0;
    if (more)
        strbuf_printf(&b, ", ...");
    if (n == 1 && !more)
        verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", b.s);
    else
        verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", b.s);
    free(b.s);
    return -1;
}
