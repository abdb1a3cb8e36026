/* qemu_driver.c - placeholder until the qemu driver lands. */
#include "vm_state.h"
static void *q_open(const vm_driver_cfg_t *c, verr_t *e) { (void)c; verr_set(e, 501, "NotImplemented", "qemu driver not built yet"); return NULL; }
const vm_driver_ops_t vm_qemu_driver = {.name = "qemu", .about = "", .open = q_open};
