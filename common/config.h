/* config.h - YAML configuration with per-process overrides.
 *
 * A YAML file is flattened into dotted keys ("db.url", "bus.brokers",
 * "http.port"); a sequence of scalars becomes one comma-separated value. Lookup
 * order, strongest first:
 *   1. command line  `--set db.url=...`
 *   2. environment   VIRGA_DB_URL (key upper-cased, '.' and '-' become '_')
 *   3. the YAML file `-c FILE` / `--config FILE` (or $VIRGA_CONFIG)
 *   4. the default the caller passes (documented in docs/config.md)
 */
#ifndef VIRGA_CONFIG_H
#define VIRGA_CONFIG_H

#include "err.h"

typedef struct config config_t;

config_t *config_new(void);
void config_free(config_t *c);

int  config_load_file(config_t *c, const char *path, verr_t *e);
int  config_load_string(config_t *c, const char *yaml, verr_t *e);
/* Parse -c/--config FILE and --set k=v (repeatable). Unknown arguments are left in
 * place: returns the number of arguments consumed, or -1. Positional arguments and
 * options it does not know are copied to rest[] (rest may be NULL). */
int  config_parse_args(config_t *c, int argc, char **argv, int *rest_argc, char **rest, verr_t *e);
/* A command-line level override. */
void config_set(config_t *c, const char *key, const char *value);

const char *config_str(const config_t *c, const char *key, const char *def);
/* Every key and value loaded from files, in the order first seen (for documents that
 * are not settings, e.g. accounting's price list, whose keys are data). */
void config_foreach(const config_t *c, void (*fn)(const char *key, const char *value, void *arg), void *arg);
long config_int(const config_t *c, const char *key, long def);
int  config_bool(const config_t *c, const char *key, int def);

#endif
