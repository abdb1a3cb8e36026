/* virga-busctl - set up the broker side of a Virga cloud (docs/bus.md, docs/security.md).
 *
 *   virga-busctl credentials DIR NAME...     make DIR/NAME.cred (0600: SCRAM password and
 *                                            signing key) for each NAME that has none, and
 *                                            put its public key in DIR/principals.json
 *   virga-busctl admin-credential FILE       make the broker administrator's credential
 *                                            (a password only: it signs no messages)
 *   virga-busctl password FILE               print a credential's SCRAM password (for the
 *                                            broker's storage format step)
 *   virga-busctl plan [--agents H1,H2]       print the topics and ACLs as JSON
 *   virga-busctl provision [-c FILE] --admin FILE [--agents H1,H2]
 *                                            create the topics and ACLs (idempotent), as
 *                                            the administrator, on bus.brokers
 *
 * Agents default to cluster.agents. SCRAM credentials themselves live in the broker
 * (devcloud adds them when it formats the broker's storage; on a running cluster,
 * kafka-configs adds them: docs/bus.md). */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "bus_auth.h"
#include "config.h"
#include "jsonutil.h"
#include "log.h"
#include "plan.h"

static int usage(void)
{
    fprintf(stderr, "usage: virga-busctl credentials DIR NAME... | admin-credential FILE | password FILE |\n"
                    "       plan [--agents H,...] | provision [-c FILE] --admin FILE [--agents H,...]\n");
    return 2;
}

/* The host ids in a comma-separated list (modified in place), NULL-terminated. */
static int split_agents(char *list, const char **out, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t && n < max - 1; t = strtok_r(NULL, ",", &save))
        if (*t)
            out[n++] = t;
    out[n] = NULL;
    return n;
}

static json_t *read_secret_json(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0 || (st.st_mode & 077)) {
        fprintf(stderr, "virga-busctl: %s is missing or readable by others\n", path);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        fprintf(stderr, "virga-busctl: %s: %s\n", path, je.text);
    return j;
}

static int cmd_credentials(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    AUTOFREE char *pubs = xasprintf("%s/principals.json", argv[0]);
    for (int i = 1; i < argc; i++) {
        AUTOFREE char *path = xasprintf("%s/%s.cred", argv[0], argv[i]);
        struct stat st;
        if (stat(path, &st) == 0)
            continue;
        verr_t e;
        if (bus_credential_create(argv[i], path, pubs, &e) < 0) {
            fprintf(stderr, "virga-busctl: %s: %s\n", argv[i], e.message);
            return 1;
        }
    }
    return 0;
}

