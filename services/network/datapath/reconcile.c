/* reconcile.c - level-triggered apply: observe, compare units, ensure and remove.
 *
 * Driver-independent, so the fake and the linux driver converge by the same rules. An
 * ensure that rebuilds a unit can take its dependents with it (a rebuilt VPC loses its fdb
 * entries and attached interfaces, a rebuilt primary interface those attached in its
 * namespace), so apply observes again after each pass until nothing
 * differs, a bounded number of times. The security group tables (DP_SG) are the one
 * unit whose ensure writes its parts too (the whole rule set in one transaction, the
 * repair and adoption path); otherwise each part is changed on its own.
 *
 * dp_apply_changes skips the observation when the last apply converged: what it left is
 * the desired units it ended with (kinds, keys, fingerprints, the marks the driver chose),
 * exactly what an observation of a converged host reads back, so only the difference to
 * the new document is ensured or removed, as a full apply would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"

#define DP_PASSES 4

static const char *const kind_names[DP_KINDS] = {
    [DP_HOST] = "host", [DP_VPC] = "vpc", [DP_FDB] = "fdb", [DP_IFACE] = "iface",
    [DP_ROUTER] = "router", [DP_DHCP] = "dhcp", [DP_META] = "meta", [DP_SG] = "sg",
    [DP_SGVPC] = "sgvpc", [DP_SGSET] = "sgset", [DP_SGGRP] = "sggrp", [DP_SGIF] = "sgif",
};

/* The pieces of the security group tables: ensuring the tables themselves (DP_SG) writes
 * all of them in the same transaction, and removing them removes all of them. */
int dp_sg_part(dp_kind_t k)
{
    return k == DP_SGVPC || k == DP_SGSET || k == DP_SGGRP || k == DP_SGIF;
}

/* A desired interface with a stand-in namespace of its own (a veth, not attached later). */
static const dp_iface_t *stand_in(const dp_unit_t *u)
{
    const dp_iface_t *f = u->kind == DP_IFACE ? u->spec : NULL;
    return f && strcmp(f->kind, "tap") && !f->parent[0] ? f : NULL;
}

/* An unlabelled host side (observed as "dev:<device>": an applier was killed after it
 * made the pair, before it named it) of a device the document gives a stand-in: not
 * removed but handed to that interface's ensure as what is there, which finishes it in
 * place when it can (a guest may already run in its namespace) or makes it anew. */
static const dp_unit_t *unlabelled(const dp_units_t *des, const dp_unit_t *o)
{
    if (o->kind != DP_IFACE || strncmp(o->key, "dev:", 4)) return NULL;
    for (size_t i = 0; des && i < des->n; i++)
        if (stand_in(&des->v[i]) && !strcmp(des->v[i].dev, o->key + 4)) return &des->v[i];
    return NULL;
}

static const dp_unit_t *seen_as(const dp_units_t *obs, const dp_unit_t *want)
{
    const dp_unit_t *o = dp_units_find(obs, want->kind, want->key);
    if (o || !stand_in(want)) return o;
    char key[96];
    snprintf(key, sizeof key, "dev:%s", want->dev);
    return dp_units_find(obs, DP_IFACE, key);
}

/* Removed after the ensures: sets and group chains that chains being replaced may still
 * name. */
static int late_removal(dp_kind_t k)
{
    return k == DP_SGSET || k == DP_SGGRP;
}

const char *dp_kind_name(dp_kind_t k)
{
    return k < DP_KINDS ? kind_names[k] : "?";
}

dp_unit_t *dp_units_add(dp_units_t *u, dp_kind_t kind, const char *key)
{
    if (u->n == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 16;
        u->v = xrealloc(u->v, u->cap * sizeof *u->v);
    }
    dp_unit_t *x = &u->v[u->n++];
    memset(x, 0, sizeof *x);
    x->kind = kind;
    snprintf(x->key, sizeof x->key, "%s", key);
    return x;
}

const dp_unit_t *dp_units_find(const dp_units_t *u, dp_kind_t kind, const char *key)
{
    for (size_t i = 0; i < u->n; i++)
        if (u->v[i].kind == kind && !strcmp(u->v[i].key, key)) return &u->v[i];
    return NULL;
}

void dp_units_clear(dp_units_t *u)
{
    for (size_t i = 0; i < u->n; i++) {
        free(u->v[i].text);
        free(u->v[i].text2);
    }
    free(u->v);
    memset(u, 0, sizeof *u);
}

int dp_observe(dp_driver_t *d, const char *host, dp_units_t *out, verr_t *e)
{
    return d->ops->observe(d, host, out, e);
}

/* An attached interface after the primaries: desired ones say so, observed ones have it
 * in their fingerprint. */
static int unit_order(const dp_unit_t *u)
{
    return u->order || (u->kind == DP_IFACE && strstr(u->fp, " in=") != NULL);
}

