/* sim_driver.c - the `sim` driver: SIMULATED instances, for scale tests only. Nothing
 * runs: an instance is a row in memory, written through to its state file (so a
 * restarted agent finds its simulated instances again) and a console file with the
 * lines a real guest would print. Every transition (boot, stop, reboot) takes
 * agent.sim.delay_ms (default 10), spent in ensure like a real boot, so the agent's
 * bound on parallel boots applies to it the same way; a boot may be given its own
 * (agent.sim.boot_delay_ms, default delay_ms: a slow guest's boot, given up like a
 * real one's wait when the instance is no longer wanted running). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm_state.h"

typedef struct sim {
    char dir[PATH_MAX];
    int delay_ms, boot_delay_ms;
    pthread_mutex_t mu;
    vm_status_t *v;           /* every instance, in memory */
    size_t n;
} sim_t;

static vm_status_t *find(sim_t *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].id, id))
            return &s->v[i];
    return NULL;
}

static void *sim_open(const vm_driver_cfg_t *c, verr_t *e)
{
    (void)e;
    sim_t *s = xcalloc(1, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", c->state_dir);
    s->delay_ms = c->cfg ? (int)config_int(c->cfg, "agent.sim.delay_ms", 10) : 10;
    s->boot_delay_ms = c->cfg ? (int)config_int(c->cfg, "agent.sim.boot_delay_ms", s->delay_ms) : s->delay_ms;
    pthread_mutex_init(&s->mu, NULL);
    size_t n = 0;
    char **ids = vm_state_ids(s->dir, &n);
    for (size_t i = 0; i < n; i++) {
        char d[PATH_MAX];
        vm_state_t st;
        vm_inst_dir(s->dir, ids[i], d, sizeof d);
        if (vm_state_read(d, &st, NULL) == 0) {
            s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
            vm_status_t *x = &s->v[s->n++];
            memset(x, 0, sizeof *x);
            snprintf(x->id, sizeof x->id, "%s", ids[i]);
            x->power = st.power;
            x->reboot_seq = st.reboot_seq;
        }
        free(ids[i]);
    }
    free(ids);
    return s;
}

static void console_line(const char *dir, const char *fmt, const char *a, const char *b)
{
    char path[PATH_MAX + 16], line[256];
    snprintf(path, sizeof path, "%s/console.log", dir);
    int len = snprintf(line, sizeof line, fmt, a, b);
    FILE *f = fopen(path, "ae");
    if (f) {
        fwrite(line, 1, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1, f);
        fclose(f);
    }
}

static void boot_lines(const char *dir, const vm_spec_t *spec)
{
    console_line(dir, "virga-sim: simulated instance %s booting%s\n", spec->id, "");
    console_line(dir, "VIRGA-GUEST-READY instance-id=%s addr=%s\n", spec->id,
                 spec->n_ifaces ? spec->ifaces[0].ip : "none");
}

static int sim_ensure(void *p, const vm_spec_t *spec, verr_t *e)
{
    sim_t *s = p;
    char dir[PATH_MAX];
    vm_inst_dir(s->dir, spec->id, dir, sizeof dir);
    pthread_mutex_lock(&s->mu);
    vm_status_t *x = find(s, spec->id), cur = {.power = VM_POWER_STOPPED};
    int exists = x != NULL;
    if (x)
        cur = *x;
    pthread_mutex_unlock(&s->mu);

    vm_state_t st = {.power = cur.power, .reboot_seq = cur.reboot_seq};
    int boot = 0, stop = 0, reboot = 0;
    if (!exists) {
        if (vm_mkdirs(dir, 0700, e) < 0)
            return -1;
        st.reboot_seq = spec->reboot_seq;  /* a new instance starts with the reboots it was asked */
        boot = spec->power == VM_POWER_RUNNING;
    } else if (spec->power == VM_POWER_RUNNING && cur.power != VM_POWER_RUNNING) {
        boot = 1;
    } else if (spec->power == VM_POWER_STOPPED && cur.power != VM_POWER_STOPPED) {
        stop = 1;
    } else if (spec->power == VM_POWER_RUNNING && spec->reboot_seq > cur.reboot_seq) {
        reboot = 1;
    }
    if (exists && !boot && !stop && !reboot && spec->reboot_seq <= cur.reboot_seq)
        return 0;
    /* a simulated boot is given up like a real one's wait (spec.abandon): what it
     * simulated still happens, as a real guest boots on */
    for (int left = boot ? s->boot_delay_ms : stop || reboot ? s->delay_ms : 0; left > 0 && !vm_spec_abandoned(spec);
         left -= 10)
        vm_sleep_ms(left < 10 ? left : 10);
    if (stop)
        console_line(dir, "virga-sim: %s stopped%s\n", spec->id, "");
    if (reboot)
        console_line(dir, "virga-sim: %s rebooting%s\n", spec->id, "");
    if (boot || reboot)
        boot_lines(dir, spec);
    st.power = spec->power;
    if (spec->reboot_seq > st.reboot_seq)  /* also a stopped instance's: its next boot is fresh anyway */
        st.reboot_seq = spec->reboot_seq;
    if (vm_state_write(dir, &st, VM_WRITE_RUNTIME, e) < 0)
        return -1;
    pthread_mutex_lock(&s->mu);
    x = find(s, spec->id);
    if (!x) {
        s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
        x = &s->v[s->n++];
        memset(x, 0, sizeof *x);
        snprintf(x->id, sizeof x->id, "%s", spec->id);
    }
    x->power = st.power;
    x->reboot_seq = st.reboot_seq;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int sim_list(void *p, vm_status_t **out, size_t *n, verr_t *e)
{
    (void)e;
    sim_t *s = p;
    pthread_mutex_lock(&s->mu);
    *n = s->n;
    *out = xmalloc((s->n ? s->n : 1) * sizeof **out);
    if (s->n)
        memcpy(*out, s->v, s->n * sizeof **out);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int sim_remove(void *p, const char *id, verr_t *e)
{
    sim_t *s = p;
    char dir[PATH_MAX];
    vm_inst_dir(s->dir, id, dir, sizeof dir);
    pthread_mutex_lock(&s->mu);
    vm_status_t *x = find(s, id);
    int running = x && x->power == VM_POWER_RUNNING;
    pthread_mutex_unlock(&s->mu);
    if (running && s->delay_ms > 0)
        vm_sleep_ms(s->delay_ms);
    if (vm_rmtree(dir, e) < 0)
        return -1;
    pthread_mutex_lock(&s->mu);
    if ((x = find(s, id)))
        *x = s->v[--s->n];
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int sim_console(void *p, const char *id, size_t max, char **buf, size_t *len, uint64_t *total, verr_t *e)
{
    sim_t *s = p;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s/console.log", s->dir, id);
    return vm_console_tail(path, max, buf, len, total, e);
}

static void sim_close(void *p)
{
    sim_t *s = p;
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->v);
    free(s);
}

const vm_driver_ops_t vm_sim_driver = {
    .name = "sim",
    .about = "simulated instances for scale tests only: nothing runs",
    .flags = VM_DRV_SIMULATED,
    .open = sim_open,
    .ensure = sim_ensure,
    .list = sim_list,
    .remove = sim_remove,
    .console = sim_console,
    .close = sim_close,
};
