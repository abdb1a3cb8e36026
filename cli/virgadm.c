/* virgadm - the operator's command line. It talks to the services over the bus, like
 * any other Virga component, so it works wherever bus.brokers reaches.
 *
 *   virgadm [-c FILE] [--set k=v] status [--wait SECONDS] [--timeout MS] [--json]
 *   virgadm [-c FILE] call SERVICE TYPE [JSON | -] [--timeout MS]
 *   virgadm [-c FILE] bootstrap
 *   virgadm [-c FILE] account|user|key|quota ...   (cli/identity_cmds.c)
 *   virgadm [-c FILE] usage|invoice ...            (cli/usage_cmds.c)
 *   virgadm [-c FILE] hybrid seal|clouds ...         (cli/hybrid_cmds.c; no bus)
 *
 * The config file is -c FILE, else $VIRGA_CONFIG, else /etc/virga/virga.yaml; with none
 * (and no bus.brokers given) it says so at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "cli.h"
#include "config.h"
#include "jsonutil.h"
#include "log.h"
#include "service.h"

#define SYSTEM_CONFIG "/etc/virga/virga.yaml"

static const char *default_services = VIRGA_DEFAULT_SERVICES;

static void usage(void)
{
    fprintf(stderr,
            "usage: virgadm [-c FILE] [--set key=value]... COMMAND\n"
            "  FILE: the cloud's config (devcloud: DIR/virga.yaml); default $VIRGA_CONFIG, else " SYSTEM_CONFIG "\n"
            "  status [--wait SECONDS] [--timeout MS] [--json]\n"
            "                                     health of every service (and agent) over the bus;\n"
            "                                     no answer within MS (default 5000) is down\n"
            "  call SERVICE TYPE [JSON | - (stdin)] [--timeout MS] [--as ACCOUNT_ID]\n"
            "                                     send one RPC and print the reply body\n"
            "  bootstrap                          create the operator account and its first key\n"
            "Services come from cluster.services (default %s);\n"
            "agents from cluster.agents (host ids).\n", default_services);
    identity_cmds_usage(stderr);
    usage_cmds_usage(stderr);
    hybrid_cmds_usage(stderr);
    network_cmds_usage(stderr);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

struct probe {
    bus_t *bus;
    const char *target;
    json_t *reply;
    verr_t err;
    int rc;
    int timeout_ms;
    double rtt;
};

static void *probe_one(void *arg)
{
    struct probe *p = arg;
    char topic[160];
    if (strncmp(p->target, "agent:", 6) == 0)
        snprintf(topic, sizeof topic, "virga.host.%s", p->target + 6);
    else
        snprintf(topic, sizeof topic, "%s", p->target);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    p->rc = bus_call(p->bus, topic, "sys.health", NULL, NULL, p->timeout_ms, &p->reply, &p->err);
    p->rtt = ms_since(&t0);
    return NULL;
}

/* One pass over all targets, asked in parallel; returns how many are not healthy. */
static int status_once(bus_t *bus, char **targets, int n, int timeout_ms, int print, int as_json)
{
    struct probe pr[64] = {0};
    pthread_t th[64];
    int started[64] = {0};
    for (int i = 0; i < n && i < 64; i++) {
        pr[i].bus = bus;
        pr[i].target = targets[i];
        pr[i].timeout_ms = timeout_ms;
        /* no thread to spare: ask this one in turn */
        started[i] = pthread_create(&th[i], NULL, probe_one, &pr[i]) == 0;
        if (!started[i])
            probe_one(&pr[i]);
    }
    for (int i = 0; i < n && i < 64; i++)
        if (started[i])
            pthread_join(th[i], NULL);

    int bad = 0;
    json_t *all = json_array();
    if (print && !as_json)
        printf("%-24s %-10s %-40s %8s %5s %9s\n", "SERVICE", "STATUS", "INSTANCE", "UPTIME", "DB", "RTT");
    for (int i = 0; i < n; i++) {
        json_t *r = pr[i].reply;
        int rc = pr[i].rc;
        const char *st = rc == 0 ? json_str(r, "status", "?") : "down";
        if (strcmp(st, "healthy"))
            bad++;
        if (print && as_json) {
            json_t *row = rc == 0 ? json_incref(r)
                                  : json_pack("{s:s, s:s, s:s}", "status", "down", "error", pr[i].err.code,
                                              "message", pr[i].err.message);
            json_object_set_new(row, "target", json_string(targets[i]));
            json_object_set_new(row, "rtt_ms", json_real(pr[i].rtt));
            json_array_append_new(all, row);
        } else if (print) {
            char up[32] = "-", rtts[32];
            if (rc == 0)
                snprintf(up, sizeof up, "%llds", (long long)json_int(r, "uptime_s", 0));
            snprintf(rtts, sizeof rtts, "%.1fms", pr[i].rtt);
            printf("%-24s %-10s %-40s %8s %5s %9s\n", targets[i], st,
                   rc == 0 ? json_str(r, "instance", "") : pr[i].err.code, up,
                   rc == 0 ? json_str(r, "db", "") : "-", rtts);
        }
        json_decref(r);
    }
    if (print && as_json) {
        char *s = json_dumps(all, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
    }
    json_decref(all);
    return bad;
}

static int cmd_status(bus_t *bus, const config_t *cfg, int argc, char **argv)
{
    /* 5 s, not less: sys.health has its own lane, so a busy service answers at once, but a
     * fresh virgadm's first round trip (SCRAM login, producer id, reply reader) takes over
     * a second on a machine whose cores are saturated, and that is not a service down */
    int wait = 0, as_json = 0, timeout_ms = 5000;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--wait") && i + 1 < argc)
            wait = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            timeout_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json"))
            as_json = 1;
        else {
            usage();
            return 2;
        }
    }
    char *list = xasprintf("%s,%s", config_str(cfg, "cluster.services", default_services),
                           config_str(cfg, "cluster.agents", ""));
    char *targets[64];
    int n = 0;
    char *save = NULL;
    int in_agents = 0;
    size_t svc_len = strlen(config_str(cfg, "cluster.services", default_services));
    for (char *t = strtok_r(list, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save)) {
        in_agents = (size_t)(t - list) > svc_len;
        targets[n++] = in_agents ? xasprintf("agent:%s", t) : xstrdup(t);
    }
    free(list);
    time_t until = time(NULL) + wait;
    int bad;
    /* with --wait, poll quietly until everything is healthy, then print once */
    while ((bad = status_once(bus, targets, n, timeout_ms, 0, 0)) > 0 && time(NULL) < until)
        usleep(200 * 1000);
    bad = status_once(bus, targets, n, timeout_ms, 1, as_json);
    for (int i = 0; i < n; i++)
        free(targets[i]);
    if (bad)
        fprintf(stderr, "%d of %d not healthy\n", bad, n);
    return bad ? 1 : 0;
}

