/* config.c - libyaml event parser flattening a document into dotted keys. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct kv {
    char *key, *val;
};

struct config {
    struct kv *file; size_t nfile;
    struct kv *cli;  size_t ncli;
};

config_t *config_new(void) { return xcalloc(1, sizeof(config_t)); }

static void kv_free(struct kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].val);
    }
    free(v);
}

void config_free(config_t *c)
{
    if (!c)
        return;
    kv_free(c->file, c->nfile);
    kv_free(c->cli, c->ncli);
    free(c);
}

static void kv_put(struct kv **v, size_t *n, const char *key, const char *val)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i].key, key)) {
            free((*v)[i].val);
            (*v)[i].val = xstrdup(val);
            return;
        }
    *v = xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[*n].key = xstrdup(key);
    (*v)[*n].val = xstrdup(val);
    (*n)++;
}

static void kv_append(struct kv **v, size_t *n, const char *key, const char *val)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i].key, key)) {
            char *joined = xasprintf("%s,%s", (*v)[i].val, val);
            free((*v)[i].val);
            (*v)[i].val = joined;
            return;
        }
    kv_put(v, n, key, val);
}

static void kv_del(struct kv **v, size_t *n, const char *key)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i].key, key)) {
            free((*v)[i].key);
            free((*v)[i].val);
            (*v)[i] = (*v)[*n - 1];
            (*n)--;
            return;
        }
}

void config_set(config_t *c, const char *key, const char *value)
{
    kv_put(&c->cli, &c->ncli, key, value);
}

void config_foreach(const config_t *c, void (*fn)(const char *key, const char *value, void *arg), void *arg)
{
    for (size_t i = 0; i < c->nfile; i++)
        fn(c->file[i].key, c->file[i].val, arg);
}

/* Walk the event stream keeping a stack of mapping keys. */
static int parse(config_t *c, yaml_parser_t *p, verr_t *e)
{
    char *stack[32] = {0};
    int depth = 0;          /* number of open mappings */
    int want_key[33] = {0}; /* per depth: next scalar is a key */
    int in_seq = 0, seq_items = 0;
    int rc = -1;

    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev)) {
            verr_set(e, 400, "InvalidConfig", "YAML error at line %zu: %s",
                     p->problem_mark.line + 1, p->problem ? p->problem : "?");
            goto out;
        }
        int done = ev.type == YAML_STREAM_END_EVENT;
        switch (ev.type) {
        case YAML_MAPPING_START_EVENT:
            if (depth >= 31 || in_seq) {
                yaml_event_delete(&ev);
                verr_set(e, 400, "InvalidConfig", "config nests too deep or maps inside a list");
                goto out;
            }
            depth++;
            want_key[depth] = 1;
            break;
        case YAML_MAPPING_END_EVENT:
            free(stack[depth]);
            stack[depth] = NULL;
            depth--;
            if (depth > 0) {
                free(stack[depth]);
                stack[depth] = NULL;
                want_key[depth] = 1;
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
            if (in_seq) {
                yaml_event_delete(&ev);
                verr_set(e, 400, "InvalidConfig", "lists inside lists are not supported (line %zu)",
                         p->mark.line + 1);
                goto out;
            }
            in_seq = 1;
            seq_items = 0;
            break;
        case YAML_SEQUENCE_END_EVENT:
            in_seq = 0;
            if (depth > 0) {
                free(stack[depth]);
                stack[depth] = NULL;
                want_key[depth] = 1;
            }
            break;
        case YAML_SCALAR_EVENT: {
            const char *s = (const char *)ev.data.scalar.value;
            if (depth > 0 && want_key[depth] && !in_seq) {
                stack[depth] = xstrdup(s);
                want_key[depth] = 0;
                break;
            }
            char key[512] = "";
            for (int i = 1; i <= depth; i++) {
                if (i > 1)
                    strncat(key, ".", sizeof key - strlen(key) - 1);
                strncat(key, stack[i] ? stack[i] : "", sizeof key - strlen(key) - 1);
            }
            /* a YAML null means "not set": the caller's default applies */
            int is_null = ev.data.scalar.plain_implicit && (!strcmp(s, "~") || !strcmp(s, "null") || !*s);
            if (in_seq) {
                /* a list replaces what an earlier file said for the key */
                if (seq_items++ == 0)
                    kv_put(&c->file, &c->nfile, key, s);
                else
                    kv_append(&c->file, &c->nfile, key, s);
            } else if (is_null) {
                kv_del(&c->file, &c->nfile, key);
                if (depth > 0) {
                    free(stack[depth]);
                    stack[depth] = NULL;
                    want_key[depth] = 1;
                }
            } else {
                kv_put(&c->file, &c->nfile, key, s);
                if (depth > 0) {
                    free(stack[depth]);
                    stack[depth] = NULL;
                    want_key[depth] = 1;
                }
            }
            break;
        }
        case YAML_ALIAS_EVENT:
            yaml_event_delete(&ev);
            verr_set(e, 400, "InvalidConfig", "YAML aliases are not supported (line %zu)", p->mark.line + 1);
            goto out;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (done)
            break;
    }
    rc = 0;
out:
    for (int i = 0; i < 32; i++)
        free(stack[i]);
    return rc;
}

