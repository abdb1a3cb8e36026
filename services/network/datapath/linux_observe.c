/* linux_observe.c - what the linux driver finds on the machine for one host, as units.
 *
 * Fingerprints are read back from where ensure stored them: link aliases (host leg, VXLAN
 * device, interface), nftables table comments (security groups, NAT) and the dnsmasq files
 * of a running dnsmasq. A half-built unit (an agent killed in the middle) has no or a
 * wrong fingerprint and is rebuilt; anything with our prefixes that the document does not
 * name is reported, so apply removes it. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonutil.h"
#include "linux.h"

/* `ip -j link show` (or nft -j) in a namespace, parsed; NULL on failure. */
static json_t *run_json(const char *ns, const char *const argv[], verr_t *e)
{
    AUTOFREE char *out = NULL;
    if (dp_run(ns, argv, NULL, &out, 0, e) < 0) return NULL;
    json_t *j = json_parse_bounded(out, strlen(out), 64 << 20);
    if (!j) verr_set(e, 500, "InternalError", "%s: unreadable JSON output", argv[0]);
    return j;
}

/* The fingerprint of table <family> <name> (render.c keeps it as the comment of its
 * chain `fp`): "" when there is no such table, "-" when it has no fingerprint. */
static int table_comment(const char *ns, const char *family, const char *name, char *out,
                         size_t n, verr_t *e)
{
    (void)e;
    const char *const argv[] = {"nft", "list", "chain", family, name, "fp", NULL};
    AUTOFREE char *text = NULL;
    out[0] = 0;
    if (dp_run(ns, argv, NULL, &text, DP_QUIET, NULL) < 0) {
        /* no chain: is there a table at all? */
        const char *const t[] = {"nft", "list", "table", family, name, NULL};
        if (dp_run(ns, t, NULL, NULL, DP_QUIET, NULL) == 0) snprintf(out, n, "-");
        return 0;
    }
    const char *c = strstr(text, "comment \"");
    if (!c) {
        snprintf(out, n, "-");
        return 0;
    }
    c += strlen("comment \"");
    const char *q = strchr(c, '"');
    snprintf(out, n, "%.*s", q ? (int)(q - c) : 0, c);
    return 0;
}

static int is_number(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

static const json_t *link_named(const json_t *links, const char *name)
{
    size_t i;
    json_t *l;
    json_array_foreach(links, i, l)
        if (!strcmp(json_str(l, "ifname", ""), name)) return l;
    return NULL;
}

static int observe_fdb(const char *ns, unsigned vni, dp_units_t *out, verr_t *e)
{
    char dev[16];
    snprintf(dev, sizeof dev, "vx-%u", vni);
    const char *const argv[] = {"bridge", "-j", "fdb", "show", "dev", dev, NULL};
    JSON_AUTO json_t *j = run_json(ns, argv, e);
    if (!j) return -1;
    size_t i;
    json_t *f;
    json_array_foreach(j, i, f) {
        const char *dst = json_str(f, "dst", NULL);
        if (!dst || strcmp(json_str(f, "mac", ""), "00:00:00:00:00:00")) continue;
        char key[96];
        snprintf(key, sizeof key, "%u/%s", vni, dst);
        dp_unit_t *u = dp_units_add(out, DP_FDB, key);
        snprintf(u->fp, sizeof u->fp, "%s", key);
    }
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *s = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&s, &n);
    char buf[4096];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, r, m);
    fclose(f);
    fclose(m);
    return s;
}

/* pid's command line, its arguments joined by spaces, into out: its length, 0 when the
 * process is gone or a zombie (whose command line is empty). */
