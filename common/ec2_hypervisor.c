/* ec2_hypervisor.c - see ec2_hypervisor.h.
 *
 * Guests here run under KVM (QEMU, TCG where there is no KVM) or as containers: what AWS
 * calls Nitro, its KVM-based hypervisor. An instance type says so ("nitro"); an instance's
 * and an image's HypervisorType has no such value (ovm | xen only) and AWS answers "xen"
 * there for its Nitro instances too, so a client that matches an image's hypervisor to an
 * instance's, or checks either against the SDK's enum, finds what it would on AWS. */
#include "ec2_hypervisor.h"

const char *ec2_hypervisor(ec2_hv_answer_t answer)
{
    return answer == EC2_HV_TYPE ? "nitro" : "xen";
}
