/* cli.c - virga-datapath: drive a host's datapath by hand or from tests.
 *
 *   virga-datapath [--driver linux|fake] [--prefix virga-] [--state-dir DIR] apply FILE|- [FILE...]
 *                                            the first observed and applied whole, each next one
 *                                            as the agent applies a new document (only what
 *                                            differs from the last, dp_apply_changes)
 *   virga-datapath [...] observe HOST        units found, as JSON
 *   virga-datapath [...] teardown HOST       everything of HOST, its namespace included
 *   virga-datapath [...] teardown-all        every host of the prefix, underlay and outside
 *
 * Until compute's agent embeds the datapath this is its applying process: each run is
 * stateless, so a killed run is repaired by the next apply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datapath.h"
#include "dp_exec.h"
#include "jsonutil.h"

static char *read_all(FILE *f)
{
    char *s = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&s, &n);
    char buf[8192];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, r, m);
    fclose(m);
    return s;
}

/* The document is read and checked before the driver is opened: opening takes the state
 * directory's lock, and an applier still waiting for its input (a pipe whose writer is
 * slow) must not hold every other applier out meanwhile. */
static dp_desired_t *read_desired(const char *file, verr_t *e)
{
    FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
    if (!f) {
        verr_set(e, 400, "InvalidParameterValue", "cannot open %s", file);
        return NULL;
    }
    AUTOFREE char *text = read_all(f);
    if (f != stdin) fclose(f);
    return dp_desired_parse(text, e);
}

static int cmd_apply(dp_driver_t *d, dp_desired_t *want, int changes, verr_t *e)
{
    dp_stats_t st = {0};
    struct timespec t0, t1;
    long execs = dp_exec_count(), procs = dp_proc_count();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = changes ? dp_apply_changes(d, want, &st, e) : dp_apply(d, want, &st, e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == 0) printf("{\"host\": \"%s\", \"generation\": %lld, \"ensured\": %d, \"removed\": %d}\n",
                        want->host, want->generation, st.ensured, st.removed);
    /* VIRGA_DP_TRACE=1: what the apply cost, after its commands' own lines */
    if (getenv("VIRGA_DP_TRACE"))
        fprintf(stderr, "dp: apply of generation %lld (%s): %d ensured, %d removed, %ld commands (%ld processes), "
                "%.1f ms\n", want->generation, changes ? "changes" : "observed", st.ensured, st.removed,
                dp_exec_count() - execs, dp_proc_count() - procs,
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    return rc;
}

static int cmd_observe(dp_driver_t *d, const char *host, verr_t *e)
{
    dp_units_t u = {0};
    if (dp_observe(d, host, &u, e) < 0) {
        dp_units_clear(&u);
        return -1;
    }
    JSON_AUTO json_t *arr = json_array();
    for (size_t i = 0; i < u.n; i++)
        json_array_append_new(arr, json_pack("{ssssss}", "kind", dp_kind_name(u.v[i].kind),
                                             "key", u.v[i].key, "fp", u.v[i].fp));
    JSON_AUTO json_t *o = json_pack("{sssO}", "host", host, "units", arr);
    AUTOFREE char *s = json_compact(o);
    puts(s);
    dp_units_clear(&u);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: virga-datapath [--driver linux|fake] [--prefix virga-...] "
                    "[--state-dir DIR] apply FILE|- | observe HOST | teardown HOST | teardown-all\n");
    return 2;
}

int main(int argc, char **argv)
{
    dp_config_t cfg = {.prefix = "virga-", .state_dir = "/run/virga/datapath"};
    const char *driver = "linux";
    int i = 1;
    for (; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
        if (!strcmp(argv[i], "--driver")) driver = argv[i + 1];
        else if (!strcmp(argv[i], "--prefix")) cfg.prefix = argv[i + 1];
        else if (!strcmp(argv[i], "--state-dir")) cfg.state_dir = argv[i + 1];
        else return usage();
    }
    if (i >= argc) return usage();
    const char *cmd = argv[i], *arg = i + 1 < argc ? argv[i + 1] : NULL;
    verr_t e = {0};
    dp_desired_t *want = NULL;
    if (!strcmp(cmd, "apply") && arg && !(want = read_desired(arg, &e))) {
        fprintf(stderr, "%s: %s\n", e.code, e.message);
        return 1;
    }
    dp_driver_t *d = dp_open(driver, &cfg, &e);
    int rc = -1;
    if (d) {
        if (want) {
            rc = cmd_apply(d, want, 0, &e);
            /* the next documents as the agent applies them, each on what the last one left */
            for (int f = i + 2; want && rc == 0 && f < argc; f++) {
                dp_desired_free(want);
                if (!(want = read_desired(argv[f], &e))) rc = -1;
                else rc = cmd_apply(d, want, 1, &e);
            }
        }
        else if (!strcmp(cmd, "observe") && arg) rc = cmd_observe(d, arg, &e);
        else if (!strcmp(cmd, "teardown") && arg) rc = dp_teardown(d, arg, &e);
        else if (!strcmp(cmd, "teardown-all")) rc = dp_teardown_all(d, &e);
        else {
            dp_close(d);
            return usage();
        }
        dp_close(d);
    }
    if (want) dp_desired_free(want);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", e.code, e.message);
        return 1;
    }
    return 0;
}
