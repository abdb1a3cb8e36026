/* query.c - the EC2/IAM Query API request format: form decoding into a flat, bounded
 * parameter list and the dotted-name structuring that turns "Filter.1.Value.2=x" into
 * nested JSON for the services. Every byte here comes from an unauthenticated client
 * (the gateway parses before it verifies), so decoding is strict (bad percent escapes,
 * NUL bytes and invalid UTF-8 are refused rather than repaired), every size is bounded,
 * error messages quote tenant input only as cut, printable ASCII, and the structuring
 * sorts once and walks the sorted list so 1000 parameters cost O(n log n). */
#include "query.h"
#include "strbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Real names nest at most four deep (Filter.1.Value.1, BlockDeviceMapping.1.Ebs.Iops);
 * eight leaves room without letting a hostile name build a deep tree. */
#define QUERY_MAX_DEPTH 8
#define STR_(x) #x
#define STR(x) STR_(x)
/* How much of a tenant's name an error message quotes. */
#define SNIP_MAX 96

/* ---- small helpers ------------------------------------------------------------- */

/* Copy at most SNIP_MAX bytes of s into dst as printable ASCII, so a hostile name can
 * neither bloat nor corrupt an error message that ends up in XML or a log line. */
static const char *snip(char dst[SNIP_MAX + 4], const char *s, size_t n)
{
    size_t i, o = 0;

    for (i = 0; s && i < n && o < SNIP_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (s && i < n) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
    return dst;
}


/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
 * jansson would refuse such strings later anyway; refusing here names the parameter. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

/* ---- form decoding -------------------------------------------------------------- */

/* Decode one name or value of s[0..n) into a new string. what is "name" or "value",
 * used with the (already decoded, possibly partial) name in error messages. */
static char *form_decode(const char *s, size_t n, size_t max, const char *what,
                         const char *pname, size_t pname_len, verr_t *e)
{
    char sn[SNIP_MAX + 4];
    char *out = xmalloc(n + 1);
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (n - i < 3 || hex_digit_value((unsigned char)s[i + 1]) < 0 ||
                hex_digit_value((unsigned char)s[i + 2]) < 0) {
                char bad[SNIP_MAX + 4];
                verr_set(e, 400, "InvalidParameterValue",
                         "Invalid percent-encoding '%s' in the %s of parameter '%s': '%%' "
                         "must be followed by two hex digits",
                         snip(bad, s + i, n - i < 3 ? n - i : 3), what,
                         snip(sn, pname, pname_len));
                free(out);
                return NULL;
            }
            c = hex_digit_value((unsigned char)s[i + 1]) * 16 + hex_digit_value((unsigned char)s[i + 2]);
            i += 2;
        }
        if (c == 0) {
            verr_set(e, 400, "InvalidParameterValue", "The %s of parameter '%s' contains "
                     "a NUL character", what, snip(sn, pname, pname_len));
            free(out);
            return NULL;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (o > max) {
        verr_set(e, 400, "InvalidParameterValue", "The %s of parameter '%s' is too long "
                 "(%zu bytes, at most %zu)", what, snip(sn, pname, pname_len), o, max);
        free(out);
        return NULL;
    }
    if (!utf8_valid((const unsigned char *)out, o)) {
        verr_set(e, 400, "InvalidParameterValue", "The %s of parameter '%s' is not valid "
                 "UTF-8", what, snip(sn, pname, pname_len));
        free(out);
        return NULL;
    }
    return out;
}

/* Open-addressing index over q->p by name, so a repeated name finds its earlier entry in
 * O(1) instead of a scan per parameter. Slots hold position + 1; 0 is empty. */
struct name_index {
    size_t *slot;
    size_t cap;   /* power of two, at least twice the entries it will hold */
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Find name; returns the slot (empty if absent, where an insert would go). */
static size_t *index_find(struct name_index *ix, const query_t *q, const char *name)
{
    size_t i = (size_t)fnv1a(name) & (ix->cap - 1);

    while (ix->slot[i] && strcmp(q->p[ix->slot[i] - 1].name, name) != 0)
        i = (i + 1) & (ix->cap - 1);
    return &ix->slot[i];
}

static void index_init(struct name_index *ix, const query_t *q)
{
    size_t want = 2 * ((q->n > QUERY_MAX_PARAMS ? q->n : QUERY_MAX_PARAMS) + 1);

    for (ix->cap = 64; ix->cap < want; ix->cap *= 2)
        ;
    ix->slot = xcalloc(ix->cap, sizeof *ix->slot);
    for (size_t i = 0; i < q->n; i++) {
        if (!q->p[i].name)   /* hand-built entries may lack a name; never matched */
            continue;
        size_t *s = index_find(ix, q, q->p[i].name);
        *s = i + 1;   /* a hand-built duplicate: the later entry is the one found */
    }
}

/* query_t has no capacity field, so capacity is implied by n: max(8, n rounded up to a
 * power of two). grow_if_full doubles at each power of two from 8 on. */
static void grow_if_full(query_t *q)
{
    if (q->n == 0)
        q->p = xrealloc(q->p, 8 * sizeof *q->p);
    else if (q->n >= 8 && (q->n & (q->n - 1)) == 0)
        q->p = xrealloc(q->p, 2 * q->n * sizeof *q->p);
}

/* A q the caller built or grew by other means is brought to the implied capacity once
 * per append, so grow_if_full's rule holds for it too. */
static void normalise_capacity(query_t *q)
{
    size_t cap = 8;
    if (q->n == 0)
        return;
    while (cap < q->n)
        cap *= 2;
    q->p = xrealloc(q->p, cap * sizeof *q->p);
}

/* Add or replace name=value (taking ownership of both). */
static int put_param(query_t *q, struct name_index *ix, char *name, char *value, verr_t *e)
{
    size_t *s = index_find(ix, q, name);

    if (*s) {
        /* Which of two values a client meant is not ours to guess (nor which one a proxy
         * or signature checker in front of us read). */
        char sn[SNIP_MAX + 4];
        verr_set(e, 400, "InvalidParameterCombination", "The parameter '%s' appears more than once",
                 snip(sn, name, strlen(name)));
        free(name);
        free(value);
        return -1;
    }
    if (q->n >= QUERY_MAX_PARAMS) {
        free(name);
        free(value);
        return verr_set(e, 400, "InvalidParameterValue",
                        "Too many parameters in the request (at most %d)", QUERY_MAX_PARAMS);
    }
    grow_if_full(q);
    q->p[q->n].name = name;
    q->p[q->n].value = value;
    q->n++;
    *s = q->n;
    return 0;
}

/* One "name=value" piece of the form, s[0..n). */
static int parse_pair(const char *s, size_t n, query_t *q, struct name_index *ix, verr_t *e)
{
    const char *eq = memchr(s, '=', n);
    size_t nlen = eq ? (size_t)(eq - s) : n;
    const char *v = eq ? eq + 1 : s + n;
    size_t vlen = eq ? n - nlen - 1 : 0;

    char *name = form_decode(s, nlen, QUERY_MAX_NAME, "name", s, nlen, e);
    if (!name)
        return -1;
    if (!*name) {   /* "&&" or "=x": nothing a client meant to send */
        free(name);
        return 0;
    }
    char *value = form_decode(v, vlen, QUERY_MAX_VALUE, "value", name, strlen(name), e);
    if (!value) {
        free(name);
        return -1;
    }
    return put_param(q, ix, name, value, e);
}

int query_parse_append(const char *text, size_t len, query_t *q, verr_t *e)
{
    struct name_index ix;

    if (!q)
        return verr_set(e, 500, "InternalError", "query: no output");
    if (!text)
        len = 0;
    normalise_capacity(q);
    index_init(&ix, q);
    for (size_t start = 0; start < len;) {
        const char *amp = memchr(text + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - text) : len;
        if (end > start && parse_pair(text + start, end - start, q, &ix, e) < 0) {
            free(ix.slot);
            query_free(q);
            return -1;
        }
        start = end + 1;
    }
    free(ix.slot);
    return 0;
}

int query_parse(const char *text, size_t len, query_t *q, verr_t *e)
{
    if (!q)
        return verr_set(e, 500, "InternalError", "query: no output");
    /* q is an output: whatever it held is not ours to free */
    q->p = NULL;
    q->n = 0;
    return query_parse_append(text, len, q, e);
}

const char *query_get(const query_t *q, const char *name)
{
    if (!q || !name)
        return NULL;
    for (size_t i = q->n; i-- > 0;)   /* from the end: a hand-built duplicate's later wins */
        if (q->p[i].name && strcmp(q->p[i].name, name) == 0)
            return q->p[i].value;
    return NULL;
}

void query_free(query_t *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n; i++) {
        free(q->p[i].name);
        free(q->p[i].value);
    }
    free(q->p);
    q->p = NULL;
    q->n = 0;
}

/* ---- structuring ---------------------------------------------------------------- */

/* One component of a dotted name: a key (idx == 0) or a 1-based list index. */
struct comp {
    const char *s;
    size_t len;
    long idx;
};

/* A parameter split into components; pos breaks ties so a later duplicate wins. */
struct path {
    const query_param_t *p;
    size_t pos;
    size_t n;
    struct comp c[QUERY_MAX_DEPTH];
};

static int bad_name(const char *name, verr_t *e, const char *why)
{
    char sn[SNIP_MAX + 4];
    return verr_set(e, 400, "InvalidParameterValue", "Invalid parameter name '%s': %s",
                    snip(sn, name, strlen(name)), why);
}

/* Classify one component: all digits is an index and must be canonical and in range. */
static int classify(const char *name, struct comp *c, verr_t *e)
{
    size_t i;

    for (i = 0; i < c->len; i++)
        if (c->s[i] < '0' || c->s[i] > '9')
            break;
    if (i < c->len) {
        /* a key: a name as the APIs spell them (KeyName, member, Value), so "-1", "1e3"
         * or "a b" cannot pass for something the action ignores */
        for (i = 0; i < c->len; i++)
            if (!((c->s[i] >= 'A' && c->s[i] <= 'Z') || (c->s[i] >= 'a' && c->s[i] <= 'z') ||
                  (i > 0 && ((c->s[i] >= '0' && c->s[i] <= '9') || c->s[i] == '_' || c->s[i] == '-'))))
                return bad_name(name, e, "a name component is a letter followed by letters, digits, '_' or '-', "
                                         "or a list index");
        c->idx = 0;
        return 0;
    }
    /* a short prefix decides the range, so long digit runs never overflow */
    if (c->s[0] == '0')
        return bad_name(name, e, c->len == 1 ? "list indexes start at 1"
                                             : "a list index has leading zeros");
    if (c->len > 4)
        return bad_name(name, e, "list index above " STR(QUERY_MAX_INDEX));
    long v = 0;
    for (i = 0; i < c->len; i++)
        v = v * 10 + (c->s[i] - '0');
    if (v > QUERY_MAX_INDEX)
        return bad_name(name, e, "list index above " STR(QUERY_MAX_INDEX));
    c->idx = v;
    return 0;
}

static int split_name(const query_param_t *p, size_t pos, struct path *out, verr_t *e)
{
    const char *s = p->name;

    out->p = p;
    out->pos = pos;
    out->n = 0;
    for (;;) {
        const char *dot = strchr(s, '.');
        size_t len = dot ? (size_t)(dot - s) : strlen(s);
        if (len == 0)
            return bad_name(p->name, e, "empty component");
        if (out->n == QUERY_MAX_DEPTH)
            return bad_name(p->name, e,
                            "more than " STR(QUERY_MAX_DEPTH) " dot-separated components");
        struct comp *c = &out->c[out->n++];
        c->s = s;
        c->len = len;
        if (classify(p->name, c, e) < 0)
            return -1;
        if (!dot)
            break;
        s = dot + 1;
    }
    if (out->c[0].idx)
        return bad_name(p->name, e, "a name cannot start with a list index");
    return 0;
}

/* Order: indexes before keys, indexes numerically, keys bytewise; a prefix first. This
 * puts every extension of a path right after it, which the builder relies on. */
static int comp_cmp(const struct comp *a, const struct comp *b)
{
    if (a->idx && b->idx)
        return (a->idx > b->idx) - (a->idx < b->idx);
    if (a->idx || b->idx)
        return a->idx ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->s, b->s, n);
    if (r)
        return r;
    return (a->len > b->len) - (a->len < b->len);
}

