/* http_idle.c - the stalled-body watchdog and the answers http.c writes on a socket
 * itself (see http_idle.h for why). */
#include "http_idle.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "strbuf.h"
#include "ticker.h"

struct http_idle {
    pthread_mutex_t mu;       /* guards the list, each entry's links and fired */
    ticker_t *ticker;         /* the scan, every idle_ms / 4 (50 ms to 1 s) */
    http_idle_entry_t *head;
    int64_t idle_ms;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void scan(void *arg)
{
    http_idle_t *w = arg;
    int64_t now = now_ms();
    pthread_mutex_lock(&w->mu);
    for (http_idle_entry_t *en = w->head; en; en = en->next) {
        if (en->fired)
            continue;
        /* libmicrohttpd can miss a client's end-of-stream that came with its last
         * bytes (edge-triggered epoll): look, and wake it the same way */
        char c;
        ssize_t n = recv(en->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0) {
            en->fired = HTTP_IDLE_ENDED;
            shutdown(en->fd, SHUT_RD);
            continue;
        }
        /* bytes waiting in the socket: the client is sending and this server is
         * not reading (its thread is busy with another connection), not idle */
        if (n > 0 || now - __atomic_load_n(&en->last_ms, __ATOMIC_RELAXED) < w->idle_ms)
            continue;
        /* the connection's thread sees end-of-stream and ends the request; the
         * write side stays open for the answer */
        en->fired = HTTP_IDLE_TIMEOUT;
        shutdown(en->fd, SHUT_RD);
    }
    pthread_mutex_unlock(&w->mu);
}

http_idle_t *http_idle_start(int idle_s)
{
    if (idle_s <= 0)
        return NULL;
    http_idle_t *w = xcalloc(1, sizeof *w);
    w->idle_ms = (int64_t)idle_s * 1000;
    pthread_mutex_init(&w->mu, NULL);
    /* a stalled body is refused between idle_ms and idle_ms + tick after its last byte */
    int64_t tick = w->idle_ms / 4 < 50 ? 50 : w->idle_ms / 4 > 1000 ? 1000 : w->idle_ms / 4;
    verr_t e;
    if (!(w->ticker = ticker_start("http-idle", tick, 0, scan, w, &e))) {
        log_error("cannot start the request body watchdog: stalled uploads wait for the connection timeout");
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    return w;
}

void http_idle_stop(http_idle_t *w)
{
    if (!w)
        return;
    ticker_stop(w->ticker);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void http_idle_add(http_idle_t *w, http_idle_entry_t *en, int fd)
{
    en->fd = fd;
    en->fired = 0;
    en->last_ms = now_ms();
    if (!w || fd < 0)
        return;
    pthread_mutex_lock(&w->mu);
    en->prev = NULL;
    en->next = w->head;
    if (w->head)
        w->head->prev = en;
    w->head = en;
    en->listed = 1;
    pthread_mutex_unlock(&w->mu);
}

void http_idle_touch(http_idle_entry_t *en, int busy)
{
    __atomic_store_n(&en->last_ms, busy ? INT64_MAX : now_ms(), __ATOMIC_RELAXED);
}

int http_idle_remove(http_idle_t *w, http_idle_entry_t *en)
{
    if (!w || !en->listed)
        return 0;
    pthread_mutex_lock(&w->mu);
    if (en->prev)
        en->prev->next = en->next;
    else
        w->head = en->next;
    if (en->next)
        en->next->prev = en->prev;
    en->prev = en->next = NULL;
    en->listed = 0;
    int fired = en->fired;
    pthread_mutex_unlock(&w->mu);
    return fired;
}

int http_idle_answer(int fd, http_resp_t *resp, const char *request_id, const char *server_name)
{
    char date[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    const char *reason = MHD_get_reason_phrase_for((unsigned)resp->status);
    char head[512];
    snprintf(head, sizeof head,
             "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\nContent-Length: %zu\r\n"
             "x-amz-request-id: %s\r\nServer: %s\r\n",
             resp->status, reason && *reason ? reason : "Error", date, resp->body ? resp->len : 0, request_id,
             server_name ? server_name : "Virga");
    strbuf_t b = {0};
    strbuf_puts(&b, head);
    if (resp->content_type[0]) {
        strbuf_puts(&b, "Content-Type: ");
        strbuf_puts(&b, resp->content_type);
        strbuf_puts(&b, "\r\n");
    }
    for (int i = 0; i < resp->nheaders; i++) {
        if (strpbrk(resp->headers[i], "\r\n"))
            continue;   /* as libmicrohttpd does: no header splits the response */
        strbuf_puts(&b, resp->headers[i]);
        strbuf_puts(&b, "\r\n");
    }
    strbuf_puts(&b, "\r\n");
    if (resp->body)
        strbuf_put(&b, resp->body, resp->len);
    size_t off = 0;
    while (off < b.len) {
        ssize_t n = send(fd, b.s + off, b.len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    int ok = off == b.len;
    free(b.s);
    http_resp_reset(resp);
    return ok ? 0 : -1;
}
