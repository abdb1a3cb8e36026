/* backend_versions.c - S3 versioning for both storage backends: the version fields of
 * an index entry, version sort keys, and the planning of every change to a key's
 * versions (backend_internal.h describes the layout).
 *
 * A change is planned here from what a backend loaded (os_kstate_t: the head, and the
 * noncurrent entries the change needs), as "store this head, store or remove this
 * noncurrent entry, list this data as garbage". The backend applies a plan in one atomic
 * step that compares what it changes with what was loaded; when another writer got there
 * first, os_vchange loads again and plans again. Keeping the rules here means the RADOS
 * and directory backends cannot disagree on what S3 versioning does. */
#include "backend_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ids.h"
#include "jsonutil.h"

#define SK_TMAX 0xFFFFFFFFFFFFull   /* 48 bits of milliseconds: until the year 10889 */
#define SK_TIME_HEX 12

/* ---- version ids and sort keys ---- */

static int is_hex32(const char *s)
{
    size_t i = 0;
    for (; s[i] && i < OS_SK_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == OS_SK_LEN && s[i] == '\0';
}

int os_version_id_valid(const char *s)
{
    return s && (!strcmp(s, "null") || is_hex32(s));
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sk_make(uint64_t t, const char *suffix, char out[OS_SK_LEN + 1])
{
    snprintf(out, SK_TIME_HEX + 1, "%012" PRIx64, (uint64_t)(SK_TMAX - (t > SK_TMAX ? SK_TMAX : t)));
    memcpy(out + SK_TIME_HEX, suffix, OS_SK_LEN - SK_TIME_HEX);
    out[OS_SK_LEN] = '\0';
}

static uint64_t sk_time(const char *sk)
{
    char t[SK_TIME_HEX + 1];
    memcpy(t, sk, SK_TIME_HEX);
    t[SK_TIME_HEX] = '\0';
    return SK_TMAX - strtoull(t, NULL, 16);
}

void os_entry_sk(const json_t *ent, char out[OS_SK_LEN + 1])
{
    const char *sk = json_str(ent, "sk", NULL);
    if (sk && is_hex32(sk)) {
        memcpy(out, sk, OS_SK_LEN + 1);
        return;
    }
    /* An entry from before versioning: its place in time is its mtime. */
    sk_make((uint64_t)json_int(ent, "mtime", 0) * 1000u, "00000000000000000000", out);
}

/* A new version's sort key: newer than the key's latest, whatever the clocks say. */
static void sk_fresh(const json_t *head, char out[OS_SK_LEN + 1])
{
    uint64_t t = now_ms();
    if (head) {
        char hsk[OS_SK_LEN + 1];
        os_entry_sk(head, hsk);
        uint64_t th = sk_time(hsk);
        if (t <= th)
            t = th + 1;
    }
    char rnd[OS_SK_LEN - SK_TIME_HEX + 1];
    ids_hex(rnd, OS_SK_LEN - SK_TIME_HEX);
    sk_make(t, rnd, out);
}

int os_entry_is_null(const json_t *ent)
{
    return json_str(ent, "vid", NULL) == NULL;
}

int os_entry_is_dm(const json_t *ent)
{
    return json_is_true(json_object_get(ent, "dm"));
}

const char *os_entry_vid(const json_t *ent)
{
    return json_str(ent, "vid", "null");
}

int os_entry_has_vid(const json_t *ent, const char *vid)
{
    return ent && vid && !strcmp(os_entry_vid(ent), vid);
}

int os_entry_has_data(const json_t *ent)
{
    return json_is_string(json_object_get(ent, "v")) || json_is_array(json_object_get(ent, "parts"));
}

/* ---- loaded state ---- */

static void krec_clear(os_krec_t *r)
{
    free(r->raw);
    json_decref(r->ent);
    memset(r, 0, sizeof *r);
}

void os_kstate_clear(os_kstate_t *st)
{
    if (!st)
        return;
    krec_clear(&st->head);
    for (size_t i = 0; i < st->nnc; i++)
        krec_clear(&st->nc[i]);
    krec_clear(&st->next);
    memset(st, 0, sizeof *st);
}

const os_krec_t *os_kstate_find(const os_kstate_t *st, const char *sk)
{
    for (size_t i = 0; i < st->nnc; i++)
        if (!strcmp(st->nc[i].sk, sk))
            return &st->nc[i];
    if (st->has_next && st->next.raw && !strcmp(st->next.sk, sk))
        return &st->next;
    return NULL;
}

static void want_sk(os_kwant_t *w, const char *sk)
{
    for (size_t i = 0; i < w->nsk; i++)
        if (!strcmp(w->sk[i], sk))
            return;
    if (w->nsk < OS_KREC_MAX)
        snprintf(w->sk[w->nsk++], OS_SK_LEN + 1, "%s", sk);
}

void os_vop_wants(const os_vop_t *op, os_kwant_t *w)
{
    memset(w, 0, sizeof *w);
    const char *vid = op->vid;
    if (op->kind == OS_VOP_DELETE && (vid || op->vers == OS_VERSIONING_OFF))
        w->next = 1;   /* removing the latest promotes the next newest */
    if ((op->kind == OS_VOP_DELETE || op->kind == OS_VOP_SET_ATTRS) && vid && is_hex32(vid))
        want_sk(w, vid);
}

/* ---- planning ---- */

void os_vplan_clear(os_vplan_t *pl)
{
    if (!pl)
        return;
    json_decref(pl->head);
    json_decref(pl->put);
    json_decref(pl->garbage);
    memset(pl, 0, sizeof *pl);
}

static int plan_empty(const os_vplan_t *pl)
{
    return pl->head_op == OS_HEAD_KEEP && !pl->put && !pl->rm_sk[0] && json_array_size(pl->garbage) == 0;
}

static void garbage_add(os_vplan_t *pl, const json_t *ent)
{
    if (!ent || !os_entry_has_data(ent))
        return;   /* inline bytes and delete markers go with their entry */
    json_t *g = json_copy((json_t *)ent);
    json_object_del(g, OS_INLINE_FIELD);
    json_array_append_new(pl->garbage, g);
}

/* A head kept as a noncurrent entry: it carries its sort key, never a null pointer. */
static json_t *demoted(const json_t *head, const char *sk)
{
    json_t *d = json_copy((json_t *)head);
    json_object_del(d, "nullsk");
    json_object_set_new(d, "sk", json_string(sk));
    return d;
}

static int err_need(os_kwant_t *w, const char *sk)
{
    want_sk(w, sk);
    return 1;
}

/* A new version (an object, or a delete marker) becomes the head. */
static int plan_write(const json_t *entry, os_versioning_t vers, const os_kstate_t *st, os_kwant_t *w,
                      os_vplan_t *pl)
{
    const json_t *head = st->head.ent;
    char sk[OS_SK_LEN + 1];
    sk_fresh(head, sk);
    json_t *nw = json_copy((json_t *)entry);
    json_object_del(nw, "nullsk");
    json_object_set_new(nw, "sk", json_string(sk));
    if (vers == OS_VERSIONING_ENABLED)
        json_object_set_new(nw, "vid", json_string(sk));
    else
        json_object_del(nw, "vid");
    if (head && (vers == OS_VERSIONING_ENABLED || !os_entry_is_null(head))) {
        /* The latest stays, as a noncurrent version. */
        char hsk[OS_SK_LEN + 1];
        os_entry_sk(head, hsk);
        const char *nullsk = os_entry_is_null(head) ? hsk : json_str(head, "nullsk", NULL);
        if (vers == OS_VERSIONING_ENABLED) {
            if (nullsk)
                json_object_set_new(nw, "nullsk", json_string(nullsk));
        } else if (nullsk) {
            /* A null write replaces the null version, which is noncurrent. */
            const os_krec_t *r = os_kstate_find(st, nullsk);
            if (!r) {
                json_decref(nw);
                return err_need(w, nullsk);
            }
            if (r->ent) {
                snprintf(pl->rm_sk, sizeof pl->rm_sk, "%s", nullsk);
                garbage_add(pl, r->ent);
            }
        }
        pl->put = demoted(head, hsk);
        snprintf(pl->put_sk, sizeof pl->put_sk, "%s", hsk);
    } else if (head)
        garbage_add(pl, head);   /* the null version replaced */
    snprintf(pl->version_id, sizeof pl->version_id, "%s", os_entry_vid(nw));
    pl->delete_marker = os_entry_is_dm(nw);
    pl->head_op = OS_HEAD_SET;
    pl->head = nw;
    return 0;
}

/* Remove version vid for good; one that does not exist is no error (S3). */
static int plan_remove(const char *vid, const os_kstate_t *st, os_kwant_t *w, os_vplan_t *pl)
{
    const json_t *head = st->head.ent;
    snprintf(pl->version_id, sizeof pl->version_id, "%s", vid);
    if (!head)
        return 0;
    if (os_entry_has_vid(head, vid)) {
        if (!st->has_next) {
            w->next = 1;
            return 1;
        }
        garbage_add(pl, head);
        pl->delete_marker = os_entry_is_dm(head);
        const json_t *next = st->next.ent;
        if (!next) {
            pl->head_op = OS_HEAD_REMOVE;
            return 0;
        }
        /* The next newest becomes the latest; the null version, if it is another one,
         * stays where it is. */
        json_t *nh = json_copy((json_t *)next);
        json_object_del(nh, "nullsk");
        const char *nullsk = json_str(head, "nullsk", NULL);
        if (nullsk && !os_entry_is_null(nh) && !os_entry_is_null(head) && strcmp(nullsk, st->next.sk))
            json_object_set_new(nh, "nullsk", json_string(nullsk));
        pl->head_op = OS_HEAD_SET;
        pl->head = nh;
        snprintf(pl->rm_sk, sizeof pl->rm_sk, "%s", st->next.sk);
        return 0;
    }
    int is_null = !strcmp(vid, "null");
    const char *sk = is_null ? json_str(head, "nullsk", NULL) : vid;
    if (!sk)
        return 0;
    const os_krec_t *r = os_kstate_find(st, sk);
    if (!r)
        return err_need(w, sk);
    if (!r->ent || !os_entry_has_vid(r->ent, vid))
        return 0;
    snprintf(pl->rm_sk, sizeof pl->rm_sk, "%s", sk);
    garbage_add(pl, r->ent);
    pl->delete_marker = os_entry_is_dm(r->ent);
    if (is_null) {
        pl->head = json_copy((json_t *)head);
        json_object_del(pl->head, "nullsk");
        pl->head_op = OS_HEAD_SET;
    }
    return 0;
}

/* Fields that describe the data (its checksum "ck" included: it was computed from the
 * bytes) or the version: never changed through os_set_attrs. */
static const char *const fixed_fields[] = {"size", "etag", "mtime", "parts", "ck", "v", "sb", "vid", "sk",
                                           "dm", "nullsk", "k", OS_INLINE_FIELD, NULL};

static int attrs_check(const json_t *attrs, verr_t *e)
{
    if (!json_is_object(attrs) || json_object_size(attrs) == 0)
        return verr_set(e, 400, "InvalidArgument", "no attributes to set");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)attrs, k, v)
        for (int i = 0; fixed_fields[i]; i++)
            if (!strcmp(k, fixed_fields[i]))
                return verr_set(e, 400, "InvalidArgument", "attribute %s cannot be set", k);
    return 0;
}

