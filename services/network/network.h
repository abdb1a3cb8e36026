/* network.h - the network service: VPCs, subnets, security groups, network interfaces,
 * elastic IPs, the port API for compute and the datapath's desired state per host
 * (docs/network.md). Every handler is scoped to the caller's account. */
#ifndef VIRGA_NETWORK_H
#define VIRGA_NETWORK_H

#include "describe.h"
#include "service.h"

/* ---- net.c: what every handler shares ---- */

/* The caller's account, or NULL + AuthFailure. With DryRun set in body, answers
 * DryRunOperation instead (mutating actions call it with dry_run_ok = 1 once their
 * input is checked). */
const char *net_account(bus_ctx_t *ctx, verr_t *e);
int net_dry_run(const json_t *body, verr_t *e);
/* InvalidParameterValue naming the first IPv6 parameter of body that asks for IPv6. */
int net_no_ipv6(const json_t *body, verr_t *e);

/* One resource kind: its table, the id prefix and the NotFound code EC2 uses. */
typedef struct net_kind {
    const char *table;      /* "vpcs" */
    const char *prefix;     /* "vpc" */
    const char *not_found;  /* "InvalidVpcID.NotFound" */
    const char *what;       /* "vpc ID" (NotFound message text) */
    const char *table_noun; /* "VPC" (limit message text) */
} net_kind_t;
extern const net_kind_t NET_VPC, NET_SUBNET, NET_SG, NET_ENI, NET_EIP, NET_IGW, NET_RTB;

/* The resource `id` exists and is account's: 0, else the kind's NotFound (a malformed
 * id is also NotFound, or the Malformed code EC2 uses for it). With lock, the row is
 * locked FOR UPDATE (inside a transaction). */
int net_owned(db_t *db, const net_kind_t *k, const char *id, const char *account, int lock, verr_t *e);
/* IdempotentParameterMismatch: a client token already used for a request with other
 * parameters (EC2's words); -1. */
int net_token_mismatch(verr_t *e, const char *token);

/* The common tail of a Describe*: items (sorted by id_field) narrowed to the ids listed
 * in body[list] (any unknown: not_found), by Filter, then one page (MaxResults in
 * [5, 1000] when page is set). Sets *reply = {set_name: [...], "nextToken"?}. Takes items. */
int net_describe(json_t *items, const json_t *body, const char *list, const char *id_field,
                 const char *not_found, const describe_field_t *fields, int page, const char *set_name,
                 json_t **reply, verr_t *e);

/* Inside the caller's transaction: lock the account's rows of the kind (db_lock_xact),
 * count them, and fail with code (VpcLimitExceeded...) if there are max already. The
 * insert that follows in the same transaction is then exact under concurrency. */
int net_within_quota(db_t *db, const net_kind_t *k, const char *account, long long max, const char *code,
                     verr_t *e);

/* The end of a Delete*: DryRun (DryRunOperation), delete the row and its tags, commit
 * the caller's transaction, *reply = {"return": true}. The caller rolls back on -1. */
int net_delete_commit(db_t *db, const net_kind_t *k, const char *id, const json_t *body, json_t **reply, verr_t *e);
/* The end of a change to a VPC's network that every host with the VPC must apply: bump
 * those hosts' generations, commit, answer {"return": true}. */
int net_vpc_change_commit(db_t *db, const char *vpc_id, json_t **reply, verr_t *e);

/* Tags of the account's resources, {id: tagSet}. */
json_t *net_tags(db_t *db, const char *account, verr_t *e);
/* The tagSet of id in tags (new reference; empty array when none). */
json_t *net_tag_set(const json_t *tags, const char *id);
/* Remove a deleted resource's tags. */
int net_untag(db_t *db, const char *id, verr_t *e);

/* The call timeout to other services (network.call_timeout_ms). */
int net_timeout_ms(bus_ctx_t *ctx);
/* subnets.c: the availability zones (the gateway's gateway.availability_zones, default
 * "<region>a"), at most max; returns how many. */
int net_zones(service_t *svc, char out[][64], int max);
/* subnets.c: the VPC's default subnets into out's "default_subnets" {az: subnet id}. */
int subnets_defaults_of(db_t *db, const char *vpc_id, json_t *out, verr_t *e);