/* Units in kind order, so ensures go outside-in and removals inside-out. */
static int by_kind(const void *a, const void *b)
{
    const dp_unit_t *x = a, *y = b;
    if (x->kind != y->kind) return (int)x->kind - (int)y->kind;
    if (unit_order(x) != unit_order(y)) return unit_order(x) - unit_order(y);
    return strcmp(x->key, y->key);
}

/* Remove what `keep` does not name, inside-out. A set or a group's chains go only after
 * the chains that may still name them have been replaced (`late` 0: all but those, 1:
 * only those),
 * and the pieces of the security group tables not at all when the tables go. Answers 1
 * when the driver asks for another observation. */
static int remove_units(dp_driver_t *d, const char *host, dp_units_t *obs,
                        const dp_units_t *keep, int late, dp_stats_t *st, verr_t *e)
{
    qsort(obs->v, obs->n, sizeof *obs->v, by_kind);
    int tables_go = !keep || !dp_units_find(keep, DP_SG, "sg"), again = 0;
    for (size_t i = obs->n; i-- > 0;) {
        const dp_unit_t *u = &obs->v[i];
        if (keep && (dp_units_find(keep, u->kind, u->key) || unlabelled(keep, u))) continue;
        if (dp_sg_part(u->kind) && tables_go && dp_units_find(obs, DP_SG, "sg")) continue;
        if (late_removal(u->kind) != (late == 1) && keep) continue;
        int rc = d->ops->remove(d, host, u, e);
        if (rc < 0) return -1;
        again |= rc > 0;
        if (st) st->removed++;
    }
    return again;
}

/* A unit as what is there: its identity and what observe would read back, without the
 * desired side's spec (it points into a document that goes). A router keeps its texts
 * (gateways, routes, the NAT with the public addresses): its next ensure then changes
 * only the public addresses that differ instead of rebuilding the router (a launch or a
 * terminate with a public address), which an observation, reading no text, never
 * allows. */
static void keep_unit(dp_units_t *to, const dp_unit_t *u, const dp_unit_t *texts)
{
    dp_unit_t *k = dp_units_add(to, u->kind, u->key);
    snprintf(k->fp, sizeof k->fp, "%s", u->fp);
    snprintf(k->dev, sizeof k->dev, "%s", u->dev);
    k->order = unit_order(u);
    k->mark = u->mark;
    if (u->kind == DP_ROUTER && texts->text && texts->text2) {
        k->text = xstrdup(texts->text);
        k->text2 = xstrdup(texts->text2);
    }
}

/* What the driver deferred (dp_ops_t.commit), run now; then the launches waiting for the
 * interfaces it plugged may go. */
static int commit(dp_driver_t *d, dp_stats_t *st, const dp_units_t *des, size_t *plugged, size_t *n_plugged,
                  verr_t *e)
{
    int rc = d->ops->commit ? d->ops->commit(d, e) : 0;
    if (rc >= 0 && st && st->plugged)
        for (size_t i = 0; i < *n_plugged; i++) st->plugged(st->plugged_arg, des->v[plugged[i]].key);
    *n_plugged = 0;
    return rc;
}

static void discard(dp_driver_t *d)
{
    if (d->ops->discard) d->ops->discard(d);
}

static void forget_known(dp_driver_t *d)
{
    dp_units_clear(&d->known);
    d->known_ok = 0;
}

/* The host as a pass left it: every desired unit, as observed when it was not touched,
 * as ensured (with what the driver noted on it) when it was. */
static void remember(dp_driver_t *d, const char *host, const dp_units_t *des, const dp_units_t *obs)
{
    dp_units_t k = {0};
    for (size_t i = 0; i < des->n; i++) {
        const dp_unit_t *o = dp_units_find(obs, des->v[i].kind, des->v[i].key);
        /* equal fingerprints, equal configuration: the texts are the document's */
        keep_unit(&k, o && !strcmp(o->fp, des->v[i].fp) ? o : &des->v[i], &des->v[i]);
    }
    forget_known(d);
    d->known = k;
    snprintf(d->known_host, sizeof d->known_host, "%s", host);
    d->known_ok = 1;
}

/* What is there for this pass: the last converged state when `trust` and it is this
 * host's, else an observation. */
static int current(dp_driver_t *d, const char *host, int trust, dp_units_t *out, verr_t *e)
{
    if (trust && d->known_ok && !strcmp(d->known_host, host)) {
        for (size_t i = 0; i < d->known.n; i++) keep_unit(out, &d->known.v[i], &d->known.v[i]);
        return 0;
    }
    return d->ops->observe(d, host, out, e);
}