static int cmd_admin_credential(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 0;
    unsigned char rnd[24];
    char pw[64];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2base64(pw, sizeof pw, rnd, sizeof rnd, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    json_t *j = json_pack("{s:s, s:s}", "principal", "admin", "password", pw);
    mode_t old = umask(077);
    int rc = json_dump_file(j, path, JSON_INDENT(2));
    umask(old);
    json_decref(j);
    sodium_memzero(pw, sizeof pw);
    if (rc < 0 || chmod(path, 0600) < 0) {
        fprintf(stderr, "virga-busctl: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

static int cmd_password(const char *path)
{
    json_t *j = read_secret_json(path);
    if (!j)
        return 1;
    printf("%s\n", json_str(j, "password", ""));
    json_decref(j);
    return 0;
}

/* ---- provisioning through librdkafka's admin API ------------------------------------ */

static rd_kafka_t *admin_client(const config_t *cfg, const char *admin_file)
{
    json_t *cred = read_secret_json(admin_file);
    if (!cred)
        return NULL;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char err[256];
    const char *proto = config_str(cfg, "bus.security_protocol", "sasl_plaintext");
    const char *ca = config_str(cfg, "bus.ssl_ca_file", "");
    int ok = rd_kafka_conf_set(c, "bootstrap.servers", config_str(cfg, "bus.brokers", "127.0.0.1:9092"), err,
                               sizeof err) == RD_KAFKA_CONF_OK &&
             rd_kafka_conf_set(c, "security.protocol", proto, err, sizeof err) == RD_KAFKA_CONF_OK &&
             (strncmp(proto, "sasl", 4) ||
              (rd_kafka_conf_set(c, "sasl.mechanisms", config_str(cfg, "bus.sasl_mechanism", "SCRAM-SHA-512"), err,
                                 sizeof err) == RD_KAFKA_CONF_OK &&
               rd_kafka_conf_set(c, "sasl.username", json_str(cred, "principal", "admin"), err, sizeof err) ==
                   RD_KAFKA_CONF_OK &&
               rd_kafka_conf_set(c, "sasl.password", json_str(cred, "password", ""), err, sizeof err) ==
                   RD_KAFKA_CONF_OK)) &&
             (!*ca || rd_kafka_conf_set(c, "ssl.ca.location", ca, err, sizeof err) == RD_KAFKA_CONF_OK);
    json_decref(cred);
    if (!ok) {
        fprintf(stderr, "virga-busctl: %s\n", err);
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk)
        fprintf(stderr, "virga-busctl: %s\n", err);
    return rk;
}

/* The answer to the admin request just made on q, or NULL (said on stderr) when none came
 * or the request failed as a whole. */
static rd_kafka_event_t *admin_answer(rd_kafka_queue_t *q, const char *what)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    if (ev && !rd_kafka_event_error(ev))
        return ev;
    fprintf(stderr, "virga-busctl: %s: %s\n", what, ev ? rd_kafka_event_error_string(ev) : "no answer");
    if (ev)
        rd_kafka_event_destroy(ev);
    return NULL;
}

static int create_topics(rd_kafka_t *rk, rd_kafka_queue_t *q, json_t *topics, int replication, int min_isr)
{
    size_t n = json_array_size(topics), k = 0;
    rd_kafka_NewTopic_t **nt = calloc(n ? n : 1, sizeof *nt);
    json_t *seen = json_object(), *t;
    size_t i;
    char err[256];
    json_array_foreach(topics, i, t) {
        const char *name = json_str(t, "name", "");
        if (json_object_get(seen, name))
            continue;
        json_object_set_new(seen, name, json_true());
        nt[k] = rd_kafka_NewTopic_new(name, (int)json_int(t, "partitions", 1), replication, err, sizeof err);
        char ret[32];
        snprintf(ret, sizeof ret, "%lld", (long long)json_int(t, "retention_ms", 3600000));
        rd_kafka_NewTopic_set_config(nt[k], "retention.ms", ret);
        /* replies and requests are small and short-lived: small segments let retention
         * actually delete them */
        rd_kafka_NewTopic_set_config(nt[k], "segment.bytes", "16777216");
        /* with acks=all, a write is acknowledged once min.insync.replicas copies hold it */
        char isr[16];
        snprintf(isr, sizeof isr, "%d", min_isr);
        rd_kafka_NewTopic_set_config(nt[k], "min.insync.replicas", isr);
        k++;
    }
    json_decref(seen);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(o, 30000, err, sizeof err);
    rd_kafka_CreateTopics(rk, nt, k, o, q);
    rd_kafka_event_t *ev = admin_answer(q, "CreateTopics");
    int bad = !ev;
    if (ev) {
        size_t cnt;
        const rd_kafka_topic_result_t **r = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev),
                                                                                 &cnt);
        for (size_t j = 0; j < cnt; j++) {
            rd_kafka_resp_err_t te = rd_kafka_topic_result_error(r[j]);
            if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                fprintf(stderr, "virga-busctl: topic %s: %s\n", rd_kafka_topic_result_name(r[j]),
                        rd_kafka_topic_result_error_string(r[j]));
                bad = 1;
            }
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewTopic_destroy_array(nt, k);
    free(nt);
    return bad ? -1 : (int)k;
}

/* Every topic of the plan takes messages up to bus.max_message_bytes (with the slack the
 * clients have): set on new and existing topics alike, so a cloud provisioned before,
 * or a cluster whose default is Kafka's 1 MB, gets the bound the processes use. */
static int set_max_message(rd_kafka_t *rk, rd_kafka_queue_t *q, json_t *topics, size_t max_bytes)
{
    size_t n = json_array_size(topics), k = 0, i;
    rd_kafka_ConfigResource_t **res = calloc(n ? n : 1, sizeof *res);
    json_t *seen = json_object(), *t;
    char value[24], err[256];
    snprintf(value, sizeof value, "%zu", max_bytes + BUS_MSG_SLACK);
    json_array_foreach(topics, i, t) {
        const char *name = json_str(t, "name", "");
        if (json_object_get(seen, name))
            continue;
        json_object_set_new(seen, name, json_true());
        res[k] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name);
        rd_kafka_error_t *e = rd_kafka_ConfigResource_add_incremental_config(
            res[k++], "max.message.bytes", RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET, value);
        if (e)
            rd_kafka_error_destroy(e);   /* only for an invalid argument, which these are not */
    }
    json_decref(seen);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS);
    rd_kafka_AdminOptions_set_request_timeout(o, 30000, err, sizeof err);
    rd_kafka_IncrementalAlterConfigs(rk, res, k, o, q);
    rd_kafka_event_t *ev = admin_answer(q, "setting max.message.bytes");
    int bad = !ev;
    if (ev) {
        size_t cnt;
        const rd_kafka_ConfigResource_t **r = rd_kafka_IncrementalAlterConfigs_result_resources(
            rd_kafka_event_IncrementalAlterConfigs_result(ev), &cnt);
        for (size_t j = 0; j < cnt; j++)
            if (rd_kafka_ConfigResource_error(r[j])) {
                fprintf(stderr, "virga-busctl: topic %s: max.message.bytes: %s\n", rd_kafka_ConfigResource_name(r[j]),
                        rd_kafka_ConfigResource_error_string(r[j]));
                bad = 1;
            }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_ConfigResource_destroy_array(res, k);
    free(res);
    return bad ? -1 : 0;
}

static const struct {
    const char *name;
    rd_kafka_AclOperation_t op;
} ops[] = {
    {"read", RD_KAFKA_ACL_OPERATION_READ},
    {"write", RD_KAFKA_ACL_OPERATION_WRITE},
    {"describe", RD_KAFKA_ACL_OPERATION_DESCRIBE},
    {"idempotent_write", RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE},
};

static const struct {
    const char *name;
    rd_kafka_ResourceType_t type;
} resources[] = {
    {"topic", RD_KAFKA_RESOURCE_TOPIC},
    {"group", RD_KAFKA_RESOURCE_GROUP},
    {"cluster", RD_KAFKA_RESOURCE_BROKER},   /* librdkafka 2.0 names the cluster resource BROKER */
};

static int create_acls(rd_kafka_t *rk, rd_kafka_queue_t *q, json_t *acls)
{
    size_t n = json_array_size(acls), i;
    rd_kafka_AclBinding_t **ab = calloc(n ? n : 1, sizeof *ab);
    json_t *a;
    char err[256];
    json_array_foreach(acls, i, a) {
        rd_kafka_AclOperation_t op = RD_KAFKA_ACL_OPERATION_UNKNOWN;
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
            if (!strcmp(ops[k].name, json_str(a, "operation", "")))
                op = ops[k].op;
        rd_kafka_ResourceType_t type = RD_KAFKA_RESOURCE_UNKNOWN;
        for (size_t k = 0; k < sizeof resources / sizeof resources[0]; k++)
            if (!strcmp(resources[k].name, json_str(a, "resource", "")))
                type = resources[k].type;
        AUTOFREE char *principal = xasprintf("User:%s", json_str(a, "principal", ""));
        ab[i] = rd_kafka_AclBinding_new(
            type, json_str(a, "name", ""),
            !strcmp(json_str(a, "pattern", ""), "prefixed") ? RD_KAFKA_RESOURCE_PATTERN_PREFIXED
                                                           : RD_KAFKA_RESOURCE_PATTERN_LITERAL,
            principal, "*", op, RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, err, sizeof err);
        if (!ab[i]) {
            fprintf(stderr, "virga-busctl: ACL %zu: %s\n", i, err);
            rd_kafka_AclBinding_destroy_array(ab, i);
            free(ab);
            return -1;
        }
    }
    rd_kafka_CreateAcls(rk, ab, n, NULL, q);
    rd_kafka_event_t *ev = admin_answer(q, "CreateAcls");
    int bad = !ev;
    if (ev) {
        size_t cnt;
        const rd_kafka_acl_result_t **r = rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(ev), &cnt);
        for (size_t j = 0; j < cnt; j++) {
            const rd_kafka_error_t *ae = rd_kafka_acl_result_error(r[j]);
            if (ae) {
                fprintf(stderr, "virga-busctl: ACL %zu: %s\n", j, rd_kafka_error_string(ae));
                bad = 1;
            }
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AclBinding_destroy_array(ab, n);
    free(ab);
    return bad ? -1 : (int)n;
}

/* How many ACLs the broker applies now. The controller commits new ACLs before the broker
 * that answers DescribeAcls applies them; a client that connects in between is refused
 * (and an idempotent producer refused once stays broken), so wait until they are there. */
static int acls_applied(rd_kafka_t *rk, rd_kafka_queue_t *q)
{
    char err[256];
    rd_kafka_AclBindingFilter_t *f =
        rd_kafka_AclBindingFilter_new(RD_KAFKA_RESOURCE_ANY, NULL, RD_KAFKA_RESOURCE_PATTERN_ANY, NULL, NULL,
                                      RD_KAFKA_ACL_OPERATION_ANY, RD_KAFKA_ACL_PERMISSION_TYPE_ANY, err, sizeof err);
    rd_kafka_DescribeAcls(rk, f, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    size_t n = 0;
    if (ev && !rd_kafka_event_error(ev))
        rd_kafka_DescribeAcls_result_acls(rd_kafka_event_DescribeAcls_result(ev), &n);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AclBinding_destroy(f);
    return (int)n;
}

/* The plan's ACLs without repetitions (the same grant can follow from two rows). */
static int distinct_acls(json_t *acls)
{
    json_t *seen = json_object(), *a;
    size_t i;
    json_array_foreach(acls, i, a) {
        AUTOFREE char *k = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
        json_object_set_new(seen, k, json_true());
    }
    int n = (int)json_object_size(seen);
    json_decref(seen);
    return n;
}

static int cmd_provision(const config_t *cfg, const char *admin_file, const char *const *agents)
{
    rd_kafka_t *rk = admin_client(cfg, admin_file);
    if (!rk)
        return 1;
    json_t *plan = plan_build(agents);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int replication = (int)config_int(cfg, "bus.replication_factor", 1);
    int min_isr = (int)config_int(cfg, "bus.min_insync_replicas", replication >= 3 ? 2 : 1);
    int nt = create_topics(rk, q, json_object_get(plan, "topics"), replication, min_isr);
    if (nt >= 0 && set_max_message(rk, q, json_object_get(plan, "topics"), bus_max_message_config(cfg)) < 0)
        nt = -1;
    int na = nt < 0 ? -1 : create_acls(rk, q, json_object_get(plan, "acls"));
    int want = distinct_acls(json_object_get(plan, "acls")), have = 0;
    for (int i = 0; na >= 0 && i < 300 && (have = acls_applied(rk, q)) < want; i++)
        usleep(100 * 1000);
    if (na >= 0 && have < want) {
        fprintf(stderr, "virga-busctl: the broker applies %d of the %d ACLs\n", have, want);
        na = -1;
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    json_decref(plan);
    if (nt < 0 || na < 0)
        return 1;
    fprintf(stderr, "virga-busctl: %d topics and %d ACLs in place\n", nt, na);
    return 0;
}

int main(int argc, char **argv)
{
    config_t *cfg = config_new();
    verr_t e = {0};
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0, rc = 2;
    if (config_parse_args(cfg, argc, argv, &nrest, rest, &e) < 0) {
        fprintf(stderr, "virga-busctl: %s\n", e.message);
        return 2;
    }
    log_init("busctl", config_str(cfg, "log.level", "warn"), "text");
    if (sodium_init() < 0)
        return 1;
    const char *admin = NULL;
    AUTOFREE char *agent_list = xstrdup(config_str(cfg, "cluster.agents", ""));
    char *pos[64];
    int np = 0;
    for (int i = 0; i < nrest; i++) {
        if (!strcmp(rest[i], "--admin") && i + 1 < nrest)
            admin = rest[++i];
        else if (!strcmp(rest[i], "--agents") && i + 1 < nrest) {
            free(agent_list);
            agent_list = xstrdup(rest[++i]);
        } else if (np < 64)
            pos[np++] = rest[i];
    }
    const char *agents[64];
    split_agents(agent_list, agents, 64);
    if (np == 0)
        rc = usage();
    else if (!strcmp(pos[0], "credentials"))
        rc = cmd_credentials(np - 1, pos + 1);
    else if (!strcmp(pos[0], "admin-credential") && np == 2)
        rc = cmd_admin_credential(pos[1]);
    else if (!strcmp(pos[0], "password") && np == 2)
        rc = cmd_password(pos[1]);
    else if (!strcmp(pos[0], "plan") && np == 1) {
        json_t *plan = plan_build(agents);
        char *s = json_dumps(plan, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(plan);
        rc = 0;
    } else if (!strcmp(pos[0], "provision") && np == 1 && admin)
        rc = cmd_provision(cfg, admin, agents);
    else
        rc = usage();
    config_free(cfg);
    free(rest);
    return rc;
}
