/* virga-busd - hosts librdkafka's mock Kafka cluster as the one-machine broker.
 *
 * Services only ever see `bus.brokers: host:port`, so the same binaries run against
 * an Apache Kafka cluster. The mock binds 127.0.0.1:0; we interpose bind() so its
 * brokers listen on fixed, configured ports (a restart comes back on the same address
 * and clients reconnect by themselves). It pre-creates Virga's topics because the
 * mock would auto-create them with 4 partitions and does not support CreateTopics.
 *
 * The mock keeps everything in memory: a restart loses topics, messages and committed
 * offsets. Virga is built for that (the database is the truth; see docs/bus.md). */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static volatile sig_atomic_t stop;
static int next_port;   /* > 0 while the cluster is being created */

/* Give the mock brokers' listening sockets fixed ports. */
int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    static int (*real_bind)(int, const struct sockaddr *, socklen_t);
    if (!real_bind)
        real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    if (next_port > 0 && addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in in;
        memcpy(&in, addr, sizeof in);
        if (in.sin_port == 0) {
            in.sin_port = htons((uint16_t)next_port++);
            int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            return real_bind(fd, (struct sockaddr *)&in, sizeof in);
        }
    }
    return real_bind(fd, addr, len);
}

static void on_signal(int sig) { (void)sig; stop = 1; }

static const char *default_topics[] = {
    "virga.rpc.identity", "virga.rpc.compute", "virga.rpc.image", "virga.rpc.network",
    "virga.rpc.objectstore", "virga.rpc.gateway", "virga.rpc.accounting",
    "virga.events", "virga.usage", NULL,
};

static void usage(void)
{
    fprintf(stderr, "usage: virga-busd [-c FILE] [--set k=v]...\n"
                    "  busd.port        first broker port (default: port of bus.brokers, else 9092)\n"
                    "  busd.brokers     number of brokers (default 1)\n"
                    "  busd.partitions  partitions per pre-created topic (default 4)\n"
                    "  busd.topics      extra topics to pre-create (comma separated)\n");
}

int main(int argc, char **argv)
{
    config_t *cfg = config_new();
    verr_t e = {0};
    char *rest[64];
    int nrest = 0;
    if (argc > 64 || config_parse_args(cfg, argc, argv, &nrest, rest, &e) < 0) {
        fprintf(stderr, "virga-busd: %s\n", e.message);
        return 2;
    }
    if (nrest > 0) {
        usage();
        return 2;
    }
    log_init("busd", config_str(cfg, "log.level", "info"), config_str(cfg, "log.format", "text"));

    int port = (int)config_int(cfg, "busd.port", 0);
    if (port <= 0) {
        const char *b = config_str(cfg, "bus.brokers", "127.0.0.1:9092");
        const char *colon = strrchr(b, ':');
        port = colon ? atoi(colon + 1) : 9092;
    }
    int nbrokers = (int)config_int(cfg, "busd.brokers", 1);
    int parts = (int)config_int(cfg, "busd.partitions", 4);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];
    rd_kafka_conf_set(conf, "log_level", "4", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        log_error("rd_kafka_new: %s", err);
        return 1;
    }
    next_port = port;
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    int bound = next_port - port;
    next_port = 0;
    if (!mc || bound != nbrokers) {
        log_error("cannot start the mock cluster on 127.0.0.1:%d (%d of %d brokers bound)", port, bound, nbrokers);
        return 1;
    }
    for (int i = 0; default_topics[i]; i++)
        rd_kafka_mock_topic_create(mc, default_topics[i], parts, 1);
    const char *extra = config_str(cfg, "busd.topics", "");
    char *list = strdup(extra), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (*t)
            rd_kafka_mock_topic_create(mc, t, parts, 1);
    free(list);

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    log_info("ready: bootstrap %s (%d broker(s), %d partitions per topic)",
             rd_kafka_mock_cluster_bootstraps(mc), nbrokers, parts);
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    while (!stop)
        rd_kafka_poll(rk, 200);
    log_info("stopping");
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    config_free(cfg);
    return 0;
}
