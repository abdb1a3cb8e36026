/* container_driver.c - placeholder until the container driver lands. */
#include "vm_state.h"
static void *c_open(const vm_driver_cfg_t *c, verr_t *e) { (void)c; verr_set(e, 501, "NotImplemented", "container driver not built yet"); return NULL; }
const vm_driver_ops_t vm_container_driver = {.name = "container", .about = "", .open = c_open};
