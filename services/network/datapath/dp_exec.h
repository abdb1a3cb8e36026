/* dp_exec.h - run a system tool's command, optionally inside a named network namespace:
 * in-process when dp_inproc.h knows it, else exec'd (see dp_exec.c). */
#ifndef VIRGA_DP_EXEC_H
#define VIRGA_DP_EXEC_H

#include <stdarg.h>

#include "err.h"

#define DP_DETACHED 1   /* stdio on /dev/null, own session: for daemons (dnsmasq) */
#define DP_QUIET    2   /* a failure returns -1 without setting the error (probes) */

/* Run argv in namespace `netns` (NULL: the caller's), `input` on stdin, stdout into *out
 * (caller frees). Non-zero exit, a signal or the time bound is an InternalError carrying
 * the tool's stderr. */
int dp_run(const char *netns, const char *const argv[], const char *input, char **out,
           int flags, verr_t *e);
/* dp_run with the arguments inline, NULL-terminated, no input or output. */
int dp_runv(const char *netns, int flags, verr_t *e, ...);

/* How many commands dp_run ran in this process so far, and how many of them as a process
 * of their own (the rest in-process, dp_inproc.h). */
long dp_exec_count(void);
long dp_proc_count(void);

#endif
