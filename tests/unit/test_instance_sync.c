/* test_instance_sync.c - the agent's instance loop (services/compute/agent/
 * instance_sync.h) with the `sim` driver and a fake compute: desired instances are
 * created and reported running with their console (base64) and the generation, an
 * instance nobody desires is removed, a spec for a driver the host does not offer or
 * with a power the agent does not know is reported as an error and never removes what
 * runs, reboot and stop go through, a console compute has is not sent again, and an
 * instance absent from the desired state (terminated) is removed and no longer reported.
 * Reports are numbered, one that says what the last said is not sent but on the timer's
 * pass, and a console compute does not keep (a report lost: they get no
 * reply) is sent again after the pull says so.
 * Doorbells: one that carries the next generation's changes is applied without a pull;
 * one that skips a generation (a doorbell lost) makes the agent pull; a change whose
 * doorbell never came is healed by the reconcile timer's pull. */
#include <pthread.h>

#include "instance_sync.h"
#include "jsonutil.h"
#include "vm_fixture.h"


typedef struct fake {
    pthread_mutex_t mu;
    json_t *desired;          /* the document compute.host_instances answers */
    json_t *last;             /* the last compute.instances_observed body */
    json_t *consoles;         /* id -> the last console any report carried */
    int reports;
    int pulls;                /* compute.host_instances asked */
    json_t *seqs;             /* id -> the console_seq of the console compute keeps */
    json_t *primed;           /* id -> the metadata sent ahead (null: dropped); with
                               * metadata_io */
    int keeps;                /* the pulls' calls for what may stay */
} fake_t;

static void fake_metadata(void *arg, const char *id, const json_t *md)
{
    fake_t *f = arg;
    pthread_mutex_lock(&f->mu);
    if (id) {
        json_object_set_new(f->primed, id, md ? json_deep_copy(md) : json_null());
    } else {
        f->keeps++;
        const char *k;
        json_t *v, *tmp;
        json_object_foreach_safe(f->primed, tmp, k, v) {
            int kept = 0;
            size_t i;
            const json_t *it;
            json_array_foreach(md, i, it)
                kept |= !strcmp(json_str(it, "instance_id", ""), k);
            if (!kept)
                json_object_del(f->primed, k);
        }
    }
    pthread_mutex_unlock(&f->mu);
}

static int fake_desired(void *arg, json_t **doc, verr_t *e)
{
    (void)e;
    fake_t *f = arg;
    pthread_mutex_lock(&f->mu);
    f->pulls++;
    *doc = json_deep_copy(f->desired);
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(*doc, "instances"), i, it) {
        json_t *seq = json_object_get(f->seqs, json_str(it, "instance_id", ""));
        if (seq)
            json_object_set(it, "console_seq", seq);
    }
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static int fake_observed(void *arg, json_t *body, verr_t *e)
{
    (void)e;
    fake_t *f = arg;
    pthread_mutex_lock(&f->mu);
    json_decref(f->last);
    f->last = body;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(body, "instances"), i, it)
        if (json_object_get(it, "console")) {
            json_object_set(f->consoles, json_str(it, "instance_id", ""), json_object_get(it, "console"));
            json_object_set(f->seqs, json_str(it, "instance_id", ""), json_object_get(it, "console_seq"));
        }
    f->reports++;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static void set_desired(fake_t *f, const char *json)
{
    json_error_t je;
    json_t *d = json_loads(json, 0, &je);
    assert_non_null(d);
    pthread_mutex_lock(&f->mu);
    json_decref(f->desired);
    f->desired = d;
    pthread_mutex_unlock(&f->mu);
}

static json_t *reported(fake_t *f, const char *id)
{
    pthread_mutex_lock(&f->mu);
    json_t *r = NULL;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(f->last, "instances"), i, it)
        if (!strcmp(json_str(it, "instance_id", ""), id))
            r = json_incref(it);
    pthread_mutex_unlock(&f->mu);
    return r;
}

