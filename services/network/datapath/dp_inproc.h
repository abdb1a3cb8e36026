/* dp_inproc.h - the datapath's commands run in-process, without fork+exec: network
 * namespaces made and deleted as `ip netns` does, nftables scripts through libnftables,
 * the `ip` and `bridge fdb` requests of the applies through rtnetlink (libmnl), sysctls
 * written in the namespace.
 * dp_run (dp_exec.c) asks here first; what is not understood here is exec'd as before. */
#ifndef VIRGA_DP_INPROC_H
#define VIRGA_DP_INPROC_H

#include "err.h"
#include "strbuf.h"

/* Run fn(arg) on a thread of its own that joined network namespace `netns` (its name
 * under /run/netns; NULL: the caller's, on the calling thread). fn's result, or -1 with
 * *why set when the namespace cannot be entered. */
int dp_in_netns(const char *netns, int (*fn)(void *), void *arg, char *why, size_t why_len);

/* `ip netns add NAME` / `ip netns del NAME`, in-process: 0, or -1 with the reason in err. */
int dp_netns_add(const char *name, strbuf_t *err);
int dp_netns_del(const char *name, strbuf_t *err);

/* An `ip` command line (argv without "ip": `-batch -` with input, `-force -batch -`, or one
 * command) run through rtnetlink. 1 when it is not one this file knows (the caller execs
 * `ip`), 0 when it ran and every line succeeded, -1 when one failed: *err then says what
 * `ip` would have said on stderr. */
int dp_ip_inproc(const char *netns, const char *const argv[], const char *input, strbuf_t *err);

/* A `bridge fdb append|replace|del` command line (argv without "bridge") through
 * rtnetlink: 1 when not understood here, else 0 or -1 as above. */
int dp_bridge_inproc(const char *netns, const char *const argv[], strbuf_t *err);

/* `sysctl -q -w KEY=VALUE...` (argv without "sysctl"): each value written to /proc/sys on
 * the namespace's thread (a net.* key is the namespace's own). 1 when not that form, else
 * 0 or -1 with sysctl's words in err. */
int dp_sysctl_inproc(const char *netns, const char *const argv[], strbuf_t *err);

/* An `nft` command line (argv without "nft": `-f -` with input, or one command) through
 * libnftables: 1 when not understood here, else 0 or -1 as above; its output in *out. */
int dp_nft_inproc(const char *netns, const char *const argv[], const char *input, strbuf_t *out, strbuf_t *err);

/* A listing of observe's (`ip -j -d link show`, `bridge -j fdb show dev DEV`, `ip -j addr
 * show dev DEV`; argv with the program's name) through rtnetlink dumps (dp_rtnl_list.c):
 * 1 when not one of those forms, else 0 with the JSON (observe's fields, as the tool
 * names them) in *out, or -1 with the tool's words in err. */
int dp_list_inproc(const char *netns, const char *const argv[], strbuf_t *out, strbuf_t *err);

#endif
