/* linux_sg.c - the security group units of the linux driver: observe, ensure, remove.
 *
 * The scripts are render_sg.c's. Observing is one `nft` run listing every chain (their
 * comments hold the fingerprints) and every set (their elements are the fingerprints of
 * the group sets). Changing an interface, a VPC or a set is just its statements, and all
 * the pieces an apply changes are one `nft -f` transaction, run by the commit
 * (linux_commit.c); if it fails (the tables are not what observe said: changed under
 * us), the tables are marked broken (their `fp` chain removed) and apply observes again,
 * which rewrites them whole from the document. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linux.h"
#include "strbuf.h"

static const char *const NFT_F[] = {"nft", "-f", "-", NULL};

#define MARK_ON(x, m) ((x)->marks[(m) / 8] & (1u << ((m) % 8)))
#define MARK_SET(x, m) ((x)->marks[(m) / 8] |= (unsigned char)(1u << ((m) % 8)))
#define MARK_CLR(x, m) ((x)->marks[(m) / 8] &= (unsigned char)~(1u << ((m) % 8)))

typedef struct parse {
    lx_driver_t *x;
    dp_units_t *out;
    char fam[16], table[64], obj[128];
    int in_chain, in_set, collecting, ours;
    int bridge_base, inet_table;
    char layout[96];
    strbuf_t elems;
} parse_t;

/* "eni=<eni> dev=<dev> m=<mark> <fp>" of an interface's in chain */
static void iface_comment(parse_t *p, const char *c)
{
    char eni[DP_NAME_MAX], dev[16];
    unsigned mark;
    int off = 0;
    if (sscanf(c, "eni=%63s dev=%15s m=%u %n", eni, dev, &mark, &off) != 3 || !off || !mark || mark >= LX_MARKS)
        return;
    dp_unit_t *u = dp_units_add(p->out, DP_SGIF, eni);
    snprintf(u->fp, sizeof u->fp, "%s", c + off);
    snprintf(u->dev, sizeof u->dev, "%s", dev);
    u->mark = mark;
}

/* "grp=<group> <fp>" of a group's fingerprint chain */
static void group_comment(parse_t *p, const char *c)
{
    char gid[DP_NAME_MAX];
    int off = 0;
    if (sscanf(c, "grp=%63s %n", gid, &off) != 1 || !off) return;
    snprintf(dp_units_add(p->out, DP_SGGRP, gid)->fp, sizeof(((dp_unit_t *)0)->fp), "%s", c + off);
}

static void chain_comment(parse_t *p, const char *c)
{
    if (!strcmp(p->fam, "inet") && !strcmp(p->obj, "fp")) snprintf(p->layout, sizeof p->layout, "%.95s", c);
    else if (!strcmp(p->fam, "inet") && !strncmp(p->obj, "i_", 2)) iface_comment(p, c);
    else if (!strcmp(p->fam, "inet") && !strncmp(p->obj, "gf_", 3)) group_comment(p, c);
    else if (!strcmp(p->fam, "bridge") && !strncmp(p->obj, "v_", 2) && p->obj[2])
        snprintf(dp_units_add(p->out, DP_SGVPC, p->obj + 2)->fp, sizeof(((dp_unit_t *)0)->fp), "%s", c);
}

/* The set's elements as render_sg.c writes them: one fingerprint for the same members. */
static void set_done(parse_t *p)
{
    AUTOFREE char *text = xstrdup(p->elems.s ? p->elems.s : "");
    const char **v = NULL;
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(text, " \t\n,{}", &save); t; t = strtok_r(NULL, " \t\n,{}", &save)) {
        v = xrealloc(v, (n + 1) * sizeof *v);
        v[n++] = t;
    }
    AUTOFREE char *joined = dp_sg_join_elems(v, n);
    free(v);
    char h[9];
    dp_hash8(joined, h);
    snprintf(dp_units_add(p->out, DP_SGSET, p->obj)->fp, sizeof(((dp_unit_t *)0)->fp), "m=%s", h);
}

