/* cidr.c - see cidr.h. */
#include "cidr.h"

#include <stdio.h>
#include <string.h>

int cidr_ip_parse(const char *s, uint32_t *ip)
{
    uint32_t v = 0;
    const char *p = s;
    for (int i = 0; i < 4; i++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned n = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (unsigned)(*p++ - '0');
            if (++digits > 3 || n > 255)
                return -1;
        }
        v = v << 8 | n;
        if (i < 3 && *p++ != '.')
            return -1;
    }
    if (*p)
        return -1;
    *ip = v;
    return 0;
}

void cidr_ip_format(uint32_t ip, char out[CIDR_STR_MAX])
{
    snprintf(out, CIDR_STR_MAX, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

uint32_t cidr_mask(int len)
{
    return len <= 0 ? 0 : len >= 32 ? 0xffffffffu : ~(0xffffffffu >> len);
}

int cidr_parse(const char *s, cidr_t *c)
{
    char buf[CIDR_STR_MAX + 1];
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash || (size_t)(slash - s) >= sizeof buf)
        return -1;
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = 0;
    const char *l = slash + 1;
    int len = 0, digits = 0;
    while (*l >= '0' && *l <= '9' && digits < 3) {
        len = len * 10 + (*l++ - '0');
        digits++;
    }
    uint32_t ip;
    if (!digits || *l || len > 32 || cidr_ip_parse(buf, &ip) < 0 || (ip & ~cidr_mask(len)))
        return -1;
    c->addr = ip;
    c->len = len;
    return 0;
}

void cidr_format(const cidr_t *c, char out[CIDR_STR_MAX])
{
    uint32_t a = c->addr;
    snprintf(out, CIDR_STR_MAX, "%u.%u.%u.%u/%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255,
             (unsigned)c->len & 63);
}

uint64_t cidr_size(const cidr_t *c)
{
    return (uint64_t)1 << (32 - c->len);
}

uint32_t cidr_broadcast(const cidr_t *c)
{
    return c->addr | ~cidr_mask(c->len);
}

int cidr_contains_ip(const cidr_t *c, uint32_t ip)
{
    return (ip & cidr_mask(c->len)) == c->addr;
}

int cidr_contains(const cidr_t *outer, const cidr_t *inner)
{
    return inner->len >= outer->len && cidr_contains_ip(outer, inner->addr);
}

int cidr_overlaps(const cidr_t *a, const cidr_t *b)
{
    return cidr_contains(a, b) || cidr_contains(b, a);
}

int cidr_usable(const cidr_t *c, uint32_t *first, uint32_t *last)
{
    if (cidr_size(c) <= CIDR_RESERVED)
        return 0;
    *first = c->addr + 4;
    *last = cidr_broadcast(c) - 1;
    return 1;
}

uint32_t cidr_gateway(const cidr_t *c)
{
    return c->addr + 1;
}

uint32_t cidr_dns(const cidr_t *c)
{
    return c->addr + 2;
}

void cidr_default_subnet(int i, cidr_t *c)
{
    c->addr = (172u << 24 | 31u << 16) + ((uint32_t)i << 12);
    c->len = 20;
}

void cidr_mac_for(const char *eni_id, char out[18])
{
    const char *h = strchr(eni_id, '-');
    h = h ? h + 1 : eni_id;
    char d[10] = "000000000";
    size_t n = strlen(h);
    /* the last ten hex digits: the most random ones of any id length */
    memcpy(d, n > 10 ? h + n - 10 : h, n > 10 ? 10 : n);
    snprintf(out, 18, "02:%c%c:%c%c:%c%c:%c%c:%c%c", d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7],
             d[8], n >= 10 ? d[9] : '0');
}