int config_load_string(config_t *c, const char *yaml, verr_t *e)
{
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, strlen(yaml));
    int rc = parse(c, &p, e);
    yaml_parser_delete(&p);
    return rc;
}

int config_load_file(config_t *c, const char *path, verr_t *e)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return verr_set(e, 400, "InvalidConfig", "cannot open %s: %s", path, strerror(errno));
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int rc = parse(c, &p, e);
    yaml_parser_delete(&p);
    fclose(f);
    if (rc < 0 && e) {
        char *m = xasprintf("%s: %s", path, e->message);
        snprintf(e->message, sizeof e->message, "%.*s", (int)sizeof e->message - 1, m);
        free(m);
    }
    return rc;
}

int config_parse_args(config_t *c, int argc, char **argv, int *rest_argc, char **rest, verr_t *e)
{
    int nrest = 0, consumed = 0;
    const char *file = getenv("VIRGA_CONFIG");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc) {
            file = argv[++i];
            consumed += 2;
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            const char *kv = argv[++i];
            const char *eq = strchr(kv, '=');
            if (!eq || eq == kv)
                return verr_set(e, 400, "InvalidConfig", "--set wants key=value, got '%s'", kv);
            char *k = strndup(kv, (size_t)(eq - kv));
            config_set(c, k, eq + 1);
            free(k);
            consumed += 2;
        } else if (rest) {
            rest[nrest++] = argv[i];
        }
    }
    if (rest_argc)
        *rest_argc = nrest;
    if (file && *file && config_load_file(c, file, e) < 0)
        return -1;
    return consumed;
}

static const char *lookup(const struct kv *v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].key, key))
            return v[i].val;
    return NULL;
}

const char *config_str(const config_t *c, const char *key, const char *def)
{
    const char *v = c ? lookup(c->cli, c->ncli, key) : NULL;
    if (v)
        return v;
    char env[256] = "VIRGA_";
    size_t j = strlen(env);
    for (const char *k = key; *k && j < sizeof env - 1; k++)
        env[j++] = (*k == '.' || *k == '-') ? '_' : (char)toupper((unsigned char)*k);
    env[j] = 0;
    if ((v = getenv(env)))
        return v;
    if (c && (v = lookup(c->file, c->nfile, key)))
        return v;
    return def;
}

long config_int(const config_t *c, const char *key, long def)
{
    const char *v = config_str(c, key, NULL);
    if (!v || !*v)
        return def;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    return (errno || *end) ? def : n;
}

int config_bool(const config_t *c, const char *key, int def)
{
    const char *v = config_str(c, key, NULL);
    if (!v)
        return def;
    if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1") || !strcasecmp(v, "on"))
        return 1;
    if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0") || !strcasecmp(v, "off"))
        return 0;
    return def;
}
