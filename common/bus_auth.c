/* bus_auth.c - principals, credentials, the principals file, and message signatures
 * (bus_auth.h, docs/security.md). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bus_auth.h"
#include "jsonutil.h"

/* The fixed principals: which kind each is and whether it may name the tenant a request
 * acts for. The gateway and the object store check tenants' signatures; image and compute
 * act for the tenant whose request they serve (image asks the object store for grants as
 * that account); virgadm is the operator. Identity, network and accounting never speak
 * for a tenant, nor does any agent: a host is the least trusted part of a cloud. billing
 * is an external billing system's: it only reads virga.usage (no handler lists it). */
static const struct {
    const char *name;
    unsigned kind;
    int asserts_callers;
} fixed[] = {
    {"identity", BUS_P_IDENTITY, 0},
    {"compute", BUS_P_COMPUTE, 1},
    {"image", BUS_P_IMAGE, 1},
    {"network", BUS_P_NETWORK, 0},
    {"objectstore", BUS_P_OBJECTSTORE, 1},
    {"gateway", BUS_P_GATEWAY, 1},
    {"accounting", BUS_P_ACCOUNTING, 0},
    {"virgadm", BUS_P_OPERATOR, 1},
    {"billing", BUS_P_BILLING, 0},
};

int bus_name_valid(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

int bus_principal_parse(const char *name, bus_principal_t *out, verr_t *e)
{
    memset(out, 0, sizeof *out);
    if (!name || !bus_name_valid(name, BUS_PRINCIPAL_MAX - 1))
        return verr_set(e, 403, "AccessDenied", "'%.80s' is not a bus principal", name ? name : "");
    snprintf(out->name, sizeof out->name, "%s", name);
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(name, fixed[i].name)) {
            out->kind = fixed[i].kind;
            out->asserts_callers = fixed[i].asserts_callers;
            return 0;
        }
    if (!strncmp(name, "agent-", 6) && name[6]) {
        out->kind = BUS_P_AGENT;
        out->host = out->name + 6;
        return 0;
    }
    if (!strncmp(name, "test-", 5) && name[5]) {
        out->kind = BUS_P_TEST;
        out->asserts_callers = !strncmp(name, "test-asserts", 12);
        return 0;
    }
    return verr_set(e, 403, "AccessDenied", "'%.80s' is not a bus principal", name);
}

/* ---- files ------------------------------------------------------------------------- */

