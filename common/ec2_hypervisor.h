/* ec2_hypervisor.h - the hypervisor an instance here is reported under: the one source for
 * every answer that names it (DescribeInstances, DescribeImages, DescribeInstanceTypes). */
#ifndef VIRGA_EC2_HYPERVISOR_H
#define VIRGA_EC2_HYPERVISOR_H

/* The two vocabularies EC2 answers use for it. */
typedef enum {
    EC2_HV_INSTANCE,   /* HypervisorType: an instance's and an image's `hypervisor` (ovm | xen) */
    EC2_HV_TYPE,       /* InstanceTypeHypervisor: an instance type's `hypervisor` (nitro | xen) */
} ec2_hv_answer_t;

const char *ec2_hypervisor(ec2_hv_answer_t answer);

#endif
