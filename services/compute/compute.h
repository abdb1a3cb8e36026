/* compute.h - the compute service's handlers and what they share. */
#ifndef VIRGA_COMPUTE_H
#define VIRGA_COMPUTE_H

#include <sodium.h>

#include "service.h"
#include "strbuf.h"
#include "task.h"

/* One instance type (config compute.instance_types: instance_types.c). */
typedef struct instance_type {
    char name[32];
    int vcpus;
    long long memory_mib;
    int max_enis;       /* network interfaces an instance may have (the primary included) */
} instance_type_t;

#define COMPUTE_MAX_TYPES 64

typedef struct launch_facts launch_facts_t;
typedef struct network_enis network_enis_t;

/* The service's state (main.c). */
typedef struct compute {
    unsigned char seal[crypto_secretbox_KEYBYTES];   /* compute.result_key_file */
    int can_seal;                                      /* else retried creates get Duplicate */
    int retry_window_s;                                /* compute.key_pair_retry_window_s */
    instance_type_t types[COMPUTE_MAX_TYPES];
    int ntypes;
    double cpu_overcommit, ram_overcommit;             /* compute.cpu_overcommit / ram_overcommit */
    int pack;                                          /* compute.placement: pack (1) or spread (0) */
    int host_down_after_s;                             /* compute.host_down_after_s */
    int host_lost_after_s;                             /* compute.host_lost_after_s (0: never) */
    int terminated_visible_s;                          /* compute.terminated_visible_s */
    size_t describe_page_bytes;                        /* compute.describe_page_kib, in bytes */
    int call_timeout_ms;                               /* compute.call_timeout_ms */
    int type_change_orphan_s;                          /* compute.type_change_orphan_s */
    int public_address_wait_s;                         /* compute.public_address_wait_s */
    char region[64];
    char zones[512];                                   /* gateway.availability_zones */
    task_pool_t *tasks;                                /* launches and cleanups (tasks.c) */
    launch_facts_t *facts;                             /* images and quotas (launch_facts.c) */
    struct launch_grants *grants;                      /* image grants reused (launch_grants.c) */
    network_enis_t *enis;                              /* the network's interfaces (network_enis.c) */
    struct run_answers *answers;                       /* RunInstances waiting for its ports (run_answer.c) */
} compute_t;

static inline compute_t *compute_of(bus_ctx_t *ctx) { return service_of(ctx)->state; }

/* run_answer.c: RunInstances answers once its launch tasks have made the interfaces */
typedef struct run_answers run_answers_t;
#define RUN_ANSWER_KEY "compute.run_instances.recorded"   /* bus_await's key: {reservation} */
run_answers_t *run_answers_start(int wait_ms, verr_t *e);
void run_answers_stop(run_answers_t *ra);
int run_answers_wait_ms(const run_answers_t *ra);
/* Wait (bus_await: -1 with ctx->waiting) for the launch tasks of reservation rid. */
int run_answers_await(bus_ctx_t *ctx, run_answers_t *ra, const char *rid, verr_t *e);
/* A launch task ended (the instance prepared, failed, or no longer pending). */
void run_answers_launched(run_answers_t *ra, const char *instance_id);

