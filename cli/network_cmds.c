/* network_cmds.c - virgadm's network commands: the operator's view of every account's
 * network (services/network/admin.c; only the operator's principal is served). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "jsonutil.h"

void network_cmds_usage(FILE *f)
{
    fprintf(f, "  network list [ACCOUNT_ID]   (every account's VPCs, with counts and hosts)\n");
    fprintf(f, "  network show ACCOUNT_ID     (one account's VPCs, subnets, groups, interfaces, addresses)\n");
}

int network_cmds_run(bus_t *bus, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[0], "network"))
        return -1;
    if (!strcmp(argv[1], "list") && argc <= 3)
        return cli_print_call(bus, "network", "network.admin_list",
                              argc == 3 ? json_pack("{s:s}", "account_id", argv[2]) : json_object(), NULL, 10000);
    if (!strcmp(argv[1], "show") && argc == 3)
        return cli_print_call(bus, "network", "network.admin_show", json_pack("{s:s}", "account_id", argv[2]), NULL,
                              10000);
    fprintf(stderr, "usage: virgadm network list [ACCOUNT_ID] | network show ACCOUNT_ID\n");
    return 2;
}
