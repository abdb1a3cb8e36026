/* qemu.h - the qemu driver's parts: the accelerator probe (qemu_accel.c) and the QMP
 * client (qemu_qmp.c); the driver is qemu_driver.c. */
#ifndef VIRGA_AGENT_QEMU_H
#define VIRGA_AGENT_QEMU_H

#include <jansson.h>

#include "vm_state.h"

/* "kvm" when a guest really runs under KVM here, else "tcg". The answer is cached in
 * <state_dir>/accel.json with what it depends on (kernel release, QEMU binary and its
 * mtime) and probed again when that changes. mode: "auto", "kvm" or "tcg" (config
 * agent.qemu.accel; kvm and tcg are taken as said). why gets the reason. */
const char *qemu_accel(const char *state_dir, const char *qemu, const char *mode, char *why, size_t why_n);

/* One QMP command on the instance's socket ({"execute": cmd}), within timeout_ms:
 * greeting, qmp_capabilities, the command, its answer (events skipped). */
int qemu_qmp(const char *socket_path, const char *cmd, int timeout_ms, verr_t *e);
/* The same with arguments ({"execute": cmd, "arguments": args}; args may be NULL). An
 * error QEMU answers is e's message: "QMP <cmd>: <QEMU's description>". */
int qemu_qmp_args(const char *socket_path, const char *cmd, const json_t *args, int timeout_ms, verr_t *e);
/* The same, with QEMU's "return" value into *ret (a new reference) when ret is not NULL. */
int qemu_qmp_value(const char *socket_path, const char *cmd, const json_t *args, int timeout_ms, json_t **ret,
                   verr_t *e);

/* The interfaces of a running QEMU (qemu_nics.c): a tap, its backend's id and its
 * device's ("" for one a start of an older agent made without an id); one taken out
 * stays while its device is leaving (its removal asked of the guest, not done yet). */
typedef struct qemu_nic {
    char tap[16], netdev[32], device[40];
    uint64_t leaving;   /* unix seconds its device was asked out; 0: in use */
    int warned;         /* leaving past QEMU_NIC_LEAVING_S: said once */
} qemu_nic_t;

/* How long a guest may take to let go of a device taken out before the agent says so. */
#define QEMU_NIC_LEAVING_S 30

typedef struct qemu_nics {
    uint64_t start_time;      /* of the QEMU they belong to */
    size_t n;
    qemu_nic_t v[2 * VM_MAX_IFACES];   /* the spec's, and those being taken out */
} qemu_nics_t;

/* The ids QEMU gets for the interface on tap: backend "nd-<tap>", device "nic-<tap>". */
void qemu_nic_ids(const char *tap, qemu_nic_t *out);
/* What the QEMU of st (running) has: <inst>/nics if it is that QEMU's record, else the
 * QEMU's command line (then recorded). */
void qemu_nics_read(const char *inst, const vm_state_t *st, qemu_nics_t *out);
int qemu_nics_write(const char *inst, const qemu_nics_t *n, verr_t *e);
/* vm_nics_sig of the taps in use, and of those leaving not yet said to stay: a leaving
 * device keeps the sync loop asking (ensure) until it is gone or said to stay. */
uint64_t qemu_nics_sig(const qemu_nics_t *n);
/* 1 when the spec has an interface the QEMU lacks (to plug in: its tap must be there). */
int qemu_nics_missing(const qemu_nics_t *n, const vm_spec_t *s);
/* Over QMP (socket qmp): take out what *have has beyond the spec (its backend at once, its
 * device asked of the guest: leaving), drop the leaving devices the guest let go of (and
 * log once those it keeps past QEMU_NIC_LEAVING_S), plug in what the spec has beyond
 * *have except a tap whose device is still leaving (its id is taken until then); *have and
 * the record follow each step done. */
int qemu_nics_converge(const char *inst, const char *qmp, const vm_spec_t *s, qemu_nics_t *have, verr_t *e);

#endif
