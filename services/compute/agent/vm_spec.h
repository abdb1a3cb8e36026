/* vm_spec.h - instance specs from compute's JSON (compute.host_instances). */
#ifndef VIRGA_AGENT_VM_SPEC_H
#define VIRGA_AGENT_VM_SPEC_H

#include <jansson.h>

#include "vm_driver.h"

/* InvalidParameterValue naming the field for anything malformed; s is cleared then. */
int vm_spec_parse(const json_t *o, vm_spec_t *s, verr_t *e);
/* Free what the spec owns (the URLs); the struct itself is the caller's. */
void vm_spec_clear(vm_spec_t *s);
/* A deep copy (dst owns its own URLs). */
void vm_spec_copy(vm_spec_t *dst, const vm_spec_t *src);

#endif
