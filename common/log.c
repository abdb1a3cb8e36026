/* log.c - levelled text or JSON-lines logging with per-thread request ids. */
#include "log.h"
#include "utf8.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *names[] = {"debug", "info", "warn", "error"};
static int  min_level = LOG_INFO;
static int  json_lines;
static char service_name[64] = "virga";
static __thread char request_id[80];

int log_level_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

void log_init(const char *service, const char *level, const char *format)
{
    if (service)
        snprintf(service_name, sizeof service_name, "%s", service);
    int l = log_level_parse(level);
    if (l >= 0)
        min_level = l;
    json_lines = format && !strcmp(format, "json");
}

void log_set_request_id(const char *rid)
{
    snprintf(request_id, sizeof request_id, "%s", rid ? rid : "");
}

const char *log_request_id(void) { return request_id; }

void vlog(int level, const char *fmt, ...)
{
    if (level < min_level || level > LOG_ERROR)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[64];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int)(tv.tv_usec / 1000) % 1000);

    if (json_lines) {
        /* messages may carry tenant bytes: JSON needs valid UTF-8 */
        char *clean = utf8_sanitize(msg);
        json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s}", "ts", ts, "level", names[level],
                              "service", service_name, "pid", (int)getpid(), "msg", clean);
        free(clean);
        if (request_id[0]) {
            clean = utf8_sanitize(request_id);
            json_object_set_new(o, "request_id", json_string(clean));
            free(clean);
        }
        char *line = json_dumps(o, JSON_COMPACT);
        fprintf(stderr, "%s\n", line ? line : "{}");
        free(line);
        json_decref(o);
    } else if (request_id[0]) {
        fprintf(stderr, "%s %-5s %s[%d] [%s] %s\n", ts, names[level], service_name,
                (int)getpid(), request_id, msg);
    } else {
        fprintf(stderr, "%s %-5s %s[%d] %s\n", ts, names[level], service_name,
                (int)getpid(), msg);
    }
}
