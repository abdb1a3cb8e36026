/* vm_driver.h - the one interface every instance driver of the host agent implements
 * (`sim`, `container`, `qemu`), shaped like a libvirt driver but level-triggered: the
 * agent hands a driver the whole desired state of one instance (ensure), reads back what
 * runs (list), and removes what should not exist (remove). Drivers keep everything they
 * need in their own state directory, so a restarted agent opens the driver again and
 * adopts what still runs. Drivers are rows of a table (vm_driver_table.c), found by name.
 *
 * Threads: list and console may run at any time, also during ensure/remove; ensure and
 * remove run on several threads at once, but never two calls for the same instance id
 * at the same time (the sync loop keeps one job per instance). The public wrappers check
 * their arguments once; the ops behind them may trust them. */
#ifndef VIRGA_AGENT_VM_DRIVER_H
#define VIRGA_AGENT_VM_DRIVER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "err.h"

#define VM_ID_MAX 32          /* "i-" + 17 hex digits, with room */
#define VM_MAX_IFACES 8
#define VM_CONSOLE_MAX (64 * 1024)  /* console tail reported per instance */

typedef enum vm_power {
    VM_POWER_STOPPED = 0,
    VM_POWER_RUNNING,
    VM_POWER_STARTING,        /* created or started, not yet up (a booting guest) */
    VM_POWER_ERROR,           /* could not be made to match the spec: see error */
} vm_power_t;

/* "stopped", "running", "starting", "error": the words of compute.instances_observed. */
const char *vm_power_name(vm_power_t p);
/* The inverse; -1 for anything else. */
int vm_power_parse(const char *s);

/* Image bytes for an instance: url/sha256/size as compute sent them; path is filled by
 * the agent from its image cache before ensure (empty: no such image). */
typedef struct vm_file {
    char *url;                /* owned by the spec; NULL when absent */
    char sha256[65];
    uint64_t size;
    char format[16];          /* "tar.gz", "qcow2", "raw", ... */
    char type[24];            /* "container-rootfs", "machine", "kernel", "ramdisk" */
    char path[PATH_MAX];
} vm_file_t;

#define VM_MAX_GROUPS 5

/* What RunInstances at a public cloud also takes (compute sends it for ec2 instances
 * only): the tenant's user-data, key pair and security groups (docs/hybrid.md). */
typedef struct vm_launch {
    char account[16];
    char *user_data;          /* base64, as RunInstances takes it; NULL when none (owned) */
    char key_name[256];       /* "" when none */
    char *public_key;         /* the key pair's OpenSSH public key (owned) */
    char group_ids[VM_MAX_GROUPS][32], group_names[VM_MAX_GROUPS][256];
    size_t n_groups;
} vm_launch_t;

typedef struct vm_iface {
    char eni_id[32];
    char device[16];          /* vt-<12 hex>: the tap (qemu) or the veth stand-in's name */
    char mac[18];
    char ip[46];
    int prefix_len;
    char gateway[46];
    char vpc_id[32];
} vm_iface_t;

/* One instance as compute wants it (compute.host_instances). */
typedef struct vm_spec {
    char id[VM_ID_MAX];
    char driver[16];
    int vcpus;
    int memory_mib;
    int disk_gib;
    vm_power_t power;         /* desired: VM_POWER_RUNNING or VM_POWER_STOPPED */
    uint64_t reboot_seq;      /* reboot when greater than the applied one */
    vm_file_t image, kernel, ramdisk;
    vm_iface_t ifaces[VM_MAX_IFACES];
    size_t n_ifaces;
    char hostname[64];
    char image_id[32];        /* the local image (ami-...): ec2 maps it to the remote AMI */
    char instance_type[32];   /* the local type: ec2 maps it to the remote one */
    vm_launch_t launch;       /* ec2 only */
    /* Not from compute: set by the agent while ensure runs, once the instance is no
     * longer wanted running (terminated or stopped meanwhile). A driver's long wait for
     * a boot (qemu's ready line, ec2's remote state) ends early and ensure returns as on
     * that wait's timeout: the boot goes on, and the job the agent plans next stops or
     * removes it at once instead of after agent.qemu.boot_timeout_s. May be NULL. */
    const _Atomic int *abandon;
} vm_spec_t;

/* 1 when the agent no longer wants this ensure's boot waited for (spec.abandon). */
int vm_spec_abandoned(const vm_spec_t *s);

/* What a driver that runs instances elsewhere (ec2) saw of the remote instance. */
typedef struct vm_remote {
    char id[32];              /* its id there; "" for a local driver */
    char public_ip[46], private_ip[46];
    char state[16];           /* its EC2 state name there */
} vm_remote_t;

/* One instance as the driver finds it. */
typedef struct vm_status {
    char id[VM_ID_MAX];
    vm_power_t power;
    uint64_t reboot_seq;      /* the applied one (kept in the driver's state dir) */
    char error[256];          /* set when power is VM_POWER_ERROR */
    vm_remote_t remote;       /* ec2 only */
    /* The interfaces a running instance has now (vm_nics_sig of their vm_iface_t.device
     * names), for a driver that plugs them itself (qemu: nics_known 1); the sync loop asks
     * for an ensure when they are not the spec's. Drivers whose interfaces the datapath
     * brings (container) leave nics_known 0. A signature, not the names: the sim driver
     * keeps 20,000 of these in memory. */
    int nics_known;
    uint64_t nics_sig;
} vm_status_t;

