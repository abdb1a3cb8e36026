/* hybrid_cmds.c - virgadm's commands for public cloud regions (docs/hybrid.md). They
 * need no bus: a region is operator config (hybrid.*) read by the agent that stands for
 * it, and its credentials are a file sealed under hybrid.key_file.
 *
 *   virgadm hybrid seal [--key FILE] [--out FILE]
 *       reads {"access_key_id": ..., "secret_access_key": ...} (or the two values on one
 *       line, blank-separated) from stdin and writes the sealed credentials file (0600)
 *       or prints it; the key is --key, else hybrid.key_file
 *   virgadm hybrid clouds
 *       the regions of hybrid.regions, one a line (devcloud starts one ec2 agent each) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "jsonutil.h"
#include "sealed.h"

void hybrid_cmds_usage(FILE *f)
{
    fprintf(f, "  hybrid seal [--key FILE] [--out FILE]\n"
               "                                     seal a public cloud's credentials (stdin: JSON with\n"
               "                                     access_key_id, secret_access_key) under hybrid.key_file\n"
               "  hybrid clouds                      the public cloud regions of hybrid.regions\n");
}

static int seal(const config_t *cfg, int argc, char **argv)
{
    const char *keyfile = config_str(cfg, "hybrid.key_file", "/etc/virga/hybrid.key"), *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--key") && i + 1 < argc)
            keyfile = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else {
            fprintf(stderr, "virgadm hybrid seal: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    char in[4096];
    size_t n = fread(in, 1, sizeof in - 1, stdin);
    in[n] = 0;
    JSON_AUTO json_t *doc = json_loads(in, 0, NULL);
    char ak[256] = "", sk[256] = "";
    if (doc) {
        snprintf(ak, sizeof ak, "%s", json_str(doc, "access_key_id", ""));
        snprintf(sk, sizeof sk, "%s", json_str(doc, "secret_access_key", ""));
    } else if (sscanf(in, "%255s %255s", ak, sk) != 2) {
        ak[0] = 0;
    }
    if (!*ak || !*sk) {
        fprintf(stderr, "virgadm hybrid seal: stdin must hold access_key_id and secret_access_key\n");
        return 2;
    }
    unsigned char key[SEALED_KEY_LEN];
    verr_t e;
    if (sealed_key_load(keyfile, key, &e) < 0) {
        fprintf(stderr, "virgadm hybrid seal: %s\n", e.message);
        return 1;
    }
    JSON_AUTO json_t *creds = json_pack("{s:s, s:s}", "access_key_id", ak, "secret_access_key", sk);
    char *plain = json_dumps(creds, JSON_COMPACT);
    char *sealed = sealed_seal(key, plain);
    sodium_memzero(plain, strlen(plain));
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(key, sizeof key);
    free(plain);
    int rc = 0;
    if (!out) {
        printf("%s\n", sealed);
    } else {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        size_t len = strlen(sealed);
        if (fd < 0 || write(fd, sealed, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
            perror(out);
            rc = 1;
        }
        if (fd >= 0)
            close(fd);
    }
    free(sealed);
    return rc;
}

int hybrid_cmds_run(const config_t *cfg, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "seal"))
        return seal(cfg, argc - 2, argv + 2);
    if (argc == 2 && !strcmp(argv[1], "clouds")) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", config_str(cfg, "hybrid.regions", ""));
        char *save = NULL;
        for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
            printf("%s\n", t);
        return 0;
    }
    hybrid_cmds_usage(stderr);
    return 2;
}
