/* bus_internal.h - what the parts of the bus share (bus.c: open, publish, close;
 * bus_rpc.c: calls and their replies; bus_serve.c: serving a topic, listening). Not for
 * use outside common/bus*.c. */
#ifndef VIRGA_BUS_INTERNAL_H
#define VIRGA_BUS_INTERNAL_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdint.h>

#include "bus.h"
#include "bus_auth.h"
#include "bus_mac.h"
#include "metrics.h"

/* bus.max_message_bytes: the largest message payload (an envelope's JSON) the bus carries,
 * by default and at most. Every client and topic is set a little above it (the headers
 * and the protocol's framing), so that the bus's own check, with its clear error, is the
 * one that refuses a message (docs/bus.md, "How large a message"). */
#define BUS_MAX_MSG_DEFAULT (4 * 1024 * 1024)
#define BUS_MAX_MSG_LIMIT (64 * 1024 * 1024)
#define BUS_QUEUE_MAX 1024
/* librdkafka bounds a healthy close by about the session timeout */
#define CLOSE_LIMIT(b) ((b)->session_timeout_ms + 2000)

/* One RPC in flight. Whoever unlinks it from the table (the reply loop on a reply or
 * at its deadline, bus_close, or bus_call_async when the publish failed) owns it and
 * is the only one to call cb: that is what makes delivery exactly-once. */
struct pending {
    char corr[40];
    int64_t deadline;          /* unix ms */
    bus_reply_fn cb;           /* one of the two: a tree of the reply's body, */
    bus_text_reply_fn text_cb; /* or its text */
    void *arg;
    char what[320];            /* "<service> to <type>" for the timeout message */
    char expect[BUS_PRINCIPAL_MAX];   /* who must sign the reply; "" = any principal */
    int timeout_ms;
    struct pending *next;
};

#define PENDING_BUCKETS 256

/* What the rebalance callback of the serving consumer touches, apart from the bus: a
 * consumer whose close is abandoned (consumer_destroy) may still call back after
 * bus_close has freed the bus, so this is then left allocated. */
struct group {
    volatile int assigned;
    char topic[256];
};

struct job {
    rd_kafka_message_t *m;
    uint64_t queued_us;        /* when the consumer queued it (metrics_now_us) */
    struct job *next;
    /* bus_ask: the answers the handler was given, and the question in flight (whose
     * callback queues the job again) */
    json_t *asked;
    char *asking;
    bus_t *bus;
    struct lane *lane;
};

/* Per message type served (bus_metrics.c): one per route row, plus one for types with
 * no row. Updated with atomics by the workers. */
struct bus_type_metrics {
    uint64_t handled, failed;
    metrics_hist_t queue_wait, handler;
};

/* A queue of received requests and the threads that serve it: the workers, or the
 * health lane (sys.health only, so a busy service still answers it). */
struct lane {
    pthread_mutex_t mu;
    pthread_cond_t cv, space;
    struct job *head, *tail;
    int len, max;
    int busy;                  /* jobs a worker is on now (atomic): bus.c's "alone" */
    int parked;                /* jobs waiting for a bus_ask answer: the workers stay for them */
    /* the work lane only (bus_serve.c, "who polls"): under mu */
    int idle;                  /* workers waiting for a job, the polling one included */
    int poller;                /* who polls the consumer now: POLL_NONE, POLL_WORKER, POLL_CONSUMER */
    pthread_cond_t consumer;   /* the consumer thread waits on it while a worker is idle */
    pthread_t *threads;
    int nthreads;
};

struct bus {
    char name[64];
    char brokers[512];
    char security[32];         /* security.protocol: plaintext, sasl_plaintext, sasl_ssl, ssl */
    char mechanism[32];        /* SCRAM-SHA-512 */
    char ca_file[256];
    int fetch_wait_ms, session_timeout_ms;
    size_t max_msg;            /* bus.max_message_bytes */
    int client_stats_ms;       /* bus.client_stats_ms: librdkafka's own figures in the log; 0 off */
    int idle_ms;               /* the longest a bus thread sleeps: they are woken when needed */
    volatile int running;
    bus_credential_t cred;     /* who this process is on the bus */
    bus_keys_t *keys;          /* everyone's public keys */
    bus_macs_t *macs;          /* keys shared with each peer, for messages only it reads */

    /* The producers (bus.c): prods[0] batches for bus.linger_ms; prods[1], when there are
     * two, has linger 0 and sends a request or a reply at once when it has nothing else
     * in flight, so a lone call pays no linger (docs/bus.md, "Latency against idle cost").
     * Each is replaced after a fatal error, under prod_lock. */
    struct bus_producer {
        rd_kafka_t *rk;
        volatile int fatal;
        int at_once;             /* the linger-0 one */
        pthread_t thr;
        struct bus *b;
    } prods[2];
    int nprods;
    uint64_t sent_at_once, sent_batched;   /* messages produced on each (metrics) */
    pthread_rwlock_t prod_lock;
    int idempotence;
    int use_mac;               /* bus.mac: MAC what has one reader, else sign */
    char message_timeout[24];   /* ms */
    char linger[24];            /* linger.ms of the batching producer */
    char heartbeat[24];         /* consumer group heartbeat interval, ms */
    char metadata_refresh[24];  /* ms */