/* The signature of a set of interface device names, whatever their order: the XOR of
 * each name's FNV-1a hash (0 for none). Add one with vm_nics_sig_add. */
uint64_t vm_nics_sig_add(uint64_t sig, const char *device);
/* The signature of the spec's interfaces: what nics_sig is when they are all plugged. */
uint64_t vm_spec_nics_sig(const vm_spec_t *s);

/* What open gets. Driver-specific keys are read from cfg as agent.<driver>.<key>. */
typedef struct vm_driver_cfg {
    const char *state_dir;    /* this driver's own directory (created by open, 0700) */
    const char *host_id;      /* agent.host_id */
    const char *prefix;       /* agent.datapath_prefix: names of namespaces, cgroups */
    const config_t *cfg;      /* may be NULL: every key has a default */
    const _Atomic int *cancel; /* may be NULL; set when the agent stops: long waits (a
                                  boot) give up early and leave the rest to the next pass */
} vm_driver_cfg_t;

enum {
    VM_DRV_NEEDS_IMAGES = 1,  /* the agent fetches image/kernel/ramdisk before ensure */
    VM_DRV_SIMULATED = 2,     /* runs nothing (sim): reported as such in the inventory */
};

typedef struct vm_driver_ops {
    const char *name;
    const char *about;        /* one line, for docs and logs */
    unsigned flags;
    void *(*open)(const vm_driver_cfg_t *c, verr_t *e);
    /* Make the instance exist and match spec: create if absent, start or stop to match
     * spec->power, reboot when spec->reboot_seq > the applied one. Idempotent. Blocks
     * until a started instance is up (a guest's ready line) or the driver's boot
     * timeout, so that the agent's bound on parallel boots means something. */
    int (*ensure)(void *d, const vm_spec_t *spec, verr_t *e);
    /* Every instance of this driver on this host (its state dir), *out the caller's. */
    int (*list)(void *d, vm_status_t **out, size_t *n, verr_t *e);
    /* Stop and delete everything of the instance; absent is success. */
    int (*remove)(void *d, const char *id, verr_t *e);
    /* The last max bytes of the console (*buf the caller's, *len bytes) and the number
     * of bytes the console has had since the instance was created (*total). */
    int (*console)(void *d, const char *id, size_t max, char **buf, size_t *len, uint64_t *total, verr_t *e);
    void (*close)(void *d);   /* leaves instances running (they are adopted later) */
    /* Optional: what the driver adds to the host's inventory (ec2: the public cloud's
     * name and its capacity limits replace the machine's figures). */
    void (*inventory)(void *d, json_t *inv);
    /* Optional: 1 when a failed ensure is one no retry will fix (a public cloud refused
     * the launch for good: a bad image map, no permission). The agent then reports
     * the instance "failed" and compute ends its launch (docs/hybrid.md). */
    int (*permanent)(void *d, const verr_t *e);
    /* Optional (CreateImage): write the instance's disk (qemu: a standalone qcow2) or root
     * file system (container: a tar.gz) to path. pause: hold a running instance still
     * while its bytes are read (NoReboot false), so the copy is consistent. */
    int (*export_disk)(void *d, const char *id, const char *path, int pause, verr_t *e);
} vm_driver_ops_t;

/* The table: every driver this binary has, NULL-terminated. */
extern const vm_driver_ops_t *const vm_driver_table[];
const vm_driver_ops_t *vm_driver_find(const char *name);

/* An open driver. */
typedef struct vm_driver {
    const vm_driver_ops_t *ops;
    void *priv;
} vm_driver_t;

/* NotImplemented (400) for a name not in the table. The state dir is created. */
vm_driver_t *vm_driver_open(const char *name, const vm_driver_cfg_t *c, verr_t *e);
/* InvalidParameterValue for a spec whose id is not an instance id or whose power is
 * neither running nor stopped. */
int vm_driver_ensure(vm_driver_t *d, const vm_spec_t *spec, verr_t *e);
int vm_driver_list(vm_driver_t *d, vm_status_t **out, size_t *n, verr_t *e);
int vm_driver_remove(vm_driver_t *d, const char *id, verr_t *e);
int vm_driver_console(vm_driver_t *d, const char *id, size_t max, char **buf, size_t *len, uint64_t *total,
                      verr_t *e);
void vm_driver_close(vm_driver_t *d);     /* NULL is a no-op */
/* export_disk, or UnsupportedOperation for a driver without one. */
int vm_driver_export(vm_driver_t *d, const char *id, const char *path, int pause, verr_t *e);

/* 1 if s is an instance id the drivers accept (i- + 17 lowercase hex): it names files,
 * cgroups and sockets, so nothing else may reach them. */
int vm_id_valid(const char *s);

#endif
