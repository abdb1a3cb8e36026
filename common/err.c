/* err.c - error struct and the aborting allocators. */
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int verr_set(verr_t *e, int http_status, const char *code, const char *fmt, ...)
{
    if (!e)
        return -1;
    snprintf(e->code, sizeof e->code, "%s", code ? code : "InternalError");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->http_status = http_status;
    return -1;
}

int verr_recode(verr_t *e, int http_status, const char *code)
{
    if (!e)
        return -1;
    snprintf(e->code, sizeof e->code, "%s", code ? code : "InternalError");
    e->http_status = http_status;
    return -1;
}

void verr_clear(verr_t *e)
{
    if (e)
        memset(e, 0, sizeof *e);
}

static void oom(size_t n)
{
    fprintf(stderr, "virga: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p)
        oom(n * m);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p)
        oom(s ? strlen(s) : 0);
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return s;
}

void autofree_ptr(void *pp)
{
    void **p = pp;
    free(*p);
    *p = NULL;
}