static void parse_line(parse_t *p, const char *line)
{
    while (*line == ' ' || *line == '\t') line++;
    char a[128], b[64];
    if (p->collecting) {
        strbuf_printf(&p->elems, " %s", line);
        p->collecting = !strchr(line, '}');
    } else if (sscanf(line, "table %15s %63s {", a, b) == 2) {
        snprintf(p->fam, sizeof p->fam, "%.15s", a);
        snprintf(p->table, sizeof p->table, "%s", b);
        p->ours = !strcmp(b, "virga_sg");
        p->inet_table |= p->ours && !strcmp(a, "inet");
    } else if (sscanf(line, "chain %127s {", a) == 1) {
        snprintf(p->obj, sizeof p->obj, "%s", a);
        p->in_chain = 1;
        p->bridge_base |= p->ours && !strcmp(p->fam, "bridge") && !strcmp(a, "vmarks");
    } else if (sscanf(line, "set %127s {", a) == 1) {
        snprintf(p->obj, sizeof p->obj, "%s", a);
        p->in_set = p->ours && !strcmp(p->fam, "inet") && !strncmp(a, "g_", 2);
        p->elems.len = 0;
        if (p->elems.s) p->elems.s[0] = 0;
    } else if (!strncmp(line, "elements = {", 12) && p->in_set) {
        strbuf_printf(&p->elems, " %s", line + 12);
        p->collecting = !strchr(line + 12, '}');
    } else if (!strncmp(line, "comment \"", 9) && p->in_chain && p->ours) {
        const char *c = line + 9, *q = strrchr(c, '"');
        char text[256];
        snprintf(text, sizeof text, "%.*s", q && q >= c ? (int)(q - c) : 0, c);
        chain_comment(p, text);
    } else if (!strcmp(line, "}")) {
        if (p->in_set) set_done(p);
        p->in_set = p->in_chain = 0;
    }
}

int lx_sg_observe(dp_driver_t *d, const char *hns, dp_units_t *out, verr_t *e)
{
    lx_driver_t *x = (lx_driver_t *)d;
    memset(x->marks, 0, sizeof x->marks);
    AUTOFREE char *text = NULL;
    if (dp_run(hns, NFT_F, "list chains\nlist sets\n", &text, 0, e) < 0) return -1;
    size_t first = out->n;
    dp_unit_t *sg = dp_units_add(out, DP_SG, "sg");
    parse_t p = {.x = x, .out = out};
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) parse_line(&p, l);
    free(p.elems.s);
    sg = &out->v[first];    /* the array may have moved */
    if (!p.inet_table && !p.bridge_base && out->n == first + 1) {
        out->n = first;     /* no tables: nothing to remove, ensure creates them */
        return 0;
    }
    int whole = p.inet_table && p.bridge_base && !strcmp(p.layout, DP_SG_LAYOUT);
    snprintf(sg->fp, sizeof sg->fp, "%s", whole ? p.layout : "-");
    if (!whole) {
        /* another layout (an older agent's) or broken: rewritten whole, parts unknown */
        for (size_t i = first + 1; i < out->n; i++) {
            free(out->v[i].text);
            free(out->v[i].text2);
        }
        out->n = first + 1;
        return 0;
    }
    for (size_t i = first + 1; i < out->n; i++)
        if (out->v[i].kind == DP_SGIF) MARK_SET(x, out->v[i].mark);
    return 0;
}

/* A piece's statements join the apply's one transaction (run by the commit). */
static void defer_piece(dp_driver_t *d, const char *hns, const char *script)
{
    lx_pending_t *p = lx_pending(d, hns);
    strbuf_puts(&p->nft, script);
    p->nft_pieces++;
}

