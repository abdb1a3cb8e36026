/* fake_driver.c - a datapath that records what it would do, for unit tests.
 *
 * It keeps the units of each host in memory and mirrors the linux driver's one side
 * effect that matters to the reconciler: rebuilding a host loses everything on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"
#include "strbuf.h"

typedef struct fake_unit {
    char host[DP_NAME_MAX];
    dp_unit_t u;
} fake_unit_t;

typedef struct fake {
    dp_driver_t base;       /* first: the driver handle is a fake */
    fake_unit_t *v;
    size_t n, cap;
    strbuf_t log;
    int observations;
} fake_t;

static fake_t *F(dp_driver_t *d)
{
    return (fake_t *)d;
}

static fake_unit_t *find(fake_t *f, const char *host, dp_kind_t kind, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->v[i].host, host) && f->v[i].u.kind == kind && !strcmp(f->v[i].u.key, key))
            return &f->v[i];
    return NULL;
}

static void drop(fake_t *f, size_t i)
{
    f->v[i] = f->v[--f->n];
}

static void drop_sg_parts(fake_t *f, const char *host)
{
    for (size_t i = f->n; i-- > 0;)
        if (!strcmp(f->v[i].host, host) && dp_sg_part(f->v[i].u.kind)) drop(f, i);
}

void dp_fake_plant(dp_driver_t *d, const char *host, dp_kind_t kind, const char *key, const char *fp)
{
    fake_t *f = F(d);
    fake_unit_t *x = find(f, host, kind, key);
    if (!x) {
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 32;
            f->v = xrealloc(f->v, f->cap * sizeof *f->v);
        }
        x = &f->v[f->n++];
        memset(x, 0, sizeof *x);
        snprintf(x->host, sizeof x->host, "%s", host);
        x->u.kind = kind;
        snprintf(x->u.key, sizeof x->u.key, "%s", key);
    }
    snprintf(x->u.fp, sizeof x->u.fp, "%s", fp);
}

const char *dp_fake_log(dp_driver_t *d)
{
    strbuf_puts(&F(d)->log, "");
    return F(d)->log.s;
}

int dp_fake_observations(const dp_driver_t *d)
{
    return ((const fake_t *)d)->observations;
}

void dp_fake_log_clear(dp_driver_t *d)
{
    F(d)->log.len = 0;
    strbuf_puts(&F(d)->log, "");
}

static int fk_observe(dp_driver_t *d, const char *host, dp_units_t *out, verr_t *e)
{
    (void)e;
    fake_t *f = F(d);
    f->observations++;
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->v[i].host, host)) {
            dp_unit_t *u = dp_units_add(out, f->v[i].u.kind, f->v[i].u.key);
            snprintf(u->fp, sizeof u->fp, "%s", f->v[i].u.fp);
        }
    return 0;
}

static int fk_ensure(dp_driver_t *d, const dp_desired_t *w, dp_unit_t *u,
                     const dp_unit_t *seen, verr_t *e)
{
    (void)e;
    (void)seen;
    fake_t *f = F(d);
    strbuf_printf(&f->log, "ensure %s %s\n", dp_kind_name(u->kind), u->key);
    if (u->kind == DP_HOST)
        for (size_t i = f->n; i-- > 0;)
            if (!strcmp(f->v[i].host, w->host)) drop(f, i);
    dp_fake_plant(d, w->host, u->kind, u->key, u->fp);
    /* as the linux driver: labelling a host side makes an unlabelled one of its name this
     * interface's */
    char dev[96];
    snprintf(dev, sizeof dev, "dev:%s", u->dev);
    fake_unit_t *x = u->kind == DP_IFACE ? find(f, w->host, DP_IFACE, dev) : NULL;
    if (x) drop(f, (size_t)(x - f->v));
    if (u->kind == DP_SG) {
        /* as the linux driver: the tables are rewritten whole, with every part */
        drop_sg_parts(f, w->host);
        dp_units_t all = {0};
        dp_desired_units(w, &all);
        for (size_t i = 0; i < all.n; i++)
            if (dp_sg_part(all.v[i].kind)) dp_fake_plant(d, w->host, all.v[i].kind, all.v[i].key, all.v[i].fp);
        dp_units_clear(&all);
    }
    return 0;
}

static int fk_remove(dp_driver_t *d, const char *host, const dp_unit_t *u, verr_t *e)
{
    (void)e;
    fake_t *f = F(d);
    if (u->kind == DP_SG) drop_sg_parts(f, host);
    strbuf_printf(&f->log, "remove %s %s\n", dp_kind_name(u->kind), u->key);
    for (size_t i = f->n; i-- > 0;)
        if (!strcmp(f->v[i].host, host) &&
            (u->kind == DP_HOST || (f->v[i].u.kind == u->kind && !strcmp(f->v[i].u.key, u->key))))
            drop(f, i);
    return 0;
}

static int fk_hosts(dp_driver_t *d, char ***names, size_t *n, verr_t *e)
{
    (void)e;
    fake_t *f = F(d);
    *names = NULL;
    *n = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (f->v[i].u.kind != DP_HOST) continue;
        *names = xrealloc(*names, (*n + 1) * sizeof **names);
        (*names)[(*n)++] = xstrdup(f->v[i].host);
    }
    return 0;
}

static int fk_teardown_shared(dp_driver_t *d, verr_t *e)
{
    (void)e;
    strbuf_puts(&F(d)->log, "teardown shared\n");
    return 0;
}

static dp_driver_t *fk_open(const dp_config_t *cfg, verr_t *e)
{
    (void)cfg;
    (void)e;
    fake_t *f = xcalloc(1, sizeof *f);
    strbuf_puts(&f->log, "");
    return &f->base;
}

static void fk_close(dp_driver_t *d)
{
    fake_t *f = F(d);
    free(f->v);
    free(f->log.s);
    free(f);
}

const dp_ops_t dp_fake_ops = {
    .name = "fake",
    .open = fk_open,
    .close = fk_close,
    .observe = fk_observe,
    .ensure = fk_ensure,
    .remove = fk_remove,
    .teardown_shared = fk_teardown_shared,
    .hosts = fk_hosts,
};
