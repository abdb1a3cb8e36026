/* backend_checksum.c - object checksums in the index, for both backends: the JSON form
 * (backend_internal.h), the writer computing them while the bytes stream through
 * os_put_write, and a multipart object's checksum made from its parts' at completion.
 *
 * S3's rules, which this follows: every object has a checksum; one the client did not
 * choose is CRC64NVME over the whole object. A multipart upload chooses its algorithm and
 * type at creation (COMPOSITE by default, FULL_OBJECT for CRC64NVME; the default when it
 * chooses nothing is CRC64NVME FULL_OBJECT); each part stores its own value; completion
 * derives the object's value from the parts' without reading bytes again: COMPOSITE =
 * the algorithm over the concatenated part digests, "-<parts>" appended; FULL_OBJECT =
 * the parts' CRCs combined (crc.c). */
#include "backend_internal.h"

#include <stdio.h>
#include <string.h>

#include "jsonutil.h"

#define TYPE_FULL "FULL_OBJECT"
#define TYPE_COMPOSITE "COMPOSITE"

/* ---- JSON ---- */

void os_checksum_to_json(json_t *rec, const os_checksum_t *ck)
{
    if (!ck || ck->alg == CK_NONE)
        return;
    json_t *j = json_object();
    json_object_set_new(j, "a", json_string(ck_name(ck->alg)));
    json_object_set_new(j, "t", json_string(ck->composite > 0 ? TYPE_COMPOSITE : TYPE_FULL));
    if (ck->value[0])
        json_object_set_new(j, "v", json_string(ck->value));
    json_object_set_new(rec, "ck", j);
}

void os_checksum_from_json(const json_t *rec, os_checksum_t *ck)
{
    memset(ck, 0, sizeof *ck);
    const json_t *j = json_object_get(rec, "ck");
    if (!json_is_object(j) || (ck->alg = ck_by_name(json_str(j, "a", ""))) == CK_NONE)
        return;
    ck->composite = !strcmp(json_str(j, "t", ""), TYPE_COMPOSITE);
    snprintf(ck->value, sizeof ck->value, "%s", json_str(j, "v", ""));
}

void os_upload_checksum(const json_t *upload, os_checksum_t *ck, int *chosen)
{
    os_checksum_from_json(json_object_get(upload, "meta"), ck);
    ck->value[0] = '\0';
    if (chosen)
        *chosen = ck->alg != CK_NONE;
    if (ck->alg == CK_NONE) {
        ck->alg = CK_CRC64NVME;
        ck->composite = 0;
    }
}

/* ---- the writer ---- */

void os_put_ck_begin(os_put_t *p)
{
    ck_init(&p->ck);
    if (p->key) {
        p->ck_store = CK_CRC64NVME;
    } else {
        os_checksum_t u;
        os_upload_checksum(p->upload, &u, &p->ck_chosen);
        p->ck_store = u.alg;
    }
    ck_add(&p->ck, p->ck_store);
}

void os_put_ck_free(os_put_t *p)
{
    ck_free(&p->ck);
    json_decref(p->upload);
    p->upload = NULL;
}

int os_put_checksum_store(os_put_t *p, ck_alg_t alg)
{
    if (!p || !p->key || alg <= CK_NONE || alg >= CK_COUNT || p->ck.updated)
        return -1;
    unsigned keep = p->ck.mask & ~(1u << p->ck_store);
    ck_free(&p->ck);
    ck_init(&p->ck);
    p->ck_store = alg;
    ck_add(&p->ck, alg);
    for (int a = CK_FIRST; a < CK_COUNT; a++)
        if (keep & 1u << a)
            ck_add(&p->ck, (ck_alg_t)a);
    return 0;
}

int os_put_checksum_also(os_put_t *p, ck_alg_t alg)
{
    return p ? ck_add(&p->ck, alg) : -1;
}

ck_alg_t os_put_checksum_alg(const os_put_t *p, int *chosen)
{
    if (chosen)
        *chosen = p ? p->ck_chosen : 0;
    return p ? p->ck_store : CK_NONE;
}

int os_put_checksum_value(os_put_t *p, ck_alg_t alg, char out[CK_B64_MAX])
{
    return p ? ck_value(&p->ck, alg, out) : -1;
}

void os_put_ck_final(os_put_t *p, os_meta_t *meta)
{
    memset(&meta->ck, 0, sizeof meta->ck);
    if (ck_value(&p->ck, p->ck_store, meta->ck.value) == 0)
        meta->ck.alg = p->ck_store;
}

json_t *os_put_ck_part_json(os_put_t *p)
{
    json_t *j = json_object();
    for (int a = CK_FIRST; a < CK_COUNT; a++) {
        char v[CK_B64_MAX];
        if (ck_value(&p->ck, (ck_alg_t)a, v) == 0)
            json_object_set_new(j, ck_name((ck_alg_t)a), json_string(v));
    }
    return j;
}