/* ---- security_groups.c ---- */
/* The group a request names: GroupId, else GroupName in the default VPC (allow_name).
 * Writes its id and VPC. */
int sg_resolve(bus_ctx_t *ctx, const json_t *body, const char *account, int allow_name, char *id, char *vpc,
               verr_t *e);
/* The rules of the account's groups (every group when account is NULL and group_ids is
 * NULL; the listed groups when group_ids is a Postgres array literal) as JSON rule rows:
 * [{"id","group_id","egress","protocol","from_port","to_port","cidr"|null,
 *   "ref_group"|null,"description","account_id"}] sorted by rule id. */
json_t *sg_rule_rows(db_t *db, const char *account, const char *group_ids, verr_t *e);
/* sg_cache.c: the account's DescribeSecurityGroups items, built by build() only when a
 * group, rule or group tag of the account changed since the last build; a new reference to
 * an array nobody may change. */
typedef json_t *(*sg_build_fn)(db_t *db, const char *account, verr_t *e);
json_t *sg_listing(db_t *db, const char *account, sg_build_fn build, verr_t *e);

/* ---- hosts.c: the datapath's generation per host ---- */
/* A host name the datapath can use in its namespace names: 1 to 63 of [A-Za-z0-9._-]
 * (InvalidParameterValue otherwise). */
int hosts_valid_name(const char *host, verr_t *e);
/* The host's row (made with a free underlay address on first use). */
int hosts_ensure(db_t *db, service_t *svc, const char *host, verr_t *e);
/* generation + 1 on the VPC and on every host with a plugged interface in it (and on
 * extra_host if not NULL), inside the caller's transaction. */
int hosts_touch_vpc(db_t *db, const char *vpc_id, const char *extra_host, verr_t *e);
/* The same as CTEs (vpc_touch, hosts_touch) of a statement that does more (the VPC's id
 * and the extra host as SQL parameters): ports.c's delete, in one statement with it. */
#define HOSTS_TOUCH_VPC_CTES(vpc, extra_host)                                                                         \
    "vpc_touch AS (UPDATE vpcs SET generation = generation + 1 WHERE id = " vpc "), hosts_touch AS (UPDATE hosts "   \
    "SET generation = generation + 1 WHERE name = " extra_host " OR name IN (SELECT host FROM enis WHERE vpc_id = "  \
    vpc " AND plugged AND host IS NOT NULL))"
/* eni_attrs.c: set an interface's SourceDestCheck ("true"/"false") in the caller's
 * transaction; when it changes, the hosts of its VPC get a new generation. For
 * ModifyNetworkInterfaceAttribute and compute's ModifyInstanceAttribute alike. */
int eni_set_source_dest_check(db_t *db, const char *eni_id, const char *value, verr_t *e);

/* ---- desired_vpc.c: the part of the hosts' documents that is the VPC's, shared ---- */
/* {"vpc": {"vpc_id","vni","cidr","internet_gateway","hosts": {name: underlay ip}},
 *  "subnets": {id: subnet as in the document}, "groups": {id: group as in the document},
 *  "members": {group id: [addresses of its plugged members]}} of the VPC at generation
 * `gen` (a new reference), built once per generation; *got is the generation of what is
 * answered, which differs from gen when the VPC changed since (the caller reads again). */
json_t *desired_vpc_part(db_t *db, const char *vpc_id, long long gen, long long *got, verr_t *e);

/* ---- desired.c: a host's datapath document (network.host_desired) ---- */
/* The host's document (a new reference in *reply), made consistent as the handler makes
 * it; a host not known yet is added. 0, or -1 with e set. */
int desired_host_document(db_t *db, service_t *svc, const char *host, json_t **reply, verr_t *e);
/* The documents of n known hosts at once (host_events.c: the hosts one change rang): the
 * hosts' rows in one statement, the VPC parts shared. docs[i] is hosts[i]'s, or NULL when
 * it could not be made (unknown host, a database error): that host gets a doorbell. */
void desired_host_documents(db_t *db, service_t *svc, const char *const *hosts, size_t n, json_t **docs);

