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

/* Escape for a one-line record: messages quote tenant input (keys, names, decoded
 * parameters), and a newline in one would start a forged line. Control characters
 * (C0, DEL, C1) and the Unicode line and paragraph separators become \n \r \t or
 * \xNN / \uNNNN, bytes that are not UTF-8 become \xNN, and the backslash itself \\,
 * so every record is one line of valid UTF-8 and reads back unambiguously. out holds at
 * least 6 * strlen(in) + 1 bytes. */
void log_escape(const char *in, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(in), j = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)in[i];
        unsigned cp;
        size_t n = utf8_seq_len((const unsigned char *)in + i, len - i, &cp);
        if (n == 0 || cp < 0x20 || cp == 0x7f) {
            const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (named) {
                memcpy(out + j, named, 2);
                j += 2;
            } else {
                out[j++] = '\\';
                out[j++] = 'x';
                out[j++] = hex[c >> 4];
                out[j++] = hex[c & 15];
            }
            i++;
        } else if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029) {
            out[j++] = '\\';
            out[j++] = 'u';
            for (int sh = 12; sh >= 0; sh -= 4)
                out[j++] = hex[(cp >> sh) & 15];
            i += n;
        } else if (c == '\\') {
            out[j++] = '\\';
            out[j++] = '\\';
            i++;
        } else {
            memcpy(out + j, in + i, n);
            j += n;
            i += n;
        }
    }
    out[j] = 0;
}

void vlog(int level, const char *fmt, ...)
{
    if (level < min_level || level > LOG_ERROR)
        return;
    char raw[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    char msg[6 * sizeof raw + 1], rid[6 * sizeof request_id + 1];
    log_escape(raw, msg);
    log_escape(request_id, rid);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[64];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int)(tv.tv_usec / 1000) % 1000);

    if (json_lines) {
        /* the same escaped text as a text line: a reader of the JSON sees no control
         * character either, and the strings are valid UTF-8 as JSON needs */
        json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s}", "ts", ts, "level", names[level],
                              "service", service_name, "pid", (int)getpid(), "msg", msg);
        if (rid[0])
            json_object_set_new(o, "request_id", json_string(rid));
        char *line = json_dumps(o, JSON_COMPACT);
        fprintf(stderr, "%s\n", line ? line : "{}");
        free(line);
        json_decref(o);
    } else if (rid[0]) {
        fprintf(stderr, "%s %-5s %s[%d] [%s] %s\n", ts, names[level], service_name,
                (int)getpid(), rid, msg);
    } else {
        fprintf(stderr, "%s %-5s %s[%d] %s\n", ts, names[level], service_name,
                (int)getpid(), msg);
    }
}