/* ---- multipart ---- */

static const json_t *part_of(const json_t *parts, int number)
{
    char num[16];
    snprintf(num, sizeof num, "%d", number);
    return json_object_get(parts, num);
}

static const char *part_value(const json_t *part, ck_alg_t a)
{
    return json_str(json_object_get(part, "cks"), ck_name(a), NULL);
}

static void lower(const char *in, char out[16])
{
    size_t i = 0;
    for (; in[i] && i < 15; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] - 'A' + 'a' : in[i]);
    out[i] = '\0';
}

static int type_mismatch(ck_alg_t want, ck_alg_t got, verr_t *e)
{
    char w[16], g[16];
    lower(ck_name(want), w);
    lower(ck_name(got), g);
    return verr_set(e, 400, "InvalidRequest", "Checksum Type mismatch occurred, expected checksum Type: %s, actual "
                    "checksum Type: %s", w, g);
}

/* The parts' values of target->alg made into the object's (target->composite says how);
 * 1 if some part has none (the object then has none), 0 done. */
static int derive(const json_t *parts, const os_part_ref_t *refs, size_t n, os_checksum_t *target)
{
    ck_alg_t a = target->alg;
    size_t dl = ck_digest_len(a);
    unsigned char acc[CK_MAX_DIGEST] = {0};
    ck_state_t st;
    ck_init(&st);
    ck_add(&st, a);
    int missing = 0;
    for (size_t i = 0; i < n && !missing; i++) {
        const json_t *p = part_of(parts, refs[i].number);
        unsigned char d[CK_MAX_DIGEST];
        if (ck_parse(a, part_value(p, a), d) < 0)
            missing = 1;
        else if (target->composite)
            ck_update(&st, d, dl);
        else if (i == 0)
            memcpy(acc, d, dl);
        else
            ck_combine(a, acc, d, (uint64_t)json_int(p, "size", 0), acc);
    }
    if (!missing && target->composite) {
        char b64[CK_B64_MAX];
        ck_value(&st, a, b64);
        /* at most 44 characters (SHA256) and "-10000" */
        snprintf(target->value, sizeof target->value, "%.44s-%u", b64, (unsigned)n);
    } else if (!missing) {
        ck_b64(acc, dl, target->value);
    }
    ck_free(&st);
    return missing;
}

int os_mpu_checksum(const json_t *upload, const json_t *parts, const os_part_ref_t *refs, size_t nrefs,
                    const os_checksum_t *want, os_checksum_t *out, verr_t *e)
{
    os_checksum_t u;
    int chosen;
    os_upload_checksum(upload, &u, &chosen);
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < nrefs; i++) {
        const os_checksum_t *c = &refs[i].ck;
        if (c->alg == CK_NONE)
            continue;
        if (chosen && c->alg != u.alg)
            return type_mismatch(u.alg, c->alg, e);
        const char *stored = part_value(part_of(parts, refs[i].number), c->alg);
        if (stored && strcmp(stored, c->value))
            return verr_set(e, 400, "InvalidPart",
                            "One or more of the specified parts could not be found. The part may not have been "
                            "uploaded, or the specified entity tag may not have matched the part's entity tag.");
    }
    os_checksum_t target = u;
    if (want && want->composite >= 0 && want->composite != u.composite)
        return verr_set(e, 400, "InvalidRequest", "The upload was created using the %s checksum mode. The complete "
                        "request must use the same checksum mode.", u.composite ? TYPE_COMPOSITE : TYPE_FULL);
    if (want && want->alg != CK_NONE && want->alg != u.alg) {
        /* An upload that chose nothing may still be completed with a full-object CRC of
         * another algorithm, if its parts were sent with that algorithm's values. */
        if (chosen || !ck_is_crc(want->alg))
            return type_mismatch(u.alg, want->alg, e);
        target.alg = want->alg;
        target.composite = 0;
    }
    if (derive(parts, refs, nrefs, &target)) {
        if (want && want->alg != CK_NONE && want->value[0])
            return verr_set(e, 400, "InvalidRequest", "The %s checksum of the object cannot be verified: a part "
                            "was uploaded without it.", ck_name(target.alg));
        return 0;   /* parts from before checksums were kept: the object has none */
    }
    if (want && want->alg != CK_NONE && want->value[0]) {
        size_t wl = strlen(want->value);
        int same = !strcmp(want->value, target.value) ||
                   (target.composite && !strncmp(want->value, target.value, wl) && target.value[wl] == '-');
        if (!same)
            return verr_set(e, 400, "BadDigest", "The %s you specified did not match the calculated checksum.",
                            ck_name(target.alg));
    }
    *out = target;
    return 0;
}