    /* RPC client side: the table of calls in flight */
    pthread_mutex_t mu;
    struct pending *pending[PENDING_BUCKETS];   /* by hash of corr */
    int calls_in_flight;       /* in that table; written under mu, read atomically */
    int64_t sweep_at;          /* under mu: no call times out before this (unix ms) */
    char reply_topic[200];

    /* server side: `serving` is cleared by bus_stop_serving, before `running` */
    bus_serve_opts_t opts;
    rd_kafka_t *cons;
    rd_kafka_queue_t *cons_q;  /* its queue, yielded to wake the consumer thread */
    pthread_t cons_thr;
    int serving_started;
    volatile int serving;
    struct group *group;       /* the consumer's rebalance state */
    struct lane work, health;

    /* The reader (bus_read.c): one consumer outside any group and one thread for the
     * replies to this principal and the broadcast topic, started by the first call or
     * bus_listen. reader_mu orders the starts; the thread reads reader_wake under mu. */
    pthread_mutex_t reader_mu;
    rd_kafka_t *reader;
    rd_kafka_queue_t *reader_q;
    pthread_t reader_thr;
    int reader_started;        /* the thread runs */
    int replies_on;            /* the reply topic is assigned */
    volatile int reading;      /* cleared by bus_close */
    int64_t reader_wake;       /* under mu: when the thread looks at deadlines next */

    /* broadcast listener: listen_fn runs on the reader thread under listen_mu */
    pthread_mutex_t listen_mu;
    int listening;
    bus_handler_fn listen_fn;
    void *listen_app;

    bus_stats_t stats;
    struct bus_type_metrics *types;   /* bus_serve: one per route row + 1; NULL before */
    size_t ntypes;
};


/* bus.c */
int64_t bus_now_ms(void);
static inline void bus_stat_inc(uint64_t *v) { __atomic_add_fetch(v, 1, __ATOMIC_RELAXED); }
int bus_conf_set(rd_kafka_conf_t *c, const char *k, const char *v, verr_t *e);
/* Settings shared by every client of this bus; consumer adds the fetch settings. */
rd_kafka_conf_t *bus_base_conf(bus_t *b, int consumer, verr_t *e);

/* librdkafka's own figures of a client (round trips, queueing) logged every interval_ms;
 * nothing when interval_ms <= 0 (bus_client_stats.c). */
int bus_client_stats(rd_kafka_conf_t *c, int interval_ms, verr_t *e);
/* Produce one envelope, signed as this process; partition -1 lets the partitioner spread
 * requests. corr: for a request, its correlation id, so that a message the broker refuses
 * (an ACL) fails its call at once (bus_rpc_undeliverable) instead of at its deadline. */
int bus_produce(bus_t *b, const char *topic, int32_t partition, json_t *env, const char *corr, verr_t *e);
/* The same with the envelope already written as JSON text (env, len bytes; taken: freed
 * with env_free whatever happens, NULL for free), type its "type" member: a reply written
 * without a tree. */
int bus_produce_text(bus_t *b, const char *topic, int32_t partition, char *env, size_t len, const char *type,
                     void (*env_free)(void *), verr_t *e);
/* A bus_publish_acked batch: delivery reports count down pending (and failures). */
typedef struct bus_ack {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending, failed;
    int first_err;   /* rd_kafka_resp_err_t of the first failure: the reason the caller is told */
} bus_ack_t;
/* The sender of a received message, checked: 0 with *p filled, or -1 when the message
 * is unsigned, from an unknown principal or signed by another key (logged, counted). */
int bus_message_sender(bus_t *b, const rd_kafka_message_t *m, bus_principal_t *p);
/* The message type a sender put in the headers (for lanes), or NULL. Points into m. */
const char *bus_message_type(const rd_kafka_message_t *m, char *buf, size_t size);
/* A new envelope {v, id, type, ts, body, caller}; body is stolen. */
json_t *bus_envelope(const char *type, json_t *body, const json_t *caller);
/* Close and free a consumer within about limit_ms: 1 when it is gone, 0 when it was
 * left to finish on a thread of its own (and may still call back). */
int bus_consumer_destroy(bus_t *b, rd_kafka_t *rk, int limit_ms);

/* bus_metrics.c: a request of route row `row` (ntypes - 1: no row) waited queued_us in
 * its lane and its handler took handler_us; failed when it answered an error. */
void bus_metrics_observe(bus_t *b, size_t row, uint64_t wait_us, uint64_t handler_us, int failed);
/* bus_rpc.c: the request of call corr was refused by the broker or never delivered */
void bus_rpc_undeliverable(bus_t *b, const char *corr, rd_kafka_resp_err_t err);
/* bus_rpc.c, on the reader thread: a message on the reply topic */
void bus_rpc_on_reply(bus_t *b, const rd_kafka_message_t *m);
/* bus_rpc.c: time out the calls past their deadline (all of them when all), and set
 * b->sweep_at to the earliest deadline left */
void bus_rpc_sweep(bus_t *b, int all);

/* bus_read.c: a call with this deadline is in the table: wake the reader thread when it
 * would sleep past it */
void bus_read_deadline(bus_t *b, int64_t deadline);
/* bus_read.c: stop calling the listener (bus_stop_serving); the reader goes on for replies */
void bus_read_stop_listening(bus_t *b);
/* bus_read.c: end the reader thread, time out the calls still waiting, free the reader */
void bus_read_close(bus_t *b);
#endif