static json_t *with_attrs(const json_t *ent, const json_t *attrs)
{
    json_t *c = json_copy((json_t *)ent);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)attrs, k, v) {
        if (json_is_null(v))
            json_object_del(c, k);
        else
            json_object_set(c, k, v);
    }
    return c;
}

static int plan_attrs(const char *vid, const json_t *attrs, const os_kstate_t *st, os_kwant_t *w,
                      os_vplan_t *pl, verr_t *e)
{
    const json_t *head = st->head.ent;
    if (attrs_check(attrs, e))
        return -1;
    if (!head)
        return vid && strcmp(vid, "null") ? os_err_nosuchversion(e) : os_err_nosuchkey(e);
    if (!vid || os_entry_has_vid(head, vid)) {
        if (os_entry_is_dm(head))
            return vid ? os_err_method(e) : os_err_nosuchkey(e);
        pl->head = with_attrs(head, attrs);
        pl->head_op = OS_HEAD_SET;
        snprintf(pl->version_id, sizeof pl->version_id, "%s", os_entry_vid(head));
        return 0;
    }
    const char *sk = !strcmp(vid, "null") ? json_str(head, "nullsk", NULL) : vid;
    if (!sk)
        return os_err_nosuchversion(e);
    const os_krec_t *r = os_kstate_find(st, sk);
    if (!r)
        return err_need(w, sk);
    if (!r->ent || !os_entry_has_vid(r->ent, vid))
        return os_err_nosuchversion(e);
    if (os_entry_is_dm(r->ent))
        return os_err_method(e);
    pl->put = with_attrs(r->ent, attrs);
    snprintf(pl->put_sk, sizeof pl->put_sk, "%s", sk);
    snprintf(pl->version_id, sizeof pl->version_id, "%s", vid);
    return 0;
}

