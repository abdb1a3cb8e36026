/* dp_nl.c - see dp_nl.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dp_nl.h"
#include "err.h"

struct mnl_socket *dp_nl_open(strbuf_t *err)
{
    struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (nl && mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == 0) return nl;
    strbuf_printf(err, "Cannot open netlink socket: %s\n", strerror(errno));
    if (nl) mnl_socket_close(nl);
    return NULL;
}

int dp_nl_dump(struct mnl_socket *nl, const struct nlmsghdr *h, mnl_cb_t cb, void *data)
{
    AUTOFREE char *buf = xmalloc(DP_NL_DUMP_BUF);
    unsigned portid = mnl_socket_get_portid(nl);
    int rc = mnl_socket_sendto(nl, h, h->nlmsg_len) < 0 ? -1 : 1;
    while (rc > 0) {
        ssize_t n = mnl_socket_recvfrom(nl, buf, DP_NL_DUMP_BUF);
        rc = n < 0 ? -1 : mnl_cb_run(buf, (size_t)n, h->nlmsg_seq, portid, cb, data);
    }
    return rc < 0 ? -1 : 0;
}
