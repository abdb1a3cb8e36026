/* bus_send - publish one message to a topic as the configured principal and wait for the
 * broker's acknowledgement: what a principal's ACLs let it write
 * (tests/integration/test_bus_security.py).
 *
 *   bus_send -c virga.yaml [--set bus.principal=P] TOPIC [KEY]
 *
 * Exit 0 when the broker acknowledged the message, 1 when it did not (the reason on
 * stderr), 2 on bad usage. Bounded by bus.message_timeout_ms (default 10 s here). */
#include <stdio.h>
#include <string.h>

#include "bus.h"
#include "config.h"
#include "jsonutil.h"
#include "log.h"

int main(int argc, char **argv)
{
    config_t *cfg = config_new();
    verr_t e = {0};
    char *rest[32];
    int nrest = 0;
    if (argc > 32 || config_parse_args(cfg, argc, argv, &nrest, rest, &e) < 0 || nrest < 1 || nrest > 2) {
        fprintf(stderr, "usage: bus_send -c virga.yaml [--set bus.principal=P] TOPIC [KEY]\n");
        return 2;
    }
    log_init("bus_send", config_str(cfg, "log.level", "error"), "text");
    if (!config_str(cfg, "bus.message_timeout_ms", NULL))
        config_set(cfg, "bus.message_timeout_ms", "10000");
    config_set(cfg, "bus.idempotence", "false");   /* a principal without idempotent_write may still try */
    const char *who = config_str(cfg, "bus.principal", "virgadm");
    bus_t *b = bus_open(cfg, who, &e);
    if (!b) {
        fprintf(stderr, "bus_send: %s\n", e.message);
        return 1;
    }
    const char *key = nrest > 1 ? rest[1] : "bus_send";
    json_t *body = json_pack("{s:s}", "probe", "bus_send");
    size_t acked = 0;
    int rc = bus_publish_acked(b, rest[0], "test.probe", 1, &key, &body, &acked, &e);
    json_decref(body);
    if (rc < 0)
        fprintf(stderr, "bus_send: %s: %s\n", e.code, e.message);
    bus_close(b);
    config_free(cfg);
    return rc < 0 || acked != 1;
}
