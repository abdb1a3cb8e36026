/* accounting.h - virga-accounting: usage records from the services' event logs
 * (pump.c), their outbox to the Kafka topic virga.usage (publish.c), and the answers
 * operators and tenants ask of them (usage_api.c). docs/accounting.md. */
#ifndef VIRGA_ACCOUNTING_H
#define VIRGA_ACCOUNTING_H

#include "bus.h"
#include "service.h"

/* Start the listener, puller and publisher threads (accounting.* config keys). */
int pump_start(service_t *svc, verr_t *e);
/* Wake the puller and the publisher (the reconcile timer's catch-up). */
void pump_wake(void);
/* Stop and join the threads. Safe when pump_start failed or never ran. */
void pump_stop(void);

/* One pass of the puller: every log read to its end (in batches), and the running
 * instances metered up to the last closed hour. Returns events taken, or -1. */
long pump_pull(db_t *db, int batch, int grace_s, verr_t *e);
/* Publish the outbox in batches until it is empty: records published, or -1 (the broker
 * did not acknowledge; they stay in the outbox). */
long publish_outbox(bus_t *bus, db_t *db, int batch, verr_t *e);

/* accounting.usage: records and totals, filtered (usage_api.c). */
int accounting_usage(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* accounting.invoice: one account's month rated against the price list (invoice.c). */
int accounting_invoice(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* showback.c: the tenants' EC2 actions DescribeUsage and GetInvoice (own account). */
int accounting_describe_usage(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int accounting_get_invoice(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* The account a request may see: `asked` for the operator, else the caller's own. */
int accounting_scope(bus_ctx_t *ctx, const char *asked, const char **account, verr_t *e);

/* prices.c: load the price list file into accounting.prices (InvalidConfig when it is
 * not one); refresh reloads it when the file changed (on the reconcile timer). */
int prices_load(db_t *db, const char *path, verr_t *e);
void prices_refresh(service_t *svc);

#endif
