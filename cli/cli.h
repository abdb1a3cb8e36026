/* cli.h - what virgadm's command files share. */
#ifndef VIRGA_CLI_H
#define VIRGA_CLI_H

#include <stdio.h>

#include "bus.h"

/* Send one RPC and print the reply body as indented JSON; on error print
 * "Code: message" to stderr. body is stolen. Returns the exit code. */
int cli_print_call(bus_t *bus, const char *service, const char *type, json_t *body, const json_t *caller, int timeout_ms);

/* identity_cmds.c: returns the exit code, or -1 when argv is not one of its commands */
int identity_cmds_run(bus_t *bus, int argc, char **argv);
void identity_cmds_usage(FILE *f);

/* usage_cmds.c: usage and invoice; the exit code, or -1 when argv is not one of them */
int usage_cmds_run(bus_t *bus, int argc, char **argv);
void usage_cmds_usage(FILE *f);

/* pdf.c: lines of text as a PDF file (Courier, A4, paginated); 0 or -1. */
int pdf_write_text(const char *path, const char *const *lines, size_t n);

/* hybrid_cmds.c: needs no bus; returns the exit code */
struct config;
int hybrid_cmds_run(const struct config *cfg, int argc, char **argv);
void hybrid_cmds_usage(FILE *f);
/* network_cmds.c: the same, for the network commands */
int network_cmds_run(bus_t *bus, int argc, char **argv);
void network_cmds_usage(FILE *f);

#endif
