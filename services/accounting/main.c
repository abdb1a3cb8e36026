/* virga-accounting - wiring only: the accounting service's message table and life cycle
 * (docs/accounting.md). */
#include "accounting.h"

static const bus_route_t routes[] = {
    {"accounting.usage", accounting_usage, BUS_P_OPERATOR | BUS_P_GATEWAY},
    {"accounting.invoice", accounting_invoice, BUS_P_OPERATOR | BUS_P_GATEWAY},
    {"accounting.DescribeUsage", accounting_describe_usage, BUS_P_GATEWAY},
    {"accounting.GetInvoice", accounting_get_invoice, BUS_P_GATEWAY},
    {NULL, NULL, 0},
};

static int init(service_t *svc, verr_t *e)
{
    /* a price list that does not load stops the start: invoices would be wrong */
    const char *prices = config_str(svc->cfg, "accounting.price_list", NULL);
    if (prices && *prices && prices_load(svc->db, prices, e) < 0)
        return -1;
    return pump_start(svc, e);
}

static void reconcile(service_t *svc)
{
    prices_refresh(svc);
    pump_wake();
}

static void stop(service_t *svc)
{
    (void)svc;
    pump_stop();
}

int main(int argc, char **argv)
{
    static const service_def_t def = {
        .name = "accounting",
        .schema = "accounting",
        .routes = routes,
        .init = init,
        .reconcile = reconcile,
        .stop = stop,
    };
    return service_main(argc, argv, &def);
}
