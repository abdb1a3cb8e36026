/* virga-compute - wiring only: the compute service's message table, its config and its
 * task pool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "instance_json.h"
#include "launch_grants.h"
#include "log.h"
#include "metadata_options.h"
#include "public_dns.h"
#include "replay.h"

/* Who may send what (bus_auth.h): the tenant API from the gateway or the operator; host
 * reports from agents; interface facts from the network. */
#define TENANT_API (BUS_P_GATEWAY | BUS_P_OPERATOR)

static const bus_route_t routes[] = {
    {"compute.CreateKeyPair", compute_create_key_pair, TENANT_API},
    {"compute.ImportKeyPair", compute_import_key_pair, TENANT_API},
    {"compute.DescribeKeyPairs", compute_describe_key_pairs, TENANT_API},
    {"compute.DeleteKeyPair", compute_delete_key_pair, TENANT_API},
    {"compute.RunInstances", compute_run_instances, TENANT_API},
    {"compute.DescribeInstances", compute_describe_instances, TENANT_API},
    {"compute.DescribeInstanceStatus", compute_describe_instance_status, TENANT_API},
    {"compute.StopInstances", compute_stop_instances, TENANT_API},
    {"compute.StartInstances", compute_start_instances, TENANT_API},
    {"compute.RebootInstances", compute_reboot_instances, TENANT_API},
    {"compute.TerminateInstances", compute_terminate_instances, TENANT_API},
    {"compute.GetConsoleOutput", compute_get_console_output, TENANT_API},
    {"compute.DescribeInstanceAttribute", compute_describe_instance_attribute, TENANT_API},
    {"compute.ModifyInstanceAttribute", compute_modify_instance_attribute, TENANT_API},
    {"compute.ModifyInstanceMetadataOptions", compute_modify_instance_metadata_options, TENANT_API},
    {"compute.DescribeInstanceTypes", compute_describe_instance_types, TENANT_API},
    {"compute.DescribeInstanceTypeOfferings", compute_describe_instance_type_offerings, TENANT_API},
    {"compute.DescribeHosts", compute_describe_hosts, TENANT_API},
    {"compute.CreateTags", compute_create_tags, TENANT_API},
    {"compute.DeleteTags", compute_delete_tags, TENANT_API},
    {"compute.DescribeTags", compute_describe_tags, TENANT_API},
    /* host agents, each only as its own host (the contract: docs/compute.md) */
    {"compute.host_report", compute_host_report, BUS_P_AGENT},
    {"compute.host_instances", compute_host_instances, BUS_P_AGENT},
    {"compute.instances_observed", compute_instances_observed, BUS_P_AGENT},
    {"compute.instance_metadata", compute_instance_metadata, BUS_P_AGENT},
    /* CreateImage: the gateway's check, the image service's task, the host's export */
    {"compute.CreateImage", compute_create_image, TENANT_API},
    {"compute.image_export", compute_image_export, BUS_P_IMAGE},
    {"compute.host_exports", compute_host_exports, BUS_P_AGENT},
    {"compute.export_done", compute_export_done, BUS_P_AGENT},
    /* the network, after each change of an interface attached to an instance (network_enis.c) */
    {"compute.network_interfaces", compute_network_interfaces, BUS_P_NETWORK},
    /* the network's AttachNetworkInterface, for the instance type's limit (interface_limit.c) */
    {"compute.instance_interface_limit", compute_instance_interface_limit, BUS_P_NETWORK},
    /* the gateway, after a tenant's DeregisterImage / ModifyImageAttribute */
    {"compute.image_changed", launch_facts_image_changed_msg, BUS_P_GATEWAY},
    {NULL, NULL, 0},
};

static compute_t state;