static int path_cmp(const void *va, const void *vb)
{
    const struct path *a = va, *b = vb;
    size_t n = a->n < b->n ? a->n : b->n;

    for (size_t i = 0; i < n; i++) {
        int r = comp_cmp(&a->c[i], &b->c[i]);
        if (r)
            return r;
    }
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

static size_t common_prefix(const struct path *a, const struct path *b)
{
    size_t i = 0;
    while (i < a->n && i < b->n && comp_cmp(&a->c[i], &b->c[i]) == 0)
        i++;
    return i;
}

/* Put v (stolen) into container at component c: a key sets, an index appends, or
 * replaces the last element when replace is set (a later duplicate of the same path). */
static int place(json_t *container, const struct comp *c, json_t *v, int replace)
{
    if (c->idx) {
        size_t n = json_array_size(container);
        if (replace && n)
            return json_array_set_new(container, n - 1, v);
        return json_array_append_new(container, v);
    }
    return json_object_setn_new(container, c->s, c->len, v);
}

static int is_skipped(const char *name, const char *const *skip)
{
    for (size_t i = 0; skip && skip[i]; i++)
        if (strcmp(skip[i], name) == 0)
            return 1;
    return 0;
}

/* Insert cur given the previous (sorted) path and the open containers of that path:
 * stack[d] is the container holding component d. See query.h for the rules. */
static int insert_path(json_t *stack[QUERY_MAX_DEPTH], const struct path *prev,
                       const struct path *cur, verr_t *e)
{
    size_t c = prev ? common_prefix(prev, cur) : 0;
    int replace = 0;

    if (prev && c == prev->n) {
        if (cur->n > c)
            return bad_name(cur->p->name, e, "used both as a value and as a structure");
        replace = 1;   /* identical path: hand-built duplicate, the later one wins */
        c--;
    } else if (prev && c > 0 && !cur->c[c].idx != !prev->c[c].idx) {
        return bad_name(cur->p->name, e, "used both as a list and as a structure");
    }
    /* stack[0..c] are shared with prev; create the containers below them */
    for (size_t d = c; d + 1 < cur->n; d++) {
        json_t *child = cur->c[d + 1].idx ? json_array() : json_object();
        if (!child || place(stack[d], &cur->c[d], child, 0) < 0)
            return bad_name(cur->p->name, e, "not valid UTF-8");
        stack[d + 1] = child;
    }
    json_t *leaf = json_string(cur->p->value ? cur->p->value : "");
    if (!leaf || place(stack[cur->n - 1], &cur->c[cur->n - 1], leaf, replace) < 0)
        return bad_name(cur->p->name, e, "name or value is not valid UTF-8");
    return 0;
}

json_t *query_to_json(const query_t *q, const char *const *skip, verr_t *e)
{
    size_t n = 0;
    struct path *paths = NULL;
    json_t *root = json_object();
    json_t *stack[QUERY_MAX_DEPTH];

    if (!root) {
        verr_set(e, 500, "InternalError", "query: out of memory");
        return NULL;
    }
    if (!q || q->n == 0)
        return root;
    paths = xmalloc(q->n * sizeof *paths);
    for (size_t i = 0; i < q->n; i++) {
        if (!q->p[i].name || !*q->p[i].name || is_skipped(q->p[i].name, skip))
            continue;
        if (split_name(&q->p[i], i, &paths[n], e) < 0)
            goto fail;
        n++;
    }
    qsort(paths, n, sizeof *paths, path_cmp);
    stack[0] = root;
    for (size_t i = 0; i < n; i++)
        if (insert_path(stack, i ? &paths[i - 1] : NULL, &paths[i], e) < 0)
            goto fail;
    free(paths);
    return root;
fail:
    free(paths);
    json_decref(root);
    return NULL;
}
