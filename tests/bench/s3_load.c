/* s3_load - S3 PUT/GET load against any S3 endpoint (Virga's object store, radosgw),
 * the same client for both so the figures compare.
 *
 *   s3_load --endpoint http://127.0.0.1:P --bucket B --access-key AK --secret-key SK
 *           [--region us-east-1] [--size 4096] [--threads 16] [--seconds 10] [--objects 256]
 *           [--checksum crc32|crc32c|crc64nvme|sha1|sha256] [--phase PUT|GET]
 *
 * Creates the bucket if needed, then runs a PUT phase (objects obj-0..obj-N-1 overwritten
 * round-robin) and a GET phase over the same keys, each bounded by --seconds, and prints
 * one line per phase: ops/s, MB/s, p50/p99 latency, errors. Requests are SigV4-signed
 * with UNSIGNED-PAYLOAD so the client spends no time hashing bodies. --checksum sends what
 * today's SDKs send: each PUT with x-amz-checksum-<alg> (computed once, the body never
 * changes) and x-amz-sdk-checksum-algorithm, each GET with x-amz-checksum-mode: ENABLED,
 * so the server verifies and returns checksums. --phase runs only one phase (GET needs the
 * objects a PUT phase left). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checksum.h"
#include "loadgen.h"
#include "sigv4.h"

static const char *endpoint, *bucket, *ak, *sk, *region = "us-east-1";
static size_t size = 4096;
static int nthreads = 16, nobjects = 256;
static double seconds = 10;
static char *payload;
static ck_alg_t ck_alg = CK_NONE;
static const char *only;
static char ck_b64_value[CK_B64_MAX];

/* Sign one request; headers go into *list. */
static struct curl_slist *sign(const char *method, const char *path)
{
    char amz[17], day[9], host[256];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(amz, sizeof amz, "%Y%m%dT%H%M%SZ", &tm);
    memcpy(day, amz, 8);
    day[8] = 0;
    const char *h = strstr(endpoint, "//");
    snprintf(host, sizeof host, "%s", h ? h + 2 : endpoint);
    sigv4_header_t hdrs[5] = {{"host", host}, {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}, {"x-amz-date", amz},
                              {"", ""}, {"", ""}};
    size_t nh = 3;
    char signed_headers[160] = "host;x-amz-content-sha256;x-amz-date";
    int put = !strcmp(method, "PUT") && strchr(path + 1, '/');
    if (ck_alg != CK_NONE && put) {
        hdrs[nh++] = (sigv4_header_t){ck_header(ck_alg), ck_b64_value};
        hdrs[nh++] = (sigv4_header_t){"x-amz-sdk-checksum-algorithm", ck_name(ck_alg)};
        snprintf(signed_headers, sizeof signed_headers, "host;%s;x-amz-content-sha256;x-amz-date;"
                 "x-amz-sdk-checksum-algorithm", ck_header(ck_alg));
    } else if (ck_alg != CK_NONE && !strcmp(method, "GET")) {
        hdrs[nh++] = (sigv4_header_t){"x-amz-checksum-mode", "ENABLED"};
        snprintf(signed_headers, sizeof signed_headers, "host;x-amz-checksum-mode;x-amz-content-sha256;x-amz-date");
    }
    sigv4_request_t r = {.method = method, .path = path, .query = "", .headers = hdrs, .nheaders = nh,
                         .payload_hash = "UNSIGNED-PAYLOAD", .s3 = 1};
    verr_t e;
    char *creq = sigv4_canonical_request(&r, signed_headers, &e);
    char *sts = sigv4_string_to_sign(amz, day, region, "s3", creq);
    uint8_t key[SIGV4_KEY_LEN];
    sigv4_signing_key(sk, day, region, "s3", key);
    char sig[65];
    sigv4_sign(key, sts, sig);
    char auth[512], date[64];
    snprintf(auth, sizeof auth, "Authorization: AWS4-HMAC-SHA256 Credential=%s/%s/%s/s3/aws4_request, "
             "SignedHeaders=%s, Signature=%s", ak, day, region, signed_headers, sig);
    snprintf(date, sizeof date, "x-amz-date: %s", amz);
    free(creq);
    free(sts);
    struct curl_slist *l = curl_slist_append(NULL, auth);
    l = curl_slist_append(l, date);
    l = curl_slist_append(l, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    l = curl_slist_append(l, "Expect:");
    for (size_t i = 3; i < nh; i++) {
        char line[128];
        snprintf(line, sizeof line, "%s: %s", hdrs[i].name, hdrs[i].value);
        l = curl_slist_append(l, line);
    }
    return l;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    *(size_t *)u += s * n;
    return s * n;
}

struct rd {
    size_t off;
};

static size_t reader(char *buf, size_t s, size_t n, void *u)
{
    struct rd *r = u;
    size_t want = s * n, left = size - r->off;
    if (want > left)
        want = left;
    memcpy(buf, payload + r->off, want);
    r->off += want;
    return want;
}

/* One request; returns the HTTP status (0 on transport errors). */
static long request(CURL *c, const char *method, int obj, size_t *got)
{
    char path[256], url[512];
    snprintf(path, sizeof path, "/%s/obj-%d", bucket, obj);
    snprintf(url, sizeof url, "%s%s", endpoint, path);
    struct curl_slist *h = sign(method, path);
    struct rd rd = {0};
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, got);
    if (!strcmp(method, "PUT")) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, reader);
        curl_easy_setopt(c, CURLOPT_READDATA, &rd);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    return status;
}