int os_vplan(const os_vop_t *op, const os_kstate_t *st, os_kwant_t *w, os_vplan_t *pl, verr_t *e)
{
    memset(pl, 0, sizeof *pl);
    pl->garbage = json_array();
    switch (op->kind) {
    case OS_VOP_PUT:
        return plan_write(op->entry, op->vers, st, w, pl);
    case OS_VOP_DELETE:
        if (!op->vid && op->vers != OS_VERSIONING_OFF) {
            json_t *dm = json_pack("{s:b, s:I}", "dm", 1, "mtime", (json_int_t)time(NULL));
            int rc = plan_write(dm, op->vers, st, w, pl);
            json_decref(dm);
            return rc;
        }
        return plan_remove(op->vid ? op->vid : "null", st, w, pl);
    case OS_VOP_SET_ATTRS:
        return plan_attrs(op->vid, op->attrs, st, w, pl, e);
    }
    return verr_set(e, 500, "InternalError", "unknown version change");
}

/* ---- driving a change ---- */

int os_vchange(os_backend_t *b, const char *bucket, const char *key, const os_vop_t *op, os_put_t *p,
               os_kstate_t *st, int loaded, os_meta_t *out, verr_t *e)
{
    os_kwant_t w;
    os_vop_wants(op, &w);
    int rc = 2;   /* 2: lost every race so far */
    for (int attempt = 0; attempt < OS_RETRIES && rc == 2; attempt++) {
        if (!loaded && b->ops->kload(b, bucket, key, &w, st, e)) {
            rc = -1;
            break;
        }
        loaded = 0;
        os_vplan_t pl;
        int prc = os_vplan(op, st, &w, &pl, e);
        if (prc == 0 && !plan_empty(&pl)) {
            prc = b->ops->kapply(b, bucket, key, st, &pl, p, e);
            if (prc == 1)
                prc = 2;   /* changed under us: load again */
        }
        if (prc == 0 && out) {
            snprintf(out->version_id, sizeof out->version_id, "%s", pl.version_id);
            out->delete_marker = pl.delete_marker;
        }
        os_vplan_clear(&pl);
        rc = prc == 1 ? 2 : prc;   /* 1 from the planner: more to load */
    }
    os_kstate_clear(st);
    if (rc == 2)
        return verr_set(e, 503, "ServiceUnavailable", "Too many concurrent writers of this key; please retry.");
    return rc ? -1 : 0;
}