/* ---- host_events.c: agent.network_changed, with the host's document, on each host's
 * topic after a commit that changed its generation (a LISTEN thread and a pushing thread
 * of its own) ---- */
int host_events_start(service_t *svc, verr_t *e);
void host_events_stop(void);

/* ---- default_vpc.c ---- */
/* The account's default VPC id (made with its subnets and default group on first use,
 * once even under concurrent first calls). id has room for IDS_MAX. */
int default_vpc(bus_ctx_t *ctx, const char *account, char *id, verr_t *e);
/* A new VPC's "default" security group and its rules, inside the caller's transaction. */
int default_group_create(db_t *db, const char *account, const char *vpc_id, char *sg_id, verr_t *e);

/* ---- handlers ---- */
#define NET_HANDLER(fn) int fn(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
NET_HANDLER(net_create_vpc);
NET_HANDLER(net_describe_vpcs);
NET_HANDLER(net_delete_vpc);
NET_HANDLER(net_vpcs_exist);
NET_HANDLER(net_modify_vpc_attribute);
NET_HANDLER(net_describe_vpc_attribute);
NET_HANDLER(net_create_subnet);
NET_HANDLER(net_describe_subnets);
NET_HANDLER(net_delete_subnet);
NET_HANDLER(net_modify_subnet_attribute);
NET_HANDLER(net_create_security_group);
NET_HANDLER(net_describe_security_groups);
NET_HANDLER(net_delete_security_group);
NET_HANDLER(net_authorize_ingress);
NET_HANDLER(net_authorize_egress);
NET_HANDLER(net_revoke_ingress);
NET_HANDLER(net_revoke_egress);
NET_HANDLER(net_describe_security_group_rules);
NET_HANDLER(net_create_tags);
NET_HANDLER(net_modify_network_interface_attribute);
NET_HANDLER(net_describe_network_interface_attribute);
NET_HANDLER(net_delete_tags);
NET_HANDLER(net_describe_tags);
NET_HANDLER(net_create_network_interface);
NET_HANDLER(net_delete_network_interface);
NET_HANDLER(net_describe_network_interfaces);
NET_HANDLER(net_attach_network_interface);
NET_HANDLER(net_detach_network_interface);
NET_HANDLER(net_launch_interfaces);   /* compute's launch task: interfaces beyond the primary */
NET_HANDLER(net_allocate_address);
NET_HANDLER(net_associate_address);
NET_HANDLER(net_disassociate_address);
NET_HANDLER(net_release_address);
NET_HANDLER(net_describe_addresses);
NET_HANDLER(net_create_internet_gateway);
NET_HANDLER(net_attach_internet_gateway);
NET_HANDLER(net_detach_internet_gateway);
NET_HANDLER(net_delete_internet_gateway);
NET_HANDLER(net_describe_internet_gateways);
NET_HANDLER(net_create_route_table);
NET_HANDLER(net_delete_route_table);
NET_HANDLER(net_create_route);
NET_HANDLER(net_delete_route);
NET_HANDLER(net_replace_route);
NET_HANDLER(net_associate_route_table);
NET_HANDLER(net_disassociate_route_table);
NET_HANDLER(net_describe_route_tables);
NET_HANDLER(net_default_vpc_id);
NET_HANDLER(net_port_create);
NET_HANDLER(net_port_create_many);   /* ports_many.c: a reservation's ports in one transaction */
NET_HANDLER(net_port_adopt);   /* ports.c: an existing interface as a launch's primary */
NET_HANDLER(net_port_plug);
NET_HANDLER(net_port_unplug);
NET_HANDLER(net_port_delete);
NET_HANDLER(net_launch_check);   /* ports.c: a launch's interface checked, not made */
NET_HANDLER(net_addresses_free);   /* enis.c: a launch's PrivateIpAddress not in use, asked uncached */
NET_HANDLER(net_port_set_groups);
NET_HANDLER(net_instance_public_ip);   /* public_addresses.c: released at stop, a new one at start */
NET_HANDLER(net_host_desired);
NET_HANDLER(net_admin_list);
NET_HANDLER(net_admin_show);

#endif
