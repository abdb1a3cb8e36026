/* qemu.h - the qemu driver's parts: the accelerator probe (qemu_accel.c) and the QMP
 * client (qemu_qmp.c); the driver is qemu_driver.c. */
#ifndef VIRGA_AGENT_QEMU_H
#define VIRGA_AGENT_QEMU_H

#include "vm_state.h"

/* "kvm" when a guest really runs under KVM here, else "tcg". The answer is cached in
 * <state_dir>/accel.json with what it depends on (kernel release, QEMU binary and its
 * mtime) and probed again when that changes. mode: "auto", "kvm" or "tcg" (config
 * agent.qemu.accel; kvm and tcg are taken as said). why gets the reason. */
const char *qemu_accel(const char *state_dir, const char *qemu, const char *mode, char *why, size_t why_n);

/* One QMP command on the instance's socket ({"execute": cmd}), within timeout_ms:
 * greeting, qmp_capabilities, the command, its answer (events skipped). */
int qemu_qmp(const char *socket_path, const char *cmd, int timeout_ms, verr_t *e);

#endif
