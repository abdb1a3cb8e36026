/* linux_commit.c - the linux driver's deferred commands: many units, one command per
 * namespace.
 *
 * An apply's cost is its fork+execs (2-10 ms each, more under load), and a launch waits
 * for the apply that plugs its interface. Ensured one by one, a new interface was an `nft`
 * per security group piece (the members' set, its chains), `ip netns add` and three
 * `ip -batch`, and 18 launches arriving together paid all of that 18 times. So the
 * pieces that many units share a namespace for are not run by their ensure or remove but
 * collected here and run by the reconciler's commit (dp_ops_t.commit):
 *
 *   1. host namespace, `ip -force -batch`: removed interfaces' host ends deleted
 *      (unplugged first: their rules go after them, never before), all in one request
 *      (put in one device group, the group deleted);
 *   2. root, `ip -force -batch`: their stand-in namespaces deleted;
 *   3. host namespace, one `nft -f` transaction: every security group piece removed or
 *      ensured (interfaces' chains and map elements, members' sets, groups, VPCs), in the
 *      order the reconciler asked for them;
 *   4. root, `ip -batch`: the new stand-ins' namespaces added;
 *   5. each new stand-in, `ip -batch`: the veth made from inside (its peer, the host end,
 *      goes straight into the host namespace, down), `lo` and `eth0` up, the address and
 *      the default route: no carrier yet, so a guest waiting for address and carrier
 *      does not start against it;
 *   6. host namespace, `ip -batch`: each new host end onto its VPC bridge and up (the
 *      carrier), then named with its fingerprint, last.
 *
 * Steps with nothing to do run nothing: a launch is steps 3-6, four commands, however many
 * interfaces it brings. A killed applier leaves what a killed ensure left before (an
 * unlabelled host end, a stand-in without its veth), which the next apply observes and
 * finishes or rebuilds; a failed transaction of step 3 marks the tables broken (as a
 * piece's own did) so the next pass rewrites them whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linux.h"

static const char *const IP_BATCH[] = {"ip", "-batch", "-", NULL};
static const char *const IP_FORCE_BATCH[] = {"ip", "-force", "-batch", "-", NULL};
static const char *const NFT_F[] = {"nft", "-f", "-", NULL};

static void clear(strbuf_t *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

lx_pending_t *lx_pending(dp_driver_t *d, const char *hns)
{
    lx_pending_t *p = &((lx_driver_t *)d)->pending;
    /* one host per apply: a pending list of another host's is run first */
    if (p->hns[0] && strcmp(p->hns, hns)) {
        verr_t e = {0};
        if (lx_commit(d, &e) < 0)
            fprintf(stderr, "datapath: %s: deferred commands failed: %s\n", p->hns, e.message);
    }
    snprintf(p->hns, sizeof p->hns, "%s", hns);
    return p;
}

void lx_defer_inst(lx_pending_t *p, const char *ns, const char *cmds)
{
    p->inst = xrealloc(p->inst, (p->n_inst + 1) * sizeof *p->inst);
    snprintf(p->inst[p->n_inst].ns, sizeof p->inst[p->n_inst].ns, "%s", ns);
    p->inst[p->n_inst++].cmds = xstrdup(cmds);
}

void lx_discard(dp_driver_t *d)
{
    lx_pending_t *p = &((lx_driver_t *)d)->pending;
    clear(&p->unplug);
    clear(&p->ns_del);
    clear(&p->nft);
    clear(&p->ns_add);
    clear(&p->plug);
    for (size_t i = 0; i < p->n_inst; i++) free(p->inst[i].cmds);
    free(p->inst);
    memset(p, 0, sizeof *p);
}

/* The pieces' transaction failed: the tables are not what the last apply or observation
 * said. Mark them broken (their `fp` chain deleted) so the next observation rewrites them
 * whole, and ask for it. */
static int pieces_failed(const lx_pending_t *p, verr_t *err)
{
    fprintf(stderr, "datapath: %s: nftables change of %d security group pieces failed (%s); rewriting the "
            "host's rules\n", p->hns, p->nft_pieces, err->message[0] ? err->message : "?");
    dp_runv(p->hns, DP_QUIET, NULL, "nft", "delete", "chain", "inet", "virga_sg", "fp", NULL);
    return 1;
}

int lx_commit(dp_driver_t *d, verr_t *e)
{
    lx_pending_t *p = &((lx_driver_t *)d)->pending;
    int again = 0, rc = 0;
    /* removals never fail an apply (what is gone is gone): quiet, every line tried */
    if (p->unplug.len) {
        strbuf_puts(&p->unplug, "link del group " LX_GONE_GROUP "\n");
        dp_run(p->hns, IP_FORCE_BATCH, p->unplug.s, NULL, DP_QUIET, NULL);
    }
    if (p->ns_del.len) dp_run(NULL, IP_FORCE_BATCH, p->ns_del.s, NULL, DP_QUIET, NULL);
    if (p->nft.len) {
        verr_t err = {0};
        if (dp_run(p->hns, NFT_F, p->nft.s, NULL, 0, &err) < 0) again = pieces_failed(p, &err);
    }
    if (p->ns_add.len) rc = dp_run(NULL, IP_BATCH, p->ns_add.s, NULL, 0, e);
    for (size_t i = 0; rc == 0 && i < p->n_inst; i++) rc = dp_run(p->inst[i].ns, IP_BATCH, p->inst[i].cmds, NULL, 0, e);
    if (rc == 0 && p->plug.len) rc = dp_run(p->hns, IP_BATCH, p->plug.s, NULL, 0, e);
    lx_discard(d);
    return rc < 0 ? -1 : again;
}