int os_locate(os_backend_t *b, const char *bucket, const char *key, const char *version_id, json_t **out,
              int *is_latest, verr_t *e)
{
    os_kwant_t w = {0};
    os_kstate_t st = {0};
    int real = version_id && strcmp(version_id, "null");
    if (real)
        want_sk(&w, version_id);
    if (b->ops->kload(b, bucket, key, &w, &st, e))
        return -1;
    const json_t *head = st.head.ent, *found = NULL;
    int latest = 0, rc = 0;
    if (!head)
        rc = real ? os_err_nosuchversion(e) : os_err_nosuchkey(e);
    else if (!version_id || os_entry_has_vid(head, version_id)) {
        found = head;
        latest = 1;
    } else if (!real) {
        /* The null version is noncurrent: the head says where. */
        const char *nullsk = json_str(head, "nullsk", NULL);
        if (!nullsk)
            rc = os_err_nosuchversion(e);
        else {
            want_sk(&w, nullsk);
            os_kstate_t again = {0};
            if (b->ops->kload(b, bucket, key, &w, &again, e))
                rc = -1;
            else {
                os_kstate_clear(&st);   /* nullsk pointed into it: w keeps a copy */
                st = again;
                const os_krec_t *r = os_kstate_find(&st, w.sk[w.nsk - 1]);
                found = r && os_entry_has_vid(r->ent, "null") ? r->ent : NULL;
            }
        }
    } else {
        const os_krec_t *r = os_kstate_find(&st, version_id);
        found = r && os_entry_has_vid(r->ent, version_id) ? r->ent : NULL;
    }
    if (!rc && !found)
        rc = os_err_nosuchversion(e);
    if (!rc) {
        *out = json_incref((json_t *)found);
        if (is_latest)
            *is_latest = latest;
    }
    os_kstate_clear(&st);
    return rc ? -1 : 0;
}
