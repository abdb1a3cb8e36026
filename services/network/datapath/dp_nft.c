/* dp_nft.c - nftables scripts and commands through libnftables, in the namespace's own
 * thread: the same parser and netlink transaction as the `nft` program (which is a small
 * front end of this library), without its fork+exec. An apply on a launch's path ran two
 * `nft -f -` (the router's NAT, the host's security group transaction) and a terminate two
 * more; perf put most of each in the loader, page faults of a fresh process and its exit
 * (docs/performance.md, "Agent CPU per launch").
 *
 * A context per run, made and freed on that thread: its netlink socket belongs to the
 * namespace it was opened in, and its cache to that one run, as with the program. One run
 * at a time (the library keeps some state in globals). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nftables/libnftables.h>

#include "dp_inproc.h"

static pthread_mutex_t nft_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct nft_run {
    const char *script;
    int json;
    strbuf_t *out, *err;
} nft_run_t;

static int nft_run(void *p)
{
    nft_run_t *r = p;
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx) {
        strbuf_puts(r->err, "cannot make an nftables context\n");
        return -1;
    }
    if (r->json) nft_ctx_output_set_flags(ctx, nft_ctx_output_get_flags(ctx) | NFT_CTX_OUTPUT_JSON);
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    int rc = nft_run_cmd_from_buffer(ctx, r->script) == 0 ? 0 : -1;
    const char *o = nft_ctx_get_output_buffer(ctx), *e = nft_ctx_get_error_buffer(ctx);
    if (o && r->out) strbuf_puts(r->out, o);
    if (e) strbuf_puts(r->err, e);
    nft_ctx_free(ctx);
    return rc;
}

int dp_nft_inproc(const char *netns, const char *const argv[], const char *input, strbuf_t *out, strbuf_t *err)
{
    nft_run_t r = {.out = out, .err = err};
    size_t i = 1;
    if (argv[i] && !strcmp(argv[i], "-j")) {
        r.json = 1;
        i++;
    }
    strbuf_t cmd = {0};
    if (argv[i] && !strcmp(argv[i], "-f")) {
        if (!argv[i + 1] || strcmp(argv[i + 1], "-") || argv[i + 2] || !input) return 1;
        r.script = input;
    } else {
        /* one command: its words, as the program joins them (none of ours needs quoting) */
        for (; argv[i]; i++) {
            if (argv[i][0] == '-' || strpbrk(argv[i], " \t\"'\\;")) {
                free(cmd.s);
                return 1;
            }
            if (cmd.len) strbuf_putc(&cmd, ' ');
            strbuf_puts(&cmd, argv[i]);
        }
        if (!cmd.len) return 1;
        r.script = cmd.s;
    }
    char why[600] = "";
    pthread_mutex_lock(&nft_lock);
    int rc = dp_in_netns(netns, nft_run, &r, why, sizeof why);
    pthread_mutex_unlock(&nft_lock);
    if (why[0]) strbuf_printf(err, "%s\n", why);
    free(cmd.s);
    return rc < 0 ? -1 : 0;
}
