/* virga-compute - wiring only: the compute service's message table. */
#include "compute.h"
#include "log.h"
#include "replay.h"

/* Who may send what (bus_auth.h): the tenant API from the gateway or the operator; host
 * reports from agents. */
#define TENANT_API (BUS_P_GATEWAY | BUS_P_OPERATOR)

static const bus_route_t routes[] = {
    {"compute.CreateKeyPair", compute_create_key_pair, TENANT_API},
    {"compute.ImportKeyPair", compute_import_key_pair, TENANT_API},
    {"compute.DescribeKeyPairs", compute_describe_key_pairs, TENANT_API},
    {"compute.DeleteKeyPair", compute_delete_key_pair, TENANT_API},
    {"compute.CreateTags", compute_create_tags, TENANT_API},
    {"compute.DeleteTags", compute_delete_tags, TENANT_API},
    {"compute.DescribeTags", compute_describe_tags, TENANT_API},
    {"compute.host_report", compute_host_report, BUS_P_AGENT},   /* as the agent's own host only */
    {NULL, NULL, 0},
};

static compute_t state;

static int init(service_t *svc, verr_t *e)
{
    svc->state = &state;
    state.retry_window_s = (int)config_int(svc->cfg, "compute.key_pair_retry_window_s", 600);
    const char *path = config_str(svc->cfg, "compute.result_key_file", "/etc/virga/compute.key");
    verr_t ke;
    state.can_seal = replay_load_key(path, state.seal, &ke) == 0;
    if (!state.can_seal)
        log_warn("%s: a CreateKeyPair retried after a lost answer will get InvalidKeyPair.Duplicate", ke.message);
    (void)e;
    return 0;
}

/* Forget the answers whose retry window has passed. */
static void reconcile(service_t *svc)
{
    verr_t e;
    if (replay_expire(svc->db, &e) < 0)
        log_warn("forgetting old answers: %s", e.message);
}

static void fini(service_t *svc)
{
    sodium_memzero(state.seal, sizeof state.seal);
    svc->state = NULL;
}

int main(int argc, char **argv)
{
    static const service_def_t def = {
        .name = "compute",
        .schema = "compute",
        .routes = routes,
        .init = init,
        .reconcile = reconcile,
        .fini = fini,
    };
    return service_main(argc, argv, &def);
}
