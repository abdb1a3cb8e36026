/* http_idle.h - internal to http.c: requests whose body stops arriving.
 *
 * libmicrohttpd only closes a connection that stays silent (its connection timeout),
 * and it accepts no response while a request body is arriving, so a client that sends
 * headers and part of a body and then stalls would learn nothing. Instead, each
 * request whose body is arriving is listed here with its socket and the time of its
 * last body byte. A watchdog thread shuts the read side of a socket idle for longer
 * than the limit: libmicrohttpd then sees end-of-stream and ends the request
 * (notify-completed) on the connection's own thread, where http.c renders the refusal
 * and writes it on the socket itself (http_idle_answer) before libmicrohttpd closes
 * it. The watchdog touches nothing but the socket, and only while the request is
 * listed: http.c unlists it before libmicrohttpd can close the descriptor. It also
 * wakes libmicrohttpd the same way for a client that ended its side mid-body, which
 * edge-triggered epoll can miss when the end came with the last bytes. */
#ifndef VIRGA_HTTP_IDLE_H
#define VIRGA_HTTP_IDLE_H

#include <stdint.h>

#include "http.h"

typedef struct http_idle http_idle_t;

/* Why the watchdog shut a socket's read side. */
enum { HTTP_IDLE_TIMEOUT = 1, HTTP_IDLE_ENDED = 2 };

typedef struct http_idle_entry {
    struct http_idle_entry *prev, *next;
    int fd;
    int listed;
    int fired;                /* the watchdog shut the read side (HTTP_IDLE_*) */
    int64_t last_ms;          /* monotonic time the route took the last body bytes */
} http_idle_entry_t;

/* Watch bodies idle for idle_s seconds or more; NULL (no watchdog) when idle_s <= 0. */
http_idle_t *http_idle_start(int idle_s);
void http_idle_stop(http_idle_t *w);   /* NULL is a no-op */
/* List a request whose body is arriving on socket fd. */
void http_idle_add(http_idle_t *w, http_idle_entry_t *en, int fd);
/* Body bytes arrived and the route is taking them (busy = 1: however long that takes,
 * it is not the client's idle time), or it has taken them (busy = 0: the idle time
 * starts now). A socket with unread bytes is not idle either: the client is sending
 * and the server's thread is busy elsewhere. */
void http_idle_touch(http_idle_entry_t *en, int busy);
/* Unlist (the body ended, or the request did); idempotent. Returns en->fired: 0,
 * HTTP_IDLE_TIMEOUT (idle too long) or HTTP_IDLE_ENDED (the client ended its side). */
int http_idle_remove(http_idle_t *w, http_idle_entry_t *en);

/* Write resp as a whole HTTP/1.1 response with Connection: close on fd, without
 * blocking (the send buffer of a socket nothing is being sent on holds it). Returns 0
 * when all of it was written. */
int http_idle_answer(int fd, http_resp_t *resp, const char *request_id, const char *server_name);

#endif