static void test_sync_loop(void **state)
{
    ctx_t *x = *state;
    fake_t f = {.mu = PTHREAD_MUTEX_INITIALIZER, .consoles = json_object(), .seqs = json_object()};
    set_desired(&f, "{\"generation\": 5, \"instances\": [{\"instance_id\": \"" ID1 "\", \"driver\": \"sim\","
                    " \"vcpus\": 1, \"memory_mib\": 64, \"power\": \"running\", \"reboot_seq\": 0,"
                    " \"interfaces\": [{\"eni_id\": \"eni-1\", \"device\": \"vt-000000000001\", \"ip\": \"172.31.0.5\"}]},"
                    " {\"instance_id\": \"i-00000000000000bad\", \"driver\": \"qemu\", \"power\": \"running\"}]}");
    config_set(x->cfg, "agent.state_dir", x->dir);
    snprintf(x->drv_dir, sizeof x->drv_dir, "%s/%s/sim", x->dir, host);   /* <state_dir>/<host>/<driver> */
    config_set(x->cfg, "agent.drivers", "sim");
    config_set(x->cfg, "agent.max_parallel_boots", "1");
    instance_sync_opts_t o = {.cfg = x->cfg, .host_id = host,
                              .io = {.desired = fake_desired, .observed = fake_observed, .arg = &f}};
    verr_t e = {0};
    instance_sync_t *s = instance_sync_start(&o, &e);
    assert_non_null(s);
    json_t *inv = instance_sync_inventory(s);
    assert_string_equal(json_string_value(json_array_get(json_object_get(inv, "drivers"), 0)), "sim");
    assert_true(json_is_true(json_object_get(inv, "simulated")));
    assert_true(json_int(inv, "vcpus", 0) >= 1);
    json_decref(inv);

    /* an instance nobody desires (left by an earlier agent) */
    x->c = &cases[0];
    x->d = instance_sync_driver(s, "sim");
    ensure_ok(x, ID2, VM_POWER_RUNNING, 0);

    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    vm_status_t st = listed(x, ID1, NULL);
    assert_int_equal(st.power, VM_POWER_RUNNING);
    assert_int_equal(count_listed(x), 1);                   /* ID2 removed */
    json_t *r = reported(&f, ID1);
    assert_non_null(r);
    assert_string_equal(json_str(r, "power", ""), "running");
    assert_int_equal(json_int(r, "reboot_seq", -1), 0);
    unsigned char con[4096];
    size_t clen = 0;
    pthread_mutex_lock(&f.mu);
    const char *b64 = json_str(f.consoles, ID1, "");
    pthread_mutex_unlock(&f.mu);
    assert_int_equal(sodium_base642bin(con, sizeof con - 1, b64, strlen(b64), NULL, &clen, NULL,
                                       sodium_base64_VARIANT_ORIGINAL), 0);
    con[clen] = 0;
    assert_non_null(strstr((char *)con, "VIRGA-GUEST-READY instance-id=" ID1 " addr=172.31.0.5"));
    json_decref(r);
    r = reported(&f, "i-00000000000000bad");
    assert_non_null(r);
    assert_string_equal(json_str(r, "power", ""), "error");
    assert_non_null(strstr(json_str(r, "error", ""), "not offered"));
    json_decref(r);
    assert_null(reported(&f, ID2));
    pthread_mutex_lock(&f.mu);
    assert_int_equal(json_int(f.last, "generation", 0), 5);
    pthread_mutex_unlock(&f.mu);

    /* a spec the agent cannot take is reported, and what runs is left alone */
    set_desired(&f, "{\"generation\": 6, \"instances\": [{\"instance_id\": \"" ID1 "\", \"driver\": \"sim\","
                    " \"power\": \"hibernated\"}]}");
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    assert_int_equal(listed(x, ID1, NULL).power, VM_POWER_RUNNING);
    r = reported(&f, ID1);
    assert_non_null(strstr(json_str(r, "error", ""), "hibernated"));
    json_decref(r);

    /* reboot, then stop, through the loop */
    set_desired(&f, "{\"generation\": 6, \"instances\": [{\"instance_id\": \"" ID1 "\", \"driver\": \"sim\","
                    " \"power\": \"running\", \"reboot_seq\": 1}]}");
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    assert_int_equal(listed(x, ID1, NULL).reboot_seq, 1);
    r = reported(&f, ID1);
    assert_int_equal(json_int(r, "reboot_seq", -1), 1);
    assert_null(json_object_get(r, "error"));               /* a good spec clears it */
    json_decref(r);
    set_desired(&f, "{\"generation\": 7, \"instances\": [{\"instance_id\": \"" ID1 "\", \"driver\": \"sim\","
                    " \"power\": \"stopped\", \"reboot_seq\": 1}]}");
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    r = reported(&f, ID1);
    assert_string_equal(json_str(r, "power", ""), "stopped");
    json_decref(r);
    /* a console compute has is not sent again */
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    r = reported(&f, ID1);
    assert_null(json_object_get(r, "console"));
    json_decref(r);
    /* a report that never reached compute (reports get no reply): the pull says which
     * console compute keeps, and the console goes again */
    pthread_mutex_lock(&f.mu);
    json_object_del(f.seqs, ID1);
    json_object_del(f.consoles, ID1);
    pthread_mutex_unlock(&f.mu);
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    pthread_mutex_lock(&f.mu);
    assert_non_null(json_object_get(f.consoles, ID1));
    pthread_mutex_unlock(&f.mu);
    /* every report is numbered after the last */
    pthread_mutex_lock(&f.mu);
    json_int_t seq0 = json_int(f.last, "seq", 0);
    pthread_mutex_unlock(&f.mu);
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    pthread_mutex_lock(&f.mu);
    assert_true(seq0 > 0 && json_int(f.last, "seq", 0) > seq0);
    pthread_mutex_unlock(&f.mu);

    /* a pass with nothing new to say sends no report; the one with a pull (the timer's)
     * sends it anyway, in case the last was lost */
    pthread_mutex_lock(&f.mu);
    int n0 = f.reports;
    pthread_mutex_unlock(&f.mu);
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    pthread_mutex_lock(&f.mu);
    assert_int_equal(f.reports, n0 + 1);
    pthread_mutex_unlock(&f.mu);

    /* terminated: absent from the desired state, so removed and no longer reported */
    set_desired(&f, "{\"generation\": 8, \"instances\": []}");
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    assert_int_equal(count_listed(x), 0);
    assert_null(reported(&f, ID1));
    assert_gone(x, ID1, 0, 0);

    x->d = NULL;                /* closed by the loop */
    instance_sync_stop(s);
    json_decref(f.desired);
    json_decref(f.last);
    json_decref(f.consoles);
    json_decref(f.seqs);
}