static int init(service_t *svc, verr_t *e)
{
    svc->state = &state;
    md_options_defaults_load(svc->cfg);
    state.public_address_wait_s = (int)config_int(svc->cfg, "compute.public_address_wait_s", 10);
    state.retry_window_s = (int)config_int(svc->cfg, "compute.key_pair_retry_window_s", 600);
    const char *path = config_str(svc->cfg, "compute.result_key_file", "/etc/virga/compute.key");
    verr_t ke;
    state.can_seal = replay_load_key(path, state.seal, &ke) == 0;
    if (!state.can_seal)
        log_warn("%s: a CreateKeyPair retried after a lost answer will get InvalidKeyPair.Duplicate", ke.message);
    if (instance_types_load(&state, svc->cfg, e) < 0)
        return -1;
    state.cpu_overcommit = atof(config_str(svc->cfg, "compute.cpu_overcommit", "4.0"));
    state.ram_overcommit = atof(config_str(svc->cfg, "compute.ram_overcommit", "1.0"));
    if (state.cpu_overcommit <= 0 || state.ram_overcommit <= 0)
        return verr_set(e, 400, "InvalidParameterValue", "compute.cpu_overcommit and ram_overcommit must be > 0");
    const char *placement = config_str(svc->cfg, "compute.placement", "spread");
    if (strcmp(placement, "spread") && strcmp(placement, "pack"))
        return verr_set(e, 400, "InvalidParameterValue", "compute.placement must be spread or pack, not %s", placement);
    state.pack = !strcmp(placement, "pack");
    state.host_down_after_s = (int)config_int(svc->cfg, "compute.host_down_after_s", 30);
    state.host_lost_after_s = (int)config_int(svc->cfg, "compute.host_lost_after_s", 600);
    state.terminated_visible_s = (int)config_int(svc->cfg, "compute.terminated_visible_s", 3600);
    /* A DescribeInstances page with its envelope (and its keys' escapes) stays under the
     * bus's message bound: 5/8 of it by default (2.5 MiB of the default 4 MiB, a page of
     * 1,000 instances is about 1.4 MB), at most 7/8 */
    long bus_kib = (long)(bus_max_message_bytes(svc->bus) / 1024);
    long page_kib = config_int(svc->cfg, "compute.describe_page_kib", bus_kib * 5 / 8);
    if (page_kib < 16 || page_kib > bus_kib * 7 / 8)
        return verr_set(e, 400, "InvalidParameterValue",
                        "compute.describe_page_kib must be 16..%ld (7/8 of bus.max_message_bytes), not %ld",
                        bus_kib * 7 / 8, page_kib);
    state.describe_page_bytes = (size_t)page_kib * 1024;
    state.call_timeout_ms = (int)config_int(svc->cfg, "compute.call_timeout_ms", 10000);
    /* past its call's timeout and a margin, a type change is no longer between its two steps */
    state.type_change_orphan_s = (int)config_int(svc->cfg, "compute.type_change_orphan_s",
                                                 state.call_timeout_ms / 1000 + 5);
    const char *region = config_str(svc->cfg, "region", "us-east-1");
    snprintf(state.region, sizeof state.region, "%s", region);
    /* the public DNS names of public addresses (DescribeInstances, the metadata service) */
    public_dns_configure(state.region, config_str(svc->cfg, "public_dns_domain", "compute.virga.internal"));
    char def_zone[80];
    snprintf(def_zone, sizeof def_zone, "%sa", state.region);
    snprintf(state.zones, sizeof state.zones, "%s", config_str(svc->cfg, "gateway.availability_zones", def_zone));
    state.grants = launch_grants_new((int)config_int(svc->cfg, "compute.grant_reuse_s", 2));
    if (!(state.facts = launch_facts_start(svc, e)))
        return -1;
    if (!(state.answers = run_answers_start((int)config_int(svc->cfg, "compute.run_answer_wait_ms", 5000), e)))
        return -1;
    if (!(state.tasks = compute_tasks_start(svc, e)))
        return -1;
    if (!(state.enis = network_enis_start(svc, e)))
        return -1;
    return bus_listen(svc->bus, "virga.events", launch_facts_on_event, svc, e);
}

/* Forget the answers whose retry window has passed; mark silent hosts down and end what
 * was asked of lost ones; free the
 * tasks of dead processes and end those that used up their attempts; retry the public
 * addresses whose task gave up; end the type changes that died halfway. */
static void reconcile(service_t *svc)
{
    verr_t e;
    if (replay_expire(svc->db, &e) < 0)
        log_warn("forgetting old answers: %s", e.message);
    hosts_mark_down(svc);
    hosts_release_lost(svc);
    instances_purge(svc);
    image_exports_purge(svc);
    task_pool_reconcile(state.tasks, svc->db);
    public_addresses_reconcile(svc);
    interface_limits_reconcile(svc);
}

static void fini(service_t *svc)
{
    task_pool_stop(state.tasks);
    state.tasks = NULL;
    run_answers_stop(state.answers);
    state.answers = NULL;
    network_enis_stop(state.enis);
    state.enis = NULL;
    launch_facts_stop(state.facts);
    state.facts = NULL;
    launch_grants_free(state.grants);
    state.grants = NULL;
    sodium_memzero(state.seal, sizeof state.seal);
    svc->state = NULL;
}

int main(int argc, char **argv)
{
    static const service_def_t def = {
        .name = "compute",
        .makes_calls = 1,
        .schema = "compute",
        .routes = routes,
        .init = init,
        .reconcile = reconcile,
        .fini = fini,
    };
    return service_main(argc, argv, &def);
}