static int apply(dp_driver_t *d, const dp_desired_t *want, int trust, dp_stats_t *st, verr_t *e)
{
    dp_units_t des = {0};
    dp_desired_units(want, &des);
    qsort(des.v, des.n, sizeof *des.v, by_kind);
    int rc = -1, vpc_built = 0;
    /* interfaces ensured whose launches wait for the next commit */
    size_t *plugged = xcalloc(des.n + 1, sizeof *plugged), n_plugged = 0;
    for (int pass = 0; pass < DP_PASSES; pass++) {
        dp_units_t obs = {0};
        if (current(d, want->host, trust && pass == 0, &obs, e) < 0) {
            dp_units_clear(&obs);
            goto out;
        }
        int changed = 0;
        for (size_t i = 0; i < obs.n && !changed; i++)
            changed = !dp_units_find(&des, obs.v[i].kind, obs.v[i].key);
        for (size_t i = 0; i < des.n && !changed; i++) {
            const dp_unit_t *o = dp_units_find(&obs, des.v[i].kind, des.v[i].key);
            changed = !o || strcmp(o->fp, des.v[i].fp);
        }
        if (!changed) {
            remember(d, want->host, &des, &obs);
            dp_units_clear(&obs);
            rc = 0;
            goto out;
        }
        int rebuilt = remove_units(d, want->host, &obs, &des, 0, st, e), sg_whole = 0, ifaces = 0;
        if (rebuilt < 0) {
            dp_units_clear(&obs);
            goto out;
        }
        for (size_t i = 0; i < des.n; i++) {
            const dp_unit_t *o = seen_as(&obs, &des.v[i]);
            if (o && !strcmp(o->fp, des.v[i].fp)) continue;
            if (sg_whole && dp_sg_part(des.v[i].kind)) continue;   /* written with the tables */
            /* the rules (and removals) deferred so far are there before an interface is */
            int r = des.v[i].kind == DP_IFACE && !ifaces++ ? commit(d, st, &des, plugged, &n_plugged, e) : 0;
            if (r >= 0) {
                rebuilt |= r > 0;
                r = d->ops->ensure(d, want, &des.v[i], o, e);
            }
            if (r < 0) {
                dp_units_clear(&obs);
                goto out;
            }
            if (st) st->ensured++;
            /* a VPC new here has no metadata server until the apply ends */
            vpc_built |= des.v[i].kind == DP_HOST || des.v[i].kind == DP_VPC;
            if (des.v[i].kind == DP_IFACE && !vpc_built && r == 0) plugged[n_plugged++] = i;
            rebuilt |= r > 0 || des.v[i].kind == DP_HOST || des.v[i].kind == DP_VPC;
            /* a primary interface rebuilt took the interfaces attached in its namespace */
            rebuilt |= des.v[i].kind == DP_IFACE && !des.v[i].order && o;
            sg_whole |= des.v[i].kind == DP_SG;
        }
        /* sets and groups nothing names any more, now that the chains naming them were
         * replaced (after them in the same deferred transaction), then all of it run */
        int late = sg_whole ? 0 : remove_units(d, want->host, &obs, &des, 1, st, e);
        int done = late < 0 ? late : commit(d, st, &des, plugged, &n_plugged, e);
        if (late < 0 || done < 0) {
            dp_units_clear(&obs);
            goto out;
        }
        rebuilt |= late | done;
        /* Only a rebuilt host or VPC takes other units with it; otherwise every unit
         * that differed was just ensured and another observation would find nothing.
         * The tables rewritten whole chose their parts' marks themselves: not known. */
        if (!rebuilt && !sg_whole) remember(d, want->host, &des, &obs);
        dp_units_clear(&obs);
        if (!rebuilt) {
            rc = 0;
            goto out;
        }
    }
    verr_set(e, 500, "InternalError", "host %s: the datapath did not converge in %d passes",
             want->host, DP_PASSES);
out:
    if (rc < 0) discard(d);
    free(plugged);
    dp_units_clear(&des);
    return rc;
}

int dp_apply(dp_driver_t *d, const dp_desired_t *want, dp_stats_t *st, verr_t *e)
{
    forget_known(d);
    int rc = apply(d, want, 0, st, e);
    if (rc < 0) forget_known(d);
    return rc;
}

int dp_apply_changes(dp_driver_t *d, const dp_desired_t *want, dp_stats_t *st, verr_t *e)
{
    /* a failure leaves the host unknown: the next apply observes it */
    int rc = apply(d, want, 1, st, e);
    if (rc < 0) forget_known(d);
    return rc;
}

int dp_teardown(dp_driver_t *d, const char *host, verr_t *e)
{
    dp_units_t obs = {0};
    forget_known(d);
    int rc = d->ops->observe(d, host, &obs, e);
    if (rc == 0) rc = remove_units(d, host, &obs, NULL, 0, NULL, e) < 0 ? -1 : 0;
    if (rc == 0 && d->ops->commit) rc = d->ops->commit(d, e) < 0 ? -1 : 0;
    if (rc < 0) discard(d);
    dp_units_clear(&obs);
    return rc;
}

int dp_teardown_all(dp_driver_t *d, verr_t *e)
{
    char **hosts = NULL;
    size_t n = 0;
    int rc = d->ops->hosts(d, &hosts, &n, e);
    for (size_t i = 0; rc == 0 && i < n; i++) rc = dp_teardown(d, hosts[i], e);
    for (size_t i = 0; i < n; i++) free(hosts[i]);
    free(hosts);
    return rc < 0 ? -1 : d->ops->teardown_shared(d, e);
}