static json_t *load_json(const char *path, int secret, verr_t *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        verr_set(e, 500, "InvalidConfig", "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > 1 << 20) {
        close(fd);
        verr_set(e, 500, "InvalidConfig", "%s is not a readable file under 1 MiB", path);
        return NULL;
    }
    if (secret && (st.st_mode & 077)) {
        close(fd);
        verr_set(e, 500, "InvalidConfig", "%s holds a secret but others may read it (mode %03o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
        return NULL;
    }
    char *buf = xmalloc((size_t)st.st_size + 1);
    ssize_t n = read(fd, buf, (size_t)st.st_size);
    close(fd);
    json_t *j = n >= 0 ? json_parse_bounded(buf, (size_t)n, 1 << 20) : NULL;
    if (secret)
        sodium_memzero(buf, (size_t)st.st_size);
    free(buf);
    if (!json_is_object(j)) {
        json_decref(j);
        verr_set(e, 500, "InvalidConfig", "%s is not a JSON object", path);
        return NULL;
    }
    return j;
}

/* Write path atomically (a temporary file renamed over it) with the given mode. */
static int save_json(const char *path, const json_t *j, mode_t mode, verr_t *e)
{
    AUTOFREE char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return verr_set(e, 500, "InternalError", "cannot write %s: %s", tmp, strerror(errno));
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    size_t len = strlen(s);
    int ok = fchmod(fd, mode) == 0 && write(fd, s, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    sodium_memzero(s, len);
    free(s);
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return verr_set(e, 500, "InternalError", "cannot write %s: %s", path, strerror(errno));
    }
    return 0;
}

int bus_credential_load(const char *path, bus_credential_t *c, verr_t *e)
{
    memset(c, 0, sizeof *c);
    JSON_AUTO json_t *j = load_json(path, 1, e);
    if (!j)
        return -1;
    const char *name = json_str(j, "principal", ""), *pw = json_str(j, "password", ""),
               *key = json_str(j, "signing_key", "");
    unsigned char seed[crypto_sign_SEEDBYTES];
    size_t seedlen = 0;
    bus_principal_t p;
    int ok = bus_principal_parse(name, &p, e) == 0 && strlen(pw) >= 16 && strlen(pw) < sizeof c->password &&
             sodium_base642bin(seed, sizeof seed, key, strlen(key), NULL, &seedlen, NULL,
                               sodium_base64_VARIANT_ORIGINAL) == 0 && seedlen == sizeof seed;
    if (!ok) {
        sodium_memzero(seed, sizeof seed);
        return verr_set(e, 500, "InvalidConfig", "%s is not a bus credential (principal, password, signing_key)", path);
    }
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    crypto_sign_seed_keypair(pk, c->sk, seed);
    sodium_memzero(seed, sizeof seed);
    snprintf(c->principal, sizeof c->principal, "%s", name);
    snprintf(c->password, sizeof c->password, "%s", pw);
    return 0;
}

void bus_credential_wipe(bus_credential_t *c) { sodium_memzero(c, sizeof *c); }

int bus_credential_create(const char *name, const char *path, const char *pubs, verr_t *e)
{
    bus_principal_t p;
    if (bus_principal_parse(name, &p, e) < 0)
        return -1;
    unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES],
        rnd[24];
    randombytes_buf(seed, sizeof seed);
    randombytes_buf(rnd, sizeof rnd);
    crypto_sign_seed_keypair(pk, sk, seed);
    char seed64[64], pw[64], pk64[64];
    sodium_bin2base64(seed64, sizeof seed64, seed, sizeof seed, sodium_base64_VARIANT_ORIGINAL);
    /* the password goes into SCRAM and JAAS-style strings: no quotes, commas or '=' */
    sodium_bin2base64(pw, sizeof pw, rnd, sizeof rnd, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_bin2base64(pk64, sizeof pk64, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
    json_t *cred = json_pack("{s:s, s:s, s:s}", "principal", name, "password", pw, "signing_key", seed64);
    int rc = save_json(path, cred, 0600, e);
    json_decref(cred);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(seed64, sizeof seed64);
    sodium_memzero(pw, sizeof pw);
    if (rc < 0)
        return -1;
    json_t *all = access(pubs, F_OK) == 0 ? load_json(pubs, 0, e) : json_object();
    if (!all)
        return -1;
    json_t *keys = json_object_get(all, "principals");
    if (!json_is_object(keys)) {
        keys = json_object();
        json_object_set_new(all, "principals", keys);
    }
    json_object_set_new(keys, name, json_string(pk64));
    rc = save_json(pubs, all, 0644, e);
    json_decref(all);
    return rc;
}

/* ---- the principals file ------------------------------------------------------------- */

struct bus_keys {
    char *path;
    pthread_mutex_t mu;
    json_t *keys;          /* name -> base64 public key */
    struct timespec mtime;
    time_t checked;
};

static int keys_reload(bus_keys_t *k, verr_t *e)
{
    struct stat st;
    if (stat(k->path, &st) < 0)
        return verr_set(e, 500, "InvalidConfig", "cannot read the principals file %s: %s", k->path, strerror(errno));
    if (k->keys && st.st_mtim.tv_sec == k->mtime.tv_sec && st.st_mtim.tv_nsec == k->mtime.tv_nsec)
        return 0;
    json_t *all = load_json(k->path, 0, e);
    json_t *keys = json_object_get(all, "principals");
    if (!json_is_object(keys)) {
        json_decref(all);
        return verr_set(e, 500, "InvalidConfig", "%s has no \"principals\" object", k->path);
    }
    json_decref(k->keys);
    k->keys = json_incref(keys);
    json_decref(all);
    k->mtime = st.st_mtim;
    return 0;
}

bus_keys_t *bus_keys_open(const char *path, verr_t *e)
{
    bus_keys_t *k = xcalloc(1, sizeof *k);
    k->path = xstrdup(path);
    pthread_mutex_init(&k->mu, NULL);
    if (keys_reload(k, e) < 0) {
        bus_keys_free(k);
        return NULL;
    }
    k->checked = time(NULL);
    return k;
}

void bus_keys_free(bus_keys_t *k)
{
    if (!k)
        return;
    json_decref(k->keys);
    pthread_mutex_destroy(&k->mu);
    free(k->path);
    free(k);
}

int bus_keys_get(bus_keys_t *k, const char *name, unsigned char pk[crypto_sign_PUBLICKEYBYTES])
{
    pthread_mutex_lock(&k->mu);
    const char *b64 = json_string_value(json_object_get(k->keys, name));
    time_t now = time(NULL);
    if (!b64 && now != k->checked) {
        verr_t e;
        k->checked = now;
        keys_reload(k, &e);
        b64 = json_string_value(json_object_get(k->keys, name));
    }
    size_t len = 0;
    int ok = b64 && sodium_base642bin(pk, crypto_sign_PUBLICKEYBYTES, b64, strlen(b64), NULL, &len, NULL,
                                      sodium_base64_VARIANT_ORIGINAL) == 0 && len == crypto_sign_PUBLICKEYBYTES;
    pthread_mutex_unlock(&k->mu);
    return ok ? 0 : -1;
}

/* What is signed: the topic, a NUL, then the payload, as one multi-part message. */
static void signed_state(crypto_sign_state *st, const char *topic, const void *payload, size_t len)
{
    crypto_sign_init(st);
    crypto_sign_update(st, (const unsigned char *)topic, strlen(topic) + 1);
    crypto_sign_update(st, payload, len);
}

void bus_sign(const bus_credential_t *c, const char *topic, const void *payload, size_t len,
              unsigned char sig[BUS_SIG_BYTES])
{
    crypto_sign_state st;
    signed_state(&st, topic, payload, len);
    crypto_sign_final_create(&st, sig, NULL, c->sk);
}

int bus_verify(bus_keys_t *k, const char *name, const char *topic, const void *payload, size_t len,
               const unsigned char *sig, size_t siglen)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    if (!k || !name || !sig || siglen != BUS_SIG_BYTES || bus_keys_get(k, name, pk) < 0)
        return -1;
    crypto_sign_state st;
    signed_state(&st, topic, payload, len);
    return crypto_sign_final_verify(&st, (unsigned char *)sig, pk) == 0 ? 0 : -1;
}
