/* launch_batch.h - a reservation's primary ports asked in one network.port_create_many
 * (launch_batch.c), for the launch tasks (tasks.c). */
#ifndef VIRGA_COMPUTE_LAUNCH_BATCH_H
#define VIRGA_COMPUTE_LAUNCH_BATCH_H

#include "db.h"
#include "task.h"

/* What a launch task reads of its instance (tasks.c's load), and of its siblings here. */
#define LAUNCH_INST_COLUMNS                                                                                           \
    "state, account_id, COALESCE(host_id, ''), driver, zone, subnet_id, private_ip, group_ids::text, prepared, "      \
    "image::text, associate_public_ip, primary_eni"

/* A port recorded again at its (instance, device index) replaces what was there. */
#define LAUNCH_PORT_UPSERT                                                                                            \
    "ON CONFLICT (instance_id, device_index) DO UPDATE SET eni_id = EXCLUDED.eni_id, subnet_id = EXCLUDED.subnet_id, " \
    "vpc_id = EXCLUDED.vpc_id, mac = EXCLUDED.mac, ip = EXCLUDED.ip, prefix_len = EXCLUDED.prefix_len, gateway = "    \
    "EXCLUDED.gateway, groups = EXCLUDED.groups, deleted = false"

/* The port_create body (without account) of the instance of row (LAUNCH_INST_COLUMNS
 * from column 1, its id in column 0), as the launch task would ask it itself. */
typedef json_t *(*launch_port_ask_t)(const PGresult *r, int row);

enum {
    LAUNCH_BATCH_ASK = 0,     /* no port: the task asks its own (one instance, no sibling to batch, or
                               * its port could not be made in the batch: its own error follows) */
    LAUNCH_BATCH_PORT = 1,    /* *port is the instance's primary: recorded by a sibling's batch, or
                               * made now by this task's batch for it and its siblings */
    LAUNCH_BATCH_LATER = 2,   /* a sibling's batch (or a terminate) holds the instance's row: look
                               * again after LAUNCH_BATCH_AGAIN_MS, it may bring the port */
};

/* A LAUNCH_BATCH_LATER task's look again. Short: a batch in flight holds the task's row,
 * so its release waits for the batch's commit and the look comes after it (a terminate
 * holding the instance's row holds it a few statements). Was 100 ms, polled. */
#define LAUNCH_BATCH_AGAIN_MS 5

/* For a pending instance without an adopted primary, whose reservation has other
 * instances (a lone one asks its own port): LAUNCH_BATCH_*, or -1 (e: the
 * database, or the network unreachable: the task retries). */
int launch_batch_port(task_t *t, const char *id, int timeout_ms, launch_port_ask_t ask, json_t **port, verr_t *e);

#endif
