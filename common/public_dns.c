/* public_dns.c - public DNS names of public addresses (public_dns.h). Set once when a
 * service starts, read by every worker after: the suffix is not changed while it runs. */
#include "public_dns.h"

#include <stdio.h>
#include <string.h>

static char suffix[256];   /* ".<region>.<domain>", or "" for no names */

void public_dns_configure(const char *region, const char *domain)
{
    if (!domain || !*domain)
        suffix[0] = 0;
    else
        snprintf(suffix, sizeof suffix, ".%s.%s", region, domain);
}

size_t public_dns_name(const char *ip, char *out, size_t size)
{
    if (!size)
        return 0;
    size_t k = 0;
    if (ip && *ip && suffix[0]) {
        static const char head[] = "ec2-";
        for (const char *s = head; *s && k + 1 < size; s++)
            out[k++] = *s;
        for (const char *s = ip; *s && k + 1 < size; s++)
            out[k++] = *s == '.' ? '-' : *s;
        for (const char *s = suffix; *s && k + 1 < size; s++)
            out[k++] = *s;
    }
    out[k] = 0;
    return k;
}