static unsigned free_mark(lx_driver_t *x)
{
    for (unsigned m = 1; m < LX_MARKS; m++)
        if (!MARK_ON(x, m)) return m;
    return 0;
}

int lx_sg_ensure(dp_driver_t *d, const dp_desired_t *w, dp_unit_t *u, const dp_unit_t *seen, verr_t *e)
{
    lx_driver_t *x = (lx_driver_t *)d;
    char hns[128];
    lx_ns_host(d, w->host, hns, sizeof hns);
    AUTOFREE char *script = NULL;
    unsigned mark = 0;
    switch (u->kind) {
    case DP_SG: {
        /* the whole rule set from the document, one transaction: the repair path */
        dp_units_t all = {0};
        dp_desired_units(w, &all);
        script = dp_render_sg_full(w, &all);
        dp_units_clear(&all);
        if (dp_run(hns, NFT_F, script, NULL, 0, e) < 0) return -1;
        memset(x->marks, 0, sizeof x->marks);
        for (unsigned m = 1; m <= w->n_ifaces && m < LX_MARKS; m++) MARK_SET(x, m);
        return 0;
    }
    case DP_SGVPC: {
        const dp_vpc_t *v = u->spec;
        AUTOFREE char *del = seen ? dp_render_sg_vpc_del(v->vni) : xstrdup("");
        AUTOFREE char *add = dp_render_sg_vpc(w, v, u->fp);
        script = xasprintf("%s%s", del, add);
        break;
    }
    case DP_SGSET:
        script = dp_render_sg_set(u->key, u->text);
        break;
    case DP_SGGRP:
        script = dp_render_sg_group(u->spec, seen != NULL, u->fp);
        break;
    case DP_SGIF: {
        /* a changed interface keeps its mark; a new one takes the lowest free */
        mark = seen && seen->mark ? seen->mark : free_mark(x);
        if (!mark) return verr_set(e, 500, "InternalError", "%s: no free packet mark for %s", hns, u->key);
        AUTOFREE char *del = seen && seen->mark ? dp_render_sg_iface_del(seen->key, seen->dev, seen->mark)
                                                : xstrdup("");
        AUTOFREE char *add = dp_render_sg_iface(w, u->spec, mark, u->fp);
        script = xasprintf("%s%s", del, add);
        break;
    }
    default:
        return verr_set(e, 500, "InternalError", "not a security group unit");
    }
    defer_piece(d, hns, script);
    if (mark) MARK_SET(x, mark);   /* taken now: the next interface of this apply takes another */
    u->mark = mark;     /* what observe would read back (dp_apply_changes keeps it) */
    return 0;
}

int lx_sg_remove(dp_driver_t *d, const char *host, const dp_unit_t *u, verr_t *e)
{
    (void)e;
    lx_driver_t *x = (lx_driver_t *)d;
    char hns[128];
    lx_ns_host(d, host, hns, sizeof hns);
    if (!lx_ns_exists(hns)) return 0;
    AUTOFREE char *script = NULL;
    switch (u->kind) {
    case DP_SG:
        dp_runv(hns, DP_QUIET, NULL, "nft", "delete", "table", "inet", "virga_sg", NULL);
        dp_runv(hns, DP_QUIET, NULL, "nft", "delete", "table", "bridge", "virga_sg", NULL);
        memset(x->marks, 0, sizeof x->marks);
        return 0;
    case DP_SGVPC: script = dp_render_sg_vpc_del((unsigned)strtoul(u->key, NULL, 10)); break;
    case DP_SGSET: script = dp_render_sg_set_del(u->key); break;
    case DP_SGGRP: script = dp_render_sg_group_del(u->key); break;
    case DP_SGIF:  script = dp_render_sg_iface_del(u->key, u->dev, u->mark); break;
    default:       return 0;
    }
    defer_piece(d, hns, script);
    if (u->kind == DP_SGIF) MARK_CLR(x, u->mark);
    return 0;
}