static json_t *parse(const char *json)
{
    json_error_t je;
    json_t *d = json_loads(json, 0, &je);
    assert_non_null(d);
    return d;
}

static int pulls(fake_t *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->pulls;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* The power the driver lists the instance with, or -1 when absent. */
static int power_of(ctx_t *x, const char *id)
{
    vm_status_t *l = NULL;
    size_t k = 0;
    verr_t e;
    int p = -1;
    if (vm_driver_list(x->d, &l, &k, &e) < 0)
        return -1;
    for (size_t i = 0; i < k; i++)
        if (!strcmp(l[i].id, id))
            p = (int)l[i].power;
    free(l);
    return p;
}

/* Wait (at most 20 s: a loaded machine) until the loop made the driver list id so. */
static void wait_power(ctx_t *x, const char *id, int power)
{
    for (int i = 0; i < 2000 && power_of(x, id) != power; i++)
        usleep(10 * 1000);
    assert_int_equal(power_of(x, id), power);
}

#define SPEC(id, power, gen)                                                                                           \
    "{\"instance_id\": \"" id "\", \"driver\": \"sim\", \"vcpus\": 1, \"memory_mib\": 64, \"power\": \"" power "\", " \
    "\"reboot_seq\": 0, \"changed_gen\": " #gen "}"

static instance_sync_t *start_sync(ctx_t *x, fake_t *f, const char *interval_s)
{
    config_set(x->cfg, "agent.state_dir", x->dir);
    snprintf(x->drv_dir, sizeof x->drv_dir, "%s/%s/sim", x->dir, host);
    config_set(x->cfg, "agent.drivers", "sim");
    config_set(x->cfg, "agent.sync_interval_s", interval_s);
    instance_sync_opts_t o = {.cfg = x->cfg, .host_id = host,
                              .io = {.desired = fake_desired, .observed = fake_observed,
                                     .metadata = f->primed ? fake_metadata : NULL, .arg = f}};
    verr_t e = {0};
    instance_sync_t *s = instance_sync_start(&o, &e);
    assert_non_null(s);
    x->c = &cases[0];
    x->d = instance_sync_driver(s, "sim");
    return s;
}

/* start_sync's undoing: the loop stopped, the fake compute's documents freed. */
static void stop_sync(ctx_t *x, instance_sync_t *s, fake_t *f)
{
    x->d = NULL;
    instance_sync_stop(s);
    json_decref(f->desired);
    json_decref(f->last);
    json_decref(f->consoles);
    json_decref(f->seqs);
    json_decref(f->primed);
}

/* A doorbell with the next generation's changes is applied without a pull; one that
 * skips a generation makes the agent pull, which brings the change whose doorbell was
 * lost. The timer is far (60 s): every change below comes by a doorbell or its pull. */
static void test_doorbells(void **state)
{
    ctx_t *x = *state;
    fake_t f = {.mu = PTHREAD_MUTEX_INITIALIZER, .consoles = json_object(), .seqs = json_object()};
    set_desired(&f, "{\"generation\": 5, \"instances\": [" SPEC(ID1, "running", 5) "]}");
    instance_sync_t *s = start_sync(x, &f, "60");
    verr_t e = {0};
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    assert_int_equal(power_of(x, ID1), VM_POWER_RUNNING);
    for (int i = 0; i < 2000 && pulls(&f) < 2; i++)   /* the loop's own first pull, too */
        usleep(10 * 1000);
    int p0 = pulls(&f);
    assert_int_equal(p0, 2);

    /* generation 6: ID2 launched; its doorbell carries its spec */
    set_desired(&f, "{\"generation\": 6, \"instances\": [" SPEC(ID1, "running", 5) ", " SPEC(ID2, "running", 6) "]}");
    json_t *bell = parse("{\"generation\": 6, \"changes\": [" SPEC(ID2, "running", 6) "]}");
    instance_sync_doorbell(s, bell);
    json_decref(bell);
    wait_power(x, ID2, VM_POWER_RUNNING);
    /* generation 7: ID1 terminated ("gone"); the same doorbell again changes nothing */
    set_desired(&f, "{\"generation\": 7, \"instances\": [" SPEC(ID2, "running", 6) "]}");
    bell = parse("{\"generation\": 7, \"changes\": [{\"instance_id\": \"" ID1 "\", \"gone\": true, \"changed_gen\": 7}]}");
    instance_sync_doorbell(s, bell);
    instance_sync_doorbell(s, bell);
    json_decref(bell);
    wait_power(x, ID1, -1);
    assert_int_equal(pulls(&f), p0);   /* neither change needed a pull */

    /* generation 8 (ID2 stopped) is lost; generation 9's doorbell (ID1 launched again is
     * not possible: a new instance ID3) skips it, so the agent pulls and stops ID2 */
#define ID3 "i-0000000000000000b"
    set_desired(&f, "{\"generation\": 9, \"instances\": [" SPEC(ID2, "stopped", 8) ", " SPEC(ID3, "running", 9) "]}");
    bell = parse("{\"generation\": 9, \"changes\": [" SPEC(ID3, "running", 9) "]}");
    instance_sync_doorbell(s, bell);
    json_decref(bell);
    wait_power(x, ID2, VM_POWER_STOPPED);
    wait_power(x, ID3, VM_POWER_RUNNING);
    assert_int_equal(pulls(&f), p0 + 1);
    /* a doorbell without changes (an interface plugged in, an export) pulls too */
    bell = parse("{\"generation\": 10}");
    set_desired(&f, "{\"generation\": 10, \"instances\": [" SPEC(ID3, "running", 9) "]}");
    instance_sync_doorbell(s, bell);
    json_decref(bell);
    wait_power(x, ID2, -1);
    assert_true(pulls(&f) >= p0 + 2);
    pthread_mutex_lock(&f.mu);
    assert_int_equal(json_int(f.last, "generation", 0), 10);   /* what the reports say it has */
    pthread_mutex_unlock(&f.mu);

    stop_sync(x, s, &f);
}

/* What the instance's metadata document sent ahead with a doorbell (compute's, for a
 * guest about to boot) says, or "-" when none is held, "dropped" when dropped. */
static const char *primed_of(fake_t *f, const char *id, char *out, size_t n)
{
    pthread_mutex_lock(&f->mu);
    const json_t *md = json_object_get(f->primed, id);
    snprintf(out, n, "%s", !md ? "-" : json_is_null(md) ? "dropped" : json_str(md, "ip", "?"));
    pthread_mutex_unlock(&f->mu);
    return out;
}

#define MD(ip) ", \"metadata\": {\"vpc_id\": \"vpc-1\", \"ip\": \"" ip "\", \"document\": {}}}"
/* SPEC with a metadata document: the spec's closing brace replaced */
#define SPEC_MD(id, power, gen, ip)                                                                                    \
    "{\"instance_id\": \"" id "\", \"driver\": \"sim\", \"vcpus\": 1, \"memory_mib\": 64, \"power\": \"" power "\", " \
    "\"reboot_seq\": 0, \"changed_gen\": " #gen MD(ip)

/* A launch's doorbell carries its guest's metadata document: handed to the metadata
 * servers when its change is applied, never kept in the spec (a pull's spec, without it,
 * must not look like a change); a later change without one drops it; a pull keeps only
 * its instances'; a doorbell the pull already covered (doorbells crossing) still gives
 * it when the spec held is of that same change, and not when the spec held is newer. */
static void test_metadata_sent_ahead(void **state)
{
    ctx_t *x = *state;
    char b[64];
    fake_t f = {.mu = PTHREAD_MUTEX_INITIALIZER, .consoles = json_object(), .seqs = json_object(),
                .primed = json_object()};
    set_desired(&f, "{\"generation\": 5, \"instances\": [" SPEC(ID1, "running", 5) "]}");
    instance_sync_t *s = start_sync(x, &f, "60");
    verr_t e = {0};
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    for (int i = 0; i < 2000 && pulls(&f) < 2; i++)
        usleep(10 * 1000);
    int p0 = pulls(&f);

    /* generation 6: ID2 launched, with its document */
    set_desired(&f, "{\"generation\": 6, \"instances\": [" SPEC(ID1, "running", 5) ", " SPEC(ID2, "running", 6) "]}");
    json_t *bell = parse("{\"generation\": 6, \"changes\": [" SPEC_MD(ID2, "running", 6, "10.0.0.6") "]}");
    instance_sync_doorbell(s, bell);
    json_decref(bell);
    wait_power(x, ID2, VM_POWER_RUNNING);
    assert_string_equal(primed_of(&f, ID2, b, sizeof b), "10.0.0.6");
    assert_int_equal(pulls(&f), p0);
    /* generation 7: ID2 stopped (no document): what was sent ahead goes */
    set_desired(&f, "{\"generation\": 7, \"instances\": [" SPEC(ID1, "running", 5) ", " SPEC(ID2, "stopped", 7) "]}");
    bell = parse("{\"generation\": 7, \"changes\": [" SPEC(ID2, "stopped", 7) "]}");
    instance_sync_doorbell(s, bell);
    json_decref(bell);
    wait_power(x, ID2, VM_POWER_STOPPED);
    assert_string_equal(primed_of(&f, ID2, b, sizeof b), "dropped");

    /* generations 8 (ID3 launched) and 9 (ID4 launched) cross: 9's doorbell makes the
     * agent pull; then 8's comes, covered by the pull, and still gives ID3's document,
     * as 9's gives ID4's */
#define ID4 "i-0000000000000000c"
    set_desired(&f, "{\"generation\": 9, \"instances\": [" SPEC(ID1, "running", 5) ", " SPEC(ID2, "stopped", 7)
                    ", " SPEC(ID3, "running", 8) ", " SPEC(ID4, "running", 9) "]}");
    bell = parse("{\"generation\": 9, \"changes\": [" SPEC_MD(ID4, "running", 9, "10.0.0.9") "]}");
    instance_sync_doorbell(s, bell);
    json_decref(bell);
    wait_power(x, ID4, VM_POWER_RUNNING);
    assert_int_equal(pulls(&f), p0 + 1);
    assert_string_equal(primed_of(&f, ID4, b, sizeof b), "10.0.0.9");
    bell = parse("{\"generation\": 8, \"changes\": [" SPEC_MD(ID3, "running", 8, "10.0.0.8") "]}");
    instance_sync_doorbell(s, bell);
    json_decref(bell);
    for (int i = 0; i < 2000 && strcmp(primed_of(&f, ID3, b, sizeof b), "10.0.0.8"); i++)
        usleep(10 * 1000);
    assert_string_equal(primed_of(&f, ID3, b, sizeof b), "10.0.0.8");
    /* a late doorbell of an older change of ID4 (held: 9) gives nothing */
    bell = parse("{\"generation\": 4, \"changes\": [" SPEC_MD(ID4, "running", 4, "10.0.0.4") "]}");
    instance_sync_doorbell(s, bell);
    json_decref(bell);
    /* a pull without ID3 (terminated, its doorbell lost) drops its document, keeps ID4's */
    set_desired(&f, "{\"generation\": 11, \"instances\": [" SPEC(ID1, "running", 5) ", " SPEC(ID2, "stopped", 7)
                    ", " SPEC(ID4, "running", 9) "]}");
    bell = parse("{\"generation\": 11}");
    instance_sync_doorbell(s, bell);
    json_decref(bell);
    wait_power(x, ID3, -1);
    assert_string_equal(primed_of(&f, ID3, b, sizeof b), "-");
    assert_string_equal(primed_of(&f, ID4, b, sizeof b), "10.0.0.9");
    /* the specs held have no document: the pass after a pull of the same specs finds
     * nothing changed (ID4 still the same boot) */
    assert_int_equal(power_of(x, ID4), VM_POWER_RUNNING);
    stop_sync(x, s, &f);
}

/* A change whose doorbell never came (compute killed after its commit, the broker
 * away) is found by the reconcile timer's pull, however many other doorbells keep the
 * loop busy. */
static void test_timer_heals_a_lost_doorbell(void **state)
{
    ctx_t *x = *state;
    fake_t f = {.mu = PTHREAD_MUTEX_INITIALIZER, .consoles = json_object(), .seqs = json_object()};
    set_desired(&f, "{\"generation\": 3, \"instances\": [" SPEC(ID1, "running", 3) "]}");
    instance_sync_t *s = start_sync(x, &f, "1");
    verr_t e = {0};
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    assert_int_equal(power_of(x, ID1), VM_POWER_RUNNING);
    set_desired(&f, "{\"generation\": 4, \"instances\": [" SPEC(ID1, "stopped", 4) "]}");
    wait_power(x, ID1, VM_POWER_STOPPED);
    stop_sync(x, s, &f);
}

/* An instance terminated while it boots is removed at once: the plan that no longer
 * wants it running ends the boot's wait (vm_spec_t's abandon), so its removal does not
 * wait for the boot's timeout (a QEMU guest's terminate once waited for the whole
 * agent.qemu.boot_timeout_s). The simulated boot here lasts 900 s unless abandoned. */
static void test_terminate_during_a_boot(void **state)
{
    ctx_t *x = *state;
    fake_t f = {.mu = PTHREAD_MUTEX_INITIALIZER, .consoles = json_object(), .seqs = json_object()};
    config_set(x->cfg, "agent.sim.boot_delay_ms", "900000");
    set_desired(&f, "{\"generation\": 2, \"instances\": [" SPEC(ID1, "running", 2) "]}");
    instance_sync_t *s = start_sync(x, &f, "60");
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/%s", x->drv_dir, ID1);
    struct stat sb;
    for (int i = 0; i < 2000 && stat(dir, &sb) < 0; i++)   /* the boot under way */
        usleep(10 * 1000);
    assert_int_equal(stat(dir, &sb), 0);
    set_desired(&f, "{\"generation\": 3, \"instances\": []}");
    json_t *bell = parse("{\"generation\": 3, \"changes\": [{\"instance_id\": \"" ID1 "\", \"gone\": true, "
                         "\"changed_gen\": 3}]}");
    instance_sync_doorbell(s, bell);
    json_decref(bell);
    for (int i = 0; i < 3000 && stat(dir, &sb) == 0; i++)   /* 30 s, against the boot's 900 */
        usleep(10 * 1000);
    assert_int_not_equal(stat(dir, &sb), 0);
    wait_power(x, ID1, -1);   /* the driver forgets it just after its directory */
    stop_sync(x, s, &f);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    snprintf(host, sizeof host, "hs%d", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_sync_loop, setup, teardown, (void *)&cases[0]),
        cmocka_unit_test_prestate_setup_teardown(test_doorbells, setup, teardown, (void *)&cases[0]),
        cmocka_unit_test_prestate_setup_teardown(test_metadata_sent_ahead, setup, teardown, (void *)&cases[0]),
        cmocka_unit_test_prestate_setup_teardown(test_terminate_during_a_boot, setup, teardown, (void *)&cases[0]),
        cmocka_unit_test_prestate_setup_teardown(test_timer_heals_a_lost_doorbell, setup, teardown,
                                                 (void *)&cases[0]),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