static size_t cmdline_of(int pid, char *out, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    FILE *f = fopen(path, "r");
    if (!f) return out[0] = 0;
    size_t n = fread(out, 1, size - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (!out[i]) out[i] = ' ';
    out[n] = 0;
    return n;
}

int lx_dhcp_pid(const char *dir, unsigned vni)
{
    char path[800];
    snprintf(path, sizeof path, "%s/dhcp-%u.pid", dir, vni);
    AUTOFREE char *pid_s = slurp(path);
    int pid = pid_s ? atoi(pid_s) : 0;
    if (pid <= 1) return 0;
    /* The pid is ours only if that process runs dnsmasq with our configuration file. */
    char cmd[2048], conf[700];
    if (!cmdline_of(pid, cmd, sizeof cmd)) return 0;
    snprintf(conf, sizeof conf, "--conf-file=%s/dhcp-%u.conf", dir, vni);
    return strstr(cmd, "dnsmasq") && strstr(cmd, conf) ? pid : 0;
}

/* dnsmasq processes of this host directory (vni < 0: of any VPC) that no pid file names:
 * an applier killed after it started one and before dnsmasq wrote its pid file leaves it
 * running unseen, and the next apply starts a second beside it. Killed, found by their
 * command line (the configuration file's path is ours alone). */
void lx_dhcp_kill_strays(const char *dir, int vni)
{
    char want[760];
    if (vni < 0)
        snprintf(want, sizeof want, "--conf-file=%s/dhcp-", dir);
    else
        snprintf(want, sizeof want, "--conf-file=%s/dhcp-%d.conf", dir, vni);
    DIR *dh = opendir("/proc");
    if (!dh) return;
    int killed[16], n = 0;
    struct dirent *de;
    while ((de = readdir(dh))) {
        int pid = atoi(de->d_name);
        char cmd[2048];
        if (pid <= 1 || !cmdline_of(pid, cmd, sizeof cmd)) continue;
        if (strstr(cmd, "dnsmasq") && strstr(cmd, want) && kill(pid, SIGKILL) == 0 && n < 16)
            killed[n++] = pid;
    }
    closedir(dh);
    /* gone before the caller starts another or reports the host clean (bounded: 1 s) */
    for (int k = 0; k < n; k++)
        for (int i = 0; i < 100 && kill(killed[k], 0) == 0; i++) {
            char c[8];
            if (!cmdline_of(killed[k], c, sizeof c)) break;   /* gone, or a zombie */
            usleep(10000);
        }
}

void lx_dhcp_stop(const char *dir, unsigned vni)
{
    int pid = lx_dhcp_pid(dir, vni);
    if (pid > 0) {
        kill(pid, SIGTERM);
        for (int i = 0; i < 200 && kill(pid, 0) == 0 && lx_dhcp_pid(dir, vni) == pid; i++)
            usleep(10000);
        if (lx_dhcp_pid(dir, vni) == pid) kill(pid, SIGKILL);
    }
    lx_dhcp_kill_strays(dir, (int)vni);
    static const char *const ext[] = {"pid", "conf", "hosts", "leases"};
    for (size_t i = 0; i < ARRAY_LEN(ext); i++) {
        char path[800];
        snprintf(path, sizeof path, "%s/dhcp-%u.%s", dir, vni, ext[i]);
        unlink(path);
    }
}

/* DHCP units: every dhcp-<vni>.conf of the host directory. */
static void observe_dhcp(const char *dir, dp_units_t *out)
{
    DIR *dh = opendir(dir);
    if (!dh) return;
    struct dirent *de;
    while ((de = readdir(dh))) {
        unsigned vni;
        char tail[16];
        if (sscanf(de->d_name, "dhcp-%u.%15s", &vni, tail) != 2 || strcmp(tail, "conf")) continue;
        char key[16], path[800];
        snprintf(key, sizeof key, "%u", vni);
        dp_unit_t *u = dp_units_add(out, DP_DHCP, key);
        if (!lx_dhcp_pid(dir, vni)) continue;   /* not running: fp "" rebuilds it */
        snprintf(path, sizeof path, "%s/dhcp-%u.conf", dir, vni);
        AUTOFREE char *conf = slurp(path);
        snprintf(path, sizeof path, "%s/dhcp-%u.hosts", dir, vni);
        AUTOFREE char *hosts = slurp(path);
        if (!conf || !hosts) continue;
        AUTOFREE char *both = xasprintf("%s|%s", conf, hosts);
        char h[9];
        dp_hash8(both, h);
        snprintf(u->fp, sizeof u->fp, "d=%s", h);
    }
    closedir(dh);
}

static int observe_links(dp_driver_t *d, const char *host, const char *hns, dp_units_t *out,
                         verr_t *e)
{
    static const char *const argv[] = {"ip", "-j", "-d", "link", "show", NULL};
    JSON_AUTO json_t *links = run_json(hns, argv, e);
    if (!links) return -1;
    /* The shared namespaces are checked by name only (cheap): without the underlay the
     * host's leg is gone, without the outside every router's leg is. */
    char uns[128], ons[128];
    lx_ns_shared(d, "underlay", uns, sizeof uns);
    lx_ns_shared(d, "outside", ons, sizeof ons);
    int have_outside = lx_ns_exists(ons);
    const json_t *ul = link_named(links, UL_BRIDGE);
    dp_unit_t *u = dp_units_add(out, DP_HOST, host);
    snprintf(u->fp, sizeof u->fp, "%s", ul && lx_ns_exists(uns) ? json_str(ul, "ifalias", "") : "");
    size_t i;
    json_t *l;
    json_array_foreach(links, i, l) {
        const char *name = json_str(l, "ifname", "");
        const char *alias = json_str(l, "ifalias", "");
        if (!strncmp(name, "vx-", 3) && is_number(name + 3)) {
            unsigned vni = (unsigned)atoi(name + 3);
            char rns[128], vb[16], vr[16];
            lx_ns_router(d, host, vni, rns, sizeof rns);
            snprintf(vb, sizeof vb, "vb-%u", vni);
            snprintf(vr, sizeof vr, "vr-%u", vni);
            int whole = have_outside && lx_ns_exists(rns) && link_named(links, vb) &&
                        link_named(links, vr);
            u = dp_units_add(out, DP_VPC, name + 3);
            snprintf(u->fp, sizeof u->fp, "%s", whole ? alias : "");
            if (observe_fdb(hns, vni, out, e) < 0) return -1;
        } else if (!strncmp(name, "vt-", 3)) {
            /* alias "eni=<eni> <fingerprint>" */
            char eni[DP_NAME_MAX] = "";
            const char *fp = "";
            if (!strncmp(alias, "eni=", 4)) {
                const char *sp = strchr(alias, ' ');
                if (sp && (size_t)(sp - alias - 4) < sizeof eni) {
                    memcpy(eni, alias + 4, (size_t)(sp - alias - 4));
                    eni[sp - alias - 4] = 0;
                    fp = sp + 1;
                }
            }
            char key[96], ins[160], parent[DP_NAME_MAX] = "";
            snprintf(key, sizeof key, eni[0] ? "%s" : "dev:%s", eni[0] ? eni : name);
            /* an attached one lives in its primary's namespace (" in=<parent>/eth<N>") */
            const char *in = strstr(fp, " in=");
            if (in) sscanf(in, " in=%63[^/]", parent);
            lx_ns_inst(d, host, parent[0] ? parent : eni, ins, sizeof ins);
            /* whole only while on its VPC's bridge: a rebuilt VPC detaches it */
            unsigned vni = 0;
            const char *v = strstr(fp, " vni=");
            char master[16];
            snprintf(master, sizeof master, "vb-%u", v && sscanf(v, " vni=%u", &vni) == 1 ? vni : 0);
            /* a veth is made with its stand-in namespace; a tap alone, and is a tun device */
            const json_t *info = json_object_get(l, "linkinfo");
            int tap = strstr(fp, " kind=tap") != NULL;
            int made = eni[0] && (tap ? !strcmp(json_str(info, "info_kind", ""), "tun") : lx_ns_exists(ins));
            int attached = !strcmp(json_str(l, "master", ""), master);
            u = dp_units_add(out, DP_IFACE, key);
            snprintf(u->dev, sizeof u->dev, "%s", name);
            snprintf(u->fp, sizeof u->fp, "%s", made && attached ? fp : "");
            u->reattach = made && !attached && vni;
            if (u->reattach) u->text = xstrdup(fp);     /* what it is, detached */
        } else if (!strncmp(name, "vb-", 3) || !strncmp(name, "vr-", 3)) {
            /* a bridge or router leg without its VXLAN device: a VPC half built */
            char vx[16];
            snprintf(vx, sizeof vx, "vx-%s", name + 3);
            if (!link_named(links, vx) && is_number(name + 3) && !dp_units_find(out, DP_VPC, name + 3))
                dp_units_add(out, DP_VPC, name + 3);
        }
    }
    return 0;
}

/* The metadata address is on the router's lo. */
static int has_metadata_ip(const char *rns)
{
    static const char *const argv[] = {"ip", "-j", "addr", "show", "dev", "lo", NULL};
    JSON_AUTO json_t *j = run_json(rns, argv, NULL);
    size_t i, k;
    json_t *l, *a;
    json_array_foreach(j, i, l)
        json_array_foreach(json_object_get(l, "addr_info"), k, a)
            if (!strcmp(json_str(a, "local", ""), DP_METADATA_IP) && json_int(a, "prefixlen", 0) == 32) return 1;
    return 0;
}

int lx_observe(dp_driver_t *d, const char *host, dp_units_t *out, verr_t *e)
{
    char hns[128], pfx[160], dir[700];
    lx_ns_host(d, host, hns, sizeof hns);
    lx_host_dir(d, host, dir, sizeof dir);
    if (lx_ns_exists(hns)) {
        if (observe_links(d, host, hns, out, e) < 0) return -1;
        if (lx_sg_observe(d, hns, out, e) < 0) return -1;
    }
    /* Router namespaces: their NAT unit, and a VPC unit when the host lost its devices. */
    snprintf(pfx, sizeof pfx, "%sr-%s.", d->prefix, host);
    size_t n = 0;
    char **rs = lx_ns_list(pfx, &n);
    for (size_t i = 0; i < n; i++) {
        if (is_number(rs[i])) {
            if (!dp_units_find(out, DP_VPC, rs[i])) dp_units_add(out, DP_VPC, rs[i]);
            char rns[200];
            snprintf(rns, sizeof rns, "%s%s", pfx, rs[i]);
            dp_unit_t *u = dp_units_add(out, DP_ROUTER, rs[i]);
            if (table_comment(rns, "ip", "virga_nat", u->fp, sizeof u->fp, NULL) < 0) u->fp[0] = 0;
            if (has_metadata_ip(rns)) {
                u = dp_units_add(out, DP_META, rs[i]);
                snprintf(u->fp, sizeof u->fp, "md=%s", DP_METADATA_IP);
            }
        }
        free(rs[i]);
    }
    free(rs);
    /* Instance stand-ins whose host-side device is gone. */
    snprintf(pfx, sizeof pfx, "%si-%s.", d->prefix, host);
    char **is = lx_ns_list(pfx, &n);
    for (size_t i = 0; i < n; i++) {
        if (!dp_units_find(out, DP_IFACE, is[i])) dp_units_add(out, DP_IFACE, is[i]);
        free(is[i]);
    }
    free(is);
    observe_dhcp(dir, out);
    return 0;
}
