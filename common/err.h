/* err.h - the one error idiom of Virga.
 *
 * A function that can fail returns 0 on success and -1 on failure, after filling a
 * verr_t with an API-shaped code ("InvalidParameterValue", "RequestTimeout", ...), a
 * human message and an HTTP status. The code is what tenants see in EC2/S3 errors, so
 * it is chosen where the failure is detected, once. */
#ifndef VIRGA_ERR_H
#define VIRGA_ERR_H

#include <stdarg.h>
#include <stddef.h>

typedef struct verr {
    char code[64];
    char message[512];
    int  http_status;
} verr_t;

/* Fill *e (which may be NULL) and return -1 so callers can `return verr_set(...)`. */
int verr_set(verr_t *e, int http_status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void verr_clear(verr_t *e);
/* Give an error another code and status, keeping its message; returns -1. */
int verr_recode(verr_t *e, int http_status, const char *code);

/* Allocation failure aborts the process (as Redis' zmalloc): callers never test for NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cleanup helpers: `AUTOFREE char *s = ...;` frees at scope exit. */
void autofree_ptr(void *pp);
#define AUTOFREE __attribute__((cleanup(autofree_ptr)))

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