int cli_print_call(bus_t *bus, const char *service, const char *type, json_t *body, const json_t *caller, int timeout)
{
    json_t *r = NULL;
    verr_t e = {0};
    if (bus_call(bus, service, type, body, caller, timeout, &r, &e) < 0) {
        fprintf(stderr, "%s: %s\n", e.code, e.message);
        return 1;
    }
    char *s = json_dumps(r, JSON_INDENT(2));
    printf("%s\n", s);
    free(s);
    json_decref(r);
    return 0;
}

static int cmd_call(bus_t *bus, int argc, char **argv)
{
    int timeout = 5000;
    const char *pos[3] = {0};
    int np = 0;
    json_t *caller = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--as") && i + 1 < argc) {
            json_decref(caller);
            caller = json_pack("{s:s, s:b, s:s}", "account_id", argv[++i], "is_admin", 1, "user_id", "");
        }
        else if (!strcmp(argv[i], "--principal") && i + 1 < argc) {
            /* a service's internal call, e.g. compute's network.port_create */
            json_decref(caller);
            caller = json_pack("{s:s}", "principal", argv[++i]);
        }
        else if (np < 3)
            pos[np++] = argv[i];
        else {
            usage();
            json_decref(caller);
            return 2;
        }
    }
    if (np < 2) {
        json_decref(caller);
        usage();
        return 2;
    }
    json_t *body = NULL;
    if (pos[2]) {
        json_error_t je;
        /* "-": the body on stdin (a large one does not fit in one argument, 128 KiB) */
        body = strcmp(pos[2], "-") ? json_loads(pos[2], 0, &je) : json_loadf(stdin, 0, &je);
        if (!body) {
            fprintf(stderr, "InvalidParameterValue: body is not JSON: %s\n", je.text);
            json_decref(caller);
            return 2;
        }
    }
    int rc = cli_print_call(bus, pos[0], pos[1], body, caller, timeout);
    json_decref(caller);
    return rc;
}