/* Each thread keeps one connection (its own curl handle). */
static void *conn_start(void *arg, int idx)
{
    (void)arg, (void)idx;
    return curl_easy_init();
}

/* The method is the phase's argument; thread t works on keys t, t + threads, ... */
static int one_request(void *method, void *c, long seq, size_t *bytes)
{
    size_t got = 0;
    if (request(c, method, (int)(seq % nobjects), &got) != 200)
        return -1;
    *bytes += strcmp(method, "PUT") ? got : size;
    return 0;
}

static void conn_stop(void *arg, void *c)
{
    (void)arg;
    curl_easy_cleanup(c);
}

static void phase(const char *method)
{
    loadgen_t lg = {.threads = nthreads, .seconds = seconds, .arg = (void *)method,
                    .thread_start = conn_start, .call = one_request, .thread_stop = conn_stop};
    loadgen_result_t r;
    loadgen_run(&lg, &r);
    printf("%s%s%s %zu B x %d threads: %.0f ops/s, %.1f MB/s, p50 %.2f ms, p99 %.2f ms, %zu errors\n", method,
           ck_alg != CK_NONE ? "+" : "", ck_name(ck_alg), size, nthreads, r.per_s, r.bytes / r.elapsed / 1e6, r.p50,
           r.p99, r.errors);
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--endpoint")) endpoint = v;
        else if (!strcmp(k, "--bucket")) bucket = v;
        else if (!strcmp(k, "--access-key")) ak = v;
        else if (!strcmp(k, "--secret-key")) sk = v;
        else if (!strcmp(k, "--region")) region = v;
        else if (!strcmp(k, "--size")) size = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--threads")) nthreads = atoi(v);
        else if (!strcmp(k, "--seconds")) seconds = atof(v);
        else if (!strcmp(k, "--objects")) nobjects = atoi(v);
        else if (!strcmp(k, "--checksum") && (ck_alg = ck_by_name(v)) != CK_NONE) continue;
        else if (!strcmp(k, "--phase") && (!strcmp(v, "PUT") || !strcmp(v, "GET"))) only = v;
        else {
            fprintf(stderr, "s3_load: unknown option %s\n", k);
            return 2;
        }
    }
    if (!endpoint || !bucket || !ak || !sk || size == 0 || size > (64u << 20) || nthreads < 1 || nthreads > 128 ||
        seconds <= 0 || seconds > 300 || nobjects < 1) {
        fprintf(stderr, "usage: s3_load --endpoint URL --bucket B --access-key AK --secret-key SK [--size N<=64MiB] "
                        "[--threads 1..128] [--seconds <=300] [--objects N]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    payload = malloc(size);
    for (size_t i = 0; i < size; i++)
        payload[i] = (char)(i * 131 + 7);
    if (ck_alg != CK_NONE) {
        unsigned char d[CK_MAX_DIGEST];
        ck_compute(ck_alg, payload, size, d);
        ck_b64(d, ck_digest_len(ck_alg), ck_b64_value);
    }
    CURL *c = curl_easy_init();   /* make the bucket (an error if it exists is fine) */
    size_t got = 0;
    char path[256], url[512];
    snprintf(path, sizeof path, "/%s", bucket);
    snprintf(url, sizeof url, "%s%s", endpoint, path);
    struct curl_slist *h = sign("PUT", path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
    curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!only || !strcmp(only, "PUT"))
        phase("PUT");
    if (!only || !strcmp(only, "GET"))
        phase("GET");
    free(payload);
    curl_global_cleanup();
    return 0;
}
