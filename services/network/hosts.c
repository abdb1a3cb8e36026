/* hosts.c - the hosts the datapath runs on, as the network service knows them: each has
 * an address on the project's underlay bridge (from network.underlay_cidr, default
 * 10.254.0.0/24, starting at .11) and a generation that grows in the same transaction as
 * every change touching the host, so an agent can tell whether its copy is current. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "jsonutil.h"
#include "network.h"

int hosts_valid_name(const char *host, verr_t *e)
{
    size_t n = host ? strlen(host) : 0;
    int ok = n >= 1 && n <= 63;
    for (size_t i = 0; ok && i < n; i++)
        ok = (host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' && host[i] <= 'Z') ||
             (host[i] >= '0' && host[i] <= '9') || host[i] == '-' || host[i] == '_' || host[i] == '.';
    if (!ok)
        return verr_set(e, 400, "InvalidParameterValue", "host is 1 to 63 letters, digits, '-', '_' or '.'");
    return 0;
}

/* The hosts this process has seen in the table. A host's row is never deleted, so once
 * seen it needs no statement again: every launch's port asked for its host's row (a
 * statement a launch, issue 11's launch rate). Only a row the first read found is
 * remembered: one this process inserts may yet be rolled back with its transaction.
 * Bounded: past KNOWN_MAX hosts (a scale test's simulated ones) the rest are read. */
#define KNOWN_MAX 256
static struct {
    pthread_mutex_t lock;
    int n;
    char name[KNOWN_MAX][64];
} known = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int known_has(const char *host)
{
    int found = 0;
    pthread_mutex_lock(&known.lock);
    for (int i = 0; i < known.n && !found; i++)
        found = !strcmp(known.name[i], host);
    pthread_mutex_unlock(&known.lock);
    return found;
}

static void known_add(const char *host)
{
    pthread_mutex_lock(&known.lock);
    int i = 0;
    while (i < known.n && strcmp(known.name[i], host))
        i++;
    if (i == known.n && known.n < KNOWN_MAX && strlen(host) < sizeof known.name[0])
        snprintf(known.name[known.n++], sizeof known.name[0], "%s", host);
    pthread_mutex_unlock(&known.lock);
}

int hosts_ensure(db_t *db, service_t *svc, const char *host, verr_t *e)
{
    if (known_has(host))
        return 0;
    const char *p[] = {host};
    PG_AUTO PGresult *r = db_prepared(db, e, "host_find", "SELECT 1 FROM hosts WHERE name = $1", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r)) {
        known_add(host);
        return 0;
    }
    const char *block = config_str(svc->cfg, "network.underlay_cidr", "10.254.0.0/24");
    cidr_t c;
    uint32_t first, last;
    if (cidr_parse(block, &c) < 0 || !cidr_usable(&c, &first, &last))
        return verr_set(e, 500, "InternalError", "network.underlay_cidr '%.32s' is not a usable CIDR block", block);
    char net[CIDR_STR_MAX], lo[16], hi[16];
    cidr_ip_format(c.addr, net);
    snprintf(lo, sizeof lo, "%u", 11 < cidr_size(&c) - 1 ? 11u : first - c.addr);
    snprintf(hi, sizeof hi, "%u", last - c.addr);
    const char *q[] = {host, net, lo, hi};
    if (db_lock_xact(db, "hosts", "underlay", e) < 0)
        return -1;
    PG_AUTO PGresult *i = db_prepared(db, e, "host_insert",
        "INSERT INTO hosts (name, underlay_ip) SELECT $1, $2::inet + s FROM generate_series($3::bigint, $4::bigint) s "
        "WHERE NOT EXISTS (SELECT 1 FROM hosts WHERE underlay_ip = $2::inet + s) ORDER BY s LIMIT 1 "
        "ON CONFLICT (name) DO NOTHING", 4, q);
    if (!i)
        return -1;
    PG_AUTO PGresult *again = db_prepared(db, e, "host_find", "SELECT 1 FROM hosts WHERE name = $1", 1, p);
    if (!again)
        return -1;
    if (!PQntuples(again))
        return verr_set(e, 503, "InsufficientCapacity", "No underlay address is left in %s for host %.64s", block, host);
    return 0;
}

int hosts_touch_vpc(db_t *db, const char *vpc_id, const char *extra_host, verr_t *e)
{
    const char *p[] = {vpc_id, extra_host};
    /* the VPC's own generation with its hosts': what desired_vpc.c shares between them */
    PG_AUTO PGresult *r = db_prepared(db, e, "host_touch", "WITH " HOSTS_TOUCH_VPC_CTES("$1", "$2") " SELECT", 2, p);
    return r ? 0 : -1;
}
