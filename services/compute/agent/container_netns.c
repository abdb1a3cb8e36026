/* container_netns.c - a container and the network namespace of its interface (the
 * stand-in the datapath makes, <prefix>i-<host>.<eni>; container.h).
 *
 * The datapath sets the address last, once the host's end is on the VPC's bridge, and
 * finishes in place a stand-in an applier killed half-way left unlabelled
 * (services/network/datapath/linux_driver.c, ensure_iface); but one whose pair is gone
 * it rebuilds as a new namespace under the same name, and a container may have started
 * in the old one (an older datapath set the address before it attached the host's end).
 * That container is then left in the old namespace, whose interface went with the
 * rebuild: it runs cut off for good, without metadata or user-data (a guest of
 * tests/e2e/test_instances_real_kill.py, the agent killed during a launch of 20 under
 * load, printed instance-id=unknown). So a start waits for the interface to have its
 * address *and* a carrier (its peer on the host side is up, which the attachment does),
 * and notes which namespace it joined (<instance dir>/netns: its path); a running
 * container whose path now names another namespace is found by ct_netns_moved, and the
 * driver starts it again in the new one. */
#include "container.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct has_ip {
    const char *path, *ip;
    int found;
};

static void *has_ip_thread(void *arg)
{
    struct has_ip *h = arg;
    int fd = open(h->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    int joined = setns(fd, CLONE_NEWNET) == 0;   /* this thread only; it ends right after */
    close(fd);
    struct ifaddrs *ifs = NULL;
    if (!joined || getifaddrs(&ifs) < 0)
        return NULL;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        char a[INET_ADDRSTRLEN];
        /* IFF_RUNNING: a veth has a carrier once its peer is up */
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_RUNNING) &&
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a) && !strcmp(a, h->ip))
            h->found = 1;
    }
    freeifaddrs(ifs);
    return NULL;
}

int ct_netns_has_ip(const char *path, const char *ip)
{
    struct has_ip h = {.path = path, .ip = ip};
    pthread_t th;
    if (pthread_create(&th, NULL, has_ip_thread, &h))
        return 0;
    pthread_join(th, NULL);
    return h.found;
}

static void netns_file(const char *inst_dir, char *out, size_t n)
{
    vm_pathf(out, n, "%s/netns", inst_dir);
}

int ct_netns_note(const char *inst_dir, const char *netns, verr_t *e)
{
    char f[PATH_MAX + 16];
    netns_file(inst_dir, f, sizeof f);
    return vm_write_file(f, netns, strlen(netns), VM_WRITE_RUNTIME, e);
}

int ct_netns_moved(const char *inst_dir, const vm_state_t *st)
{
    char f[PATH_MAX + 16], path[PATH_MAX] = "", own[64];
    netns_file(inst_dir, f, sizeof f);
    if (vm_read_small(f, path, sizeof path) < 0)
        return 0;
    vm_pathf(own, sizeof own, "/proc/%d/ns/net", (int)st->pid);
    struct stat now, joined;
    /* a stand-in that is gone (the instance is leaving) or not made yet proves nothing */
    if (!path[0] || !vm_proc_is(st->pid, st->start_time) || stat(path, &now) < 0 || stat(own, &joined) < 0)
        return 0;
    return now.st_dev != joined.st_dev || now.st_ino != joined.st_ino;
}
