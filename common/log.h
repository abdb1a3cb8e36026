/* log.h - one logging API for every Virga process.
 *
 * Lines go to stderr (devcloud redirects them into DIR/log/<service>.log), as text
 * or as JSON lines (`log.format: json`). Each thread carries a request id, set by
 * the HTTP layer or the bus dispatcher, so one request can be followed across
 * services by grepping its id. */
#ifndef VIRGA_LOG_H
#define VIRGA_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* service: name printed on each line; level/format as in config ("info", "text"/"json"). */
void log_init(const char *service, const char *level, const char *format);
int  log_level_parse(const char *s);          /* -1 if unknown */
void log_set_request_id(const char *rid);     /* thread-local; NULL clears */
const char *log_request_id(void);             /* "" when none */

/* Every line is escaped with log_escape (both formats): one record, one line. */
void vlog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* in as one line of valid UTF-8: control characters as \n \r \t \xNN or \uNNNN (C1,
 * U+2028, U+2029), bytes that are not UTF-8 as \xNN, '\' as "\\". out has room for
 * 6 * strlen(in) + 1 bytes. */
void log_escape(const char *in, char *out);
#define log_debug(...) vlog(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  vlog(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  vlog(LOG_WARN, __VA_ARGS__)
#define log_error(...) vlog(LOG_ERROR, __VA_ARGS__)

#endif
