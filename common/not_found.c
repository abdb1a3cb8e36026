/* not_found.c - EC2's NotFound error for a list of ids. EC2 names every id of the
 * request that does not exist, not only the first, so that a script learns in one
 * answer which ids to drop instead of one id per retry. The message has room (verr_t's
 * 512 bytes) for about 20 ids; past that the list ends with ", ..." rather than with
 * half an id. Shared by compute's instance lists and every service's CreateTags and
 * DeleteTags (common/tags.c). */
#include "not_found.h"

#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

int ids_not_found(verr_t *e, const char *code, const char *what, const char *const *ids, size_t n, int bracketed)
{
    strbuf_t b = {0};
    if (bracketed)
        strbuf_putc(&b, '[');
    size_t named = 0;
    int more = 0;
    for (size_t i = 0; i < n; i++) {
        int again = 0;   /* an id asked twice is named once */
        for (size_t k = 0; k < i && !again; k++)
            again = !strcmp(ids[k], ids[i]);
        if (again)
            continue;
        if (b.len + strlen(ids[i]) > 400) {
            more = 1;
            continue;
        }
        strbuf_printf(&b, "%s%.64s", named++ ? ", " : "", ids[i]);
    }
    if (!named)
        return 0;
    if (more)
        strbuf_printf(&b, ", ...");
    if (bracketed)
        strbuf_putc(&b, ']');
    if (named == 1 && !more)
        verr_set(e, 400, code, "The %s '%s' does not exist", what, b.s);
    else
        verr_set(e, 400, code, "The %ss '%s' do not exist", what, b.s);
    free(b.s);
    return -1;
}