/* key_pairs.c */
int compute_create_key_pair(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_import_key_pair(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_describe_key_pairs(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_delete_key_pair(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* tags.c: CreateTags, DeleteTags, DescribeTags on key pairs and instances */
int compute_create_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_delete_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_describe_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* hosts.c: the host registry, from the agents' reports; down detection */
int compute_host_report(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
void hosts_mark_down(service_t *svc);
void hosts_release_lost(service_t *svc);
/* Bump a host's generation (in the caller's transaction); *gen = the new one. */
int hosts_bump(db_t *db, const char *host, long long *gen, verr_t *e);
/* Tell a host's agent that what it should run changed (agent.instances_changed): it
 * pulls (compute.host_instances). gen 0 also wakes its export loop (create_image.c). */
void hosts_notify(service_t *svc, const char *host, long long gen);
/* The same after a commit that bumped host to gen by instance_transition or the launch's
 * end (the instance changed carries changed_gen = gen): the doorbell carries its spec
 * (host_specs_changed, read with db, the caller's), or when the change took instance
 * gone off the host (a terminate: final) its "gone" without a read, so an agent that
 * has gen - 1 needs no pull. */
void hosts_notify_changes(service_t *svc, db_t *db, const char *host, long long gen, const char *gone);
/* host_specs.c: compute.host_instances, and a doorbell's changes: every instance of host
 * whose last desired change is gen, its spec or {"instance_id", "gone": true}; NULL when
 * the agent should pull instead (a grant to refresh, too many or too large, a failed read).
 * An instance about to boot carries its metadata document too (instance_metadata.c). */
int compute_host_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
json_t *host_specs_changed(const compute_t *c, db_t *db, const char *host, long long gen);
/* "ip-10-0-0-5", the instance's hostname from its primary address */
void host_hostname_of(const char *ip, char *out, size_t n);
/* The hosts (a list, NULL when none) whose running qemu guests these interface facts
 * plug an interface into or take one out of; hosts_tell bumps and tells each. */
int hosts_of_plugged_interfaces(db_t *db, const json_t *facts, json_t **hosts, verr_t *e);
void hosts_tell(service_t *svc, db_t *db, const json_t *hosts);

/* instance_types.c */
int instance_types_load(compute_t *c, const config_t *cfg, verr_t *e);
const instance_type_t *instance_type_find(const compute_t *c, const char *name);
int compute_describe_instance_types(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* describe_hosts.c: DescribeHosts, the host registry for the operator's administrator */
int compute_describe_hosts(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_describe_instance_type_offerings(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

/* launch_facts.c: what RunInstances needs from the image and identity services, kept in
 * compute's tables by a refresher thread. Each answers from the table: 0 with *out (a new
 * reference: fetch_url's answer without the URL / identity's quotas), -1 with the stored
 * refusal, or on a cold row -1 with ctx->waiting (the message parked until the refresher
 * has it: call these before writing anything), then 503 ServiceUnavailable (retried by
 * the SDKs) if the refresher could not learn it. */
launch_facts_t *launch_facts_start(service_t *svc, verr_t *e);
void launch_facts_stop(launch_facts_t *f);
int launch_facts_image(bus_ctx_t *ctx, const char *account, const char *image_id, json_t **out, verr_t *e);
int launch_facts_quotas(bus_ctx_t *ctx, const char *account, json_t **out, verr_t *e);
/* network.launch_check's answer for check {account, az?, subnet?, groups?, group_names?,
 * private_ip?}: {subnet_id, vpc_id, az, group_ids}, or its refusal (InvalidSubnetID.NotFound,
 * InvalidGroup.NotFound, ...). */
int launch_facts_network(bus_ctx_t *ctx, const char *account, json_t *check, json_t **out, verr_t *e);
/* Ask again about an image for every account (the image service refused a launch). */
void launch_facts_image_changed(launch_facts_t *f, const char *image_id);
/* compute.image_changed {image_id}, from the gateway once a tenant's change of an image
 * is made: the image's rows are refreshed before any RunInstances decides on them. */
int launch_facts_image_changed_msg(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* The virga.events listener: image.changed, identity.changed (quota). */
int launch_facts_on_event(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

/* network_enis.c: the network's facts of the interfaces attached to instances, in compute's
 * table network_enis, pushed by the network (compute.network_interfaces, from the network
 * principal only) and pulled by a thread of its own when the digests differ. */
network_enis_t *network_enis_start(service_t *svc, verr_t *e);
void network_enis_stop(network_enis_t *s);
int compute_network_interfaces(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* The upsert of facts given as a JSON array in the parameter param ("$1"): one row per
 * interface, the newest (DISTINCT ON: one INSERT may not touch a row twice), and a row
 * only moves to a larger version. network_enis_store's statement, and a CTE of the
 * launch task's last statement (tasks.c), so a launch stores its port's facts without a
 * statement of their own. */
#define NETWORK_ENIS_UPSERT(param)                                                                                    \
    "INSERT INTO network_enis AS t (eni_id, instance_id, account_id, device_index, attachment_id, subnet_id, "        \
    "vpc_id, mac, ip, description, source_dest_check, groups, attach_time, version, public_ip, public_ip_owner, "     \
    "delete_on_termination) "                                                                                         \
    "SELECT DISTINCT ON (x.eni) x.eni, x.instance, coalesce(x.account, ''), x.index, coalesce(x.attachment, ''), "    \
    "coalesce(x.subnet, ''), coalesce(x.vpc, ''), coalesce(x.mac, ''), coalesce(x.ip, ''), "                          \
    "coalesce(x.description, ''), coalesce(x.sdc, true), coalesce(x.groups, '[]'), to_timestamp(x.attach_time), "     \
    "x.version, coalesce(x.public_ip, ''), coalesce(x.public_owner, ''), coalesce(x.dot, false) FROM "                \
    "json_to_recordset(" param "::json) AS "                                                                          \
    "x(eni text, instance text, account text, index int, attachment text, subnet text, vpc text, mac text, "          \
    "ip text, description text, sdc boolean, groups jsonb, attach_time bigint, version bigint, public_ip text, "      \
    "public_owner text, dot boolean) WHERE x.eni IS NOT NULL AND x.version IS NOT NULL "                              \
    "ORDER BY x.eni, x.version DESC "                                                                                 \
    "ON CONFLICT (eni_id) DO UPDATE SET instance_id = EXCLUDED.instance_id, account_id = EXCLUDED.account_id, "       \
    "device_index = EXCLUDED.device_index, attachment_id = EXCLUDED.attachment_id, subnet_id = "                      \
    "EXCLUDED.subnet_id, vpc_id = EXCLUDED.vpc_id, mac = EXCLUDED.mac, ip = EXCLUDED.ip, description = "              \
    "EXCLUDED.description, source_dest_check = EXCLUDED.source_dest_check, groups = EXCLUDED.groups, "                \
    "attach_time = EXCLUDED.attach_time, version = EXCLUDED.version, public_ip = EXCLUDED.public_ip, "                \
    "public_ip_owner = EXCLUDED.public_ip_owner, delete_on_termination = EXCLUDED.delete_on_termination, "            \
    "stored_at = clock_timestamp() "                                                                                  \
    "WHERE t.version < EXCLUDED.version"
/* Store facts ([{eni, instance, index, ..., version}]); a row only moves to a larger version. */
int network_enis_store(db_t *db, const json_t *facts, verr_t *e);
/* An answer's facts of one interface ("facts": the network's, as its push would carry
 * them: a port_create/port_delete or a SourceDestCheck change, whose push the network
 * does not send) into the table; an answer without them changes nothing. */
int network_enis_store_answer(db_t *db, const json_t *answer, verr_t *e);
/* RunInstances naming an existing interface: InvalidNetworkInterface.InUse (-1) when this
 * table has it attached to an instance, else 0. */
int network_enis_refuse_in_use(bus_ctx_t *ctx, const char *eni, verr_t *e);
/* InvalidInstanceID when the instance has more than one interface attached. */
int network_enis_refuse_several(db_t *db, const char *instance, verr_t *e);

/* metadata_options_api.c */
int compute_modify_instance_metadata_options(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* run_instances.c */
int compute_run_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* Unsupported when the request asks for what RunInstances does not honour (run_params_supported.c). */
int run_params_supported(const json_t *body, verr_t *e);
/* instance_not_found.c: InvalidInstanceID.NotFound naming every id of `asked` (a JSON
 * array of strings, in its order, each once) for which known(id, arg) is 0, as EC2 does
 * ("The instance IDs 'i-a, i-b' do not exist"); 0 when every id is known. */
typedef int (*instance_known_fn)(const char *id, const void *arg);
int instance_ids_not_found(verr_t *e, const json_t *asked, instance_known_fn known, const void *arg);
/* describe_instances.c */
int compute_describe_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_describe_instance_status(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* The reservations (AWS shape) of account (NULL: any), of one reservation id or all. */
int instances_reservations(db_t *db, const compute_t *c, const char *account, const char *reservation_id, json_t **out,
                           verr_t *e);
/* public_address.c: the member ,"association":{...} of an interface (and of its primary
 * private address) with public address ip, owned by owner ("amazon": auto-assigned) */
void public_address_put(strbuf_t *b, const char *ip, const char *owner);
/* public_address_lifecycle.c: whether a change of state from -> to releases (stop) or gives (start) the instance's
 * auto-assigned public address: the transition then queues a public task. */
int public_address_follows(const char *from, const char *to);
/* Queue that task (for the change to state `to`) in the caller's transaction, unless the
 * instance has and gets no public address; until it has run, the instance's metadata
 * waits (public_changing_since, compute migration 014). */
int public_address_queue(db_t *db, const char *id, const char *to, verr_t *e);
/* The public:<instance>:<n> task: the network asked to release or give it, as the
 * instance's state is when the task runs. */
int compute_run_public(task_t *t, verr_t *e);
/* Reconcile: a public task again for instances whose change is still not done. */
void public_addresses_reconcile(service_t *svc);
/* lifecycle.c: Stop/Start/Reboot/TerminateInstances, GetConsoleOutput */
int compute_stop_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_start_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_reboot_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_terminate_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_get_console_output(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* Forget terminated instances a day after they stopped being visible (reconcile). */
void instances_purge(service_t *svc);
/* attributes.c */
int compute_describe_instance_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_modify_instance_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* Lock the caller's instance row (FOR UPDATE, in the caller's transaction): 0, or -1
 * with InvalidInstanceID.Malformed / .NotFound. account NULL = any (operator). */
int instance_lock(db_t *db, const char *account, const char *id, char state[32], verr_t *e);
/* The account a tenant request acts on (NULL for the operator's administrator). */
int instances_scope(bus_ctx_t *ctx, const char **account, verr_t *e);

/* agent_api.c: what host agents ask (the contract in docs/compute.md) */
/* The sending agent's host (its principal agent-<host>); NULL with AccessDenied otherwise. */
const char *sender_host(bus_ctx_t *ctx, verr_t *e);

/* create_image.c: CreateImage's check, and the exports the hosts' agents do for it */
int compute_create_image(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_image_export(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_host_exports(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int compute_export_done(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
void image_exports_purge(service_t *svc);
int compute_instances_observed(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* instance_metadata.c: compute.instance_metadata, and a doorbell's documents: each change
 * of changes (host_specs_changed's, of host at gen) of an instance about to boot on a
 * driver with a metadata server gets its document as "metadata" {vpc_id, ip, eni_id,
 * public_ip, document}, within budget bytes; returns the bytes added (about). */
int compute_instance_metadata(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
size_t instance_metadata_of_changes(const compute_t *c, db_t *db, const char *host, long long gen, json_t *changes,
                                    size_t budget);

/* tasks.c: launch (ports, then the agent is told) and cleanup (ports deleted) */
task_pool_t *compute_tasks_start(service_t *svc, verr_t *e);
int compute_task_add(db_t *db, const char *kind, const char *instance_id, verr_t *e);
/* The same with more's members in its payload (a launch's extra interfaces). */
int compute_task_add_with(db_t *db, const char *kind, const char *instance_id, const json_t *more, verr_t *e);
/* One more task of kind for the instance even if one ran before (id kind:instance:<random>). */
int compute_task_add_each(db_t *db, const char *kind, const char *instance_id, verr_t *e);
/* instance_groups.c: ModifyInstanceAttribute groupSet, and its task */
int instance_groups_modify(bus_ctx_t *ctx, const char *scope, const char *id, const json_t *groups, int dry_run,
                           json_t **reply, verr_t *e);
int compute_run_groups(task_t *t, verr_t *e);
/* source_dest_check.c: ModifyInstanceAttribute SourceDestCheck and DescribeInstanceAttribute
 * sourceDestCheck, on the instance's primary interface in the network service */
int instance_sdc_modify(bus_ctx_t *ctx, const char *scope, const char *id, const json_t *body, json_t **reply,
                        verr_t *e);
int instance_sdc_describe(bus_ctx_t *ctx, const char *scope, const char *id, json_t **reply, verr_t *e);
/* interface_limit.c: compute.instance_interface_limit (the network's AttachNetworkInterface
 * asks an instance's type limit and its number, instances.type_seq); whether the
 * instance's interfaces, counted by the network, fit type t (a DryRun: nothing recorded);
 * and interface_limit_hold: the network records type t's limit under number seq (the
 * type's number once written) after counting, before the type is written. Both with
 * bus_ask (-1 with ctx->waiting first), AttachmentLimitExceeded when they do not fit. */
int compute_instance_interface_limit(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int interface_limit_fits(bus_ctx_t *ctx, const char *account, const char *id, const instance_type_t *t, verr_t *e);
int interface_limit_hold(bus_ctx_t *ctx, const char *account, const char *id, long long seq, const instance_type_t *t,
                         verr_t *e);
/* launch_port_tags.c: RunInstances' TagSpecification of network-interface ("eni_tags" of
 * the launch task's payload) on the ports the launch made (port: the primary's, not when
 * it adopted an existing one; more: those beyond it, not the existing ones the payload
 * names), through network.CreateTags as the account. 0 with no tags. */
int launch_tag_ports(service_t *svc, int timeout_ms, const char *account, const char *adopted_primary,
                     const json_t *port, const json_t *more, const json_t *payload, verr_t *e);
/* Mark the instance's type change (its number seq, as read) before interface_limit_hold;
 * the type's write clears it. interface_limits_reconcile (the reconcile pass) takes the
 * next number for the current type of every mark older than compute.type_change_orphan_s:
 * a change that died between the network's record and its write. */
int interface_limit_mark(db_t *db, const char *id, long long seq, verr_t *e);
void interface_limits_reconcile(service_t *svc);

#endif