/* Which broker to talk to comes from a config file (-c, VIRGA_CONFIG, else the system
 * one) or from bus.brokers given directly. With none of them every call would wait for
 * a broker at a default address that is not this cloud's: say so instead. */
static int have_config(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config"))
            return 1;
        if (!strcmp(argv[i], "--set") && i + 1 < argc && !strncmp(argv[i + 1], "bus.brokers=", 12))
            return 1;
    }
    const char *env = getenv("VIRGA_CONFIG"), *brokers = getenv("VIRGA_BUS_BROKERS");
    return (env && *env) || (brokers && *brokers);
}

int main(int argc, char **argv)
{
    config_t *cfg = config_new();
    verr_t e = {0};
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    if (config_parse_args(cfg, argc, argv, &nrest, rest, &e) < 0) {
        fprintf(stderr, "virgadm: %s\n", e.message);
        return 2;
    }
    int configured = have_config(argc, argv);
    if (!configured && access(SYSTEM_CONFIG, R_OK) == 0) {
        if (config_load_file(cfg, SYSTEM_CONFIG, &e) < 0) {
            fprintf(stderr, "virgadm: %s\n", e.message);
            return 2;
        }
        configured = 1;
    }
    if (nrest < 1 || !strcmp(rest[0], "-h") || !strcmp(rest[0], "--help")) {
        usage();
        return nrest < 1 ? 2 : 0;
    }
    log_init("virgadm", config_str(cfg, "log.level", "warn"), "text");
    if (!strcmp(rest[0], "hybrid")) {
        int hrc = hybrid_cmds_run(cfg, nrest, rest);
        config_free(cfg);
        free(rest);
        return hrc;
    }
    static const char *known[] = {"status", "call", "bootstrap", "account", "user", "key", "quota", "network",
                                  "session", "usage", "invoice", "usage-feed"};
    size_t k = 0;
    while (k < ARRAY_LEN(known) && strcmp(rest[0], known[k]))
        k++;
    if (k == ARRAY_LEN(known)) {
        fprintf(stderr, "virgadm: unknown command '%s'\n", rest[0]);
        usage();
        return 2;
    }
    if (!configured) {
        fprintf(stderr,
                "virgadm: no configuration, so no bus to reach the cloud on.\n"
                "  Point it at the cloud's config file: virgadm -c DIR/virga.yaml %s ...\n"
                "  or set VIRGA_CONFIG (devcloud's DIR/env does: . DIR/env), or put one in %s,\n"
                "  or name the broker: --set bus.brokers=HOST:PORT\n", rest[0], SYSTEM_CONFIG);
        return 2;
    }
    /* usage-feed reads as the billing system does, with the principal that may read
     * virga.usage and nothing else (docs/usage.md); it sends nothing */
    if (!strcmp(rest[0], "usage-feed")) {
        if (!config_str(cfg, "bus.principal", NULL))
            config_set(cfg, "bus.principal", "billing");
        config_set(cfg, "bus.idempotence", "false");
    }
    bus_t *bus = bus_open(cfg, "virgadm", &e);
    if (!bus) {
        fprintf(stderr, "virgadm: %s\n", e.message);
        return 1;
    }
    int rc;
    if (!strcmp(rest[0], "status"))
        rc = cmd_status(bus, cfg, nrest - 1, rest + 1);
    else if (!strcmp(rest[0], "call"))
        rc = cmd_call(bus, nrest - 1, rest + 1);
    else if (!strcmp(rest[0], "bootstrap"))
        rc = cli_print_call(bus, "identity", "identity.bootstrap", NULL, NULL, 10000);
    else if ((rc = network_cmds_run(bus, nrest, rest)) >= 0)
        ;
    else if ((rc = usage_cmds_run(bus, nrest, rest)) >= 0)
        ;
    else if ((rc = identity_cmds_run(bus, nrest, rest)) < 0) {
        usage();
        rc = 2;
    }
    bus_close(bus);
    config_free(cfg);
    free(rest);
    return rc;
}
