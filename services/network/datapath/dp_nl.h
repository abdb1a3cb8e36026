/* dp_nl.h - the rtnetlink socket of the in-process datapath commands: opened, and a dump
 * read to its end, one way for the applies (dp_rtnl.c) and observe's listings
 * (dp_rtnl_list.c). */
#ifndef VIRGA_DP_NL_H
#define VIRGA_DP_NL_H

#include <libmnl/libmnl.h>

#include "strbuf.h"

#define DP_NL_DUMP_BUF 32768   /* a dump's messages come in pieces up to this (libmnl's MNL_SOCKET_DUMP_SIZE) */

/* A bound NETLINK_ROUTE socket (close-on-exec: never into a child another thread forks),
 * or NULL with ip's words in err. */
struct mnl_socket *dp_nl_open(strbuf_t *err);

/* Send dump request h on nl and run cb(message, data) on every answer until the dump's
 * end: 0, or -1 with errno set (a send, a receive or cb failed). */
int dp_nl_dump(struct mnl_socket *nl, const struct nlmsghdr *h, mnl_cb_t cb, void *data);

#endif
