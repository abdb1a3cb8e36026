/* attributes.c - DescribeInstanceAttribute and ModifyInstanceAttribute: instanceType
 * (changed only while stopped), userData (only while stopped, as EC2), and
 * disableApiTermination (which makes TerminateInstances answer OperationNotPermitted); a
 * new instanceType must fit the account's vCPU/memory quotas, its host's capacity and the
 * interfaces the instance has (recorded in the network before the type is written, so a
 * concurrent AttachNetworkInterface cannot pass it: interface_limit.c);
 * groupSet (GroupId.N) changes the groups (instance_groups.c), sourceDestCheck the primary
 * interface's check (source_dest_check.c);
 * groupSet, kernel, ramdisk and the attributes fixed here (rootDeviceName, productCodes,
 * ebsOptimized...) are described; one attribute per change, as EC2. */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "ids.h"
#include "instance_state.h"
#include "jsonutil.h"
#include "scheduler.h"

int instance_lock(db_t *db, const char *account, const char *id, char state[32], verr_t *e)
{
    if (!id || !ids_valid("i", id))
        return verr_set(e, 400, "InvalidInstanceID.Malformed", "Invalid id: \"%.64s\"", id ? id : "");
    const char *p[] = {id, account};
    PG_AUTO PGresult *r = db_prepared(db, e, "inst_lock",
        "SELECT state FROM instances WHERE id = $1 AND ($2::text IS NULL OR account_id = $2) FOR UPDATE", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id);
    snprintf(state, 32, "%s", PQgetvalue(r, 0, 0));
    return 0;
}

static const char *const attributes[] = {"instanceType", "userData", "disableApiTermination", "groupSet", "kernel",
                                         "ramdisk", "sourceDestCheck", NULL};

/* The attributes EC2 names that are the same for every instance here, as DescribeInstances
 * shows them too (no EBS, no product codes, ENA on, no stop protection, shutdown stops).
 * They were "Value (productCodes) for parameter attribute is invalid", as if misspelt. */
static const struct {
    const char *attr, *json;
} fixed_attributes[] = {
    {"rootDeviceName", "{\"value\": \"/dev/vda\"}"},
    {"instanceInitiatedShutdownBehavior", "{\"value\": \"stop\"}"},
    {"blockDeviceMapping", "[]"},
    {"productCodes", "[]"},
    {"ebsOptimized", "{\"value\": false}"},
    {"enaSupport", "{\"value\": true}"},
    {"sriovNetSupport", "{}"},
    {"enclaveOptions", "{\"enabled\": false}"},
    {"disableApiStop", "{\"value\": false}"},
};

/* The fixed answer of an attribute (its JSON text), or NULL for one read from the instance. */
static const char *fixed_attribute(const char *a)
{
    for (size_t i = 0; a && i < sizeof fixed_attributes / sizeof fixed_attributes[0]; i++)
        if (!strcmp(fixed_attributes[i].attr, a))
            return fixed_attributes[i].json;
    return NULL;
}

static int known_attribute(const char *a)
{
    for (int i = 0; a && attributes[i]; i++)
        if (!strcmp(attributes[i], a))
            return 1;
    return fixed_attribute(a) != NULL;
}

int compute_describe_instance_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account, *id = json_str(body, "InstanceId", NULL), *attr = json_str(body, "Attribute", NULL);
    if (instances_scope(ctx, &account, e) < 0)
        return -1;
    if (!known_attribute(attr))
        return verr_set(e, 400, "InvalidParameterValue", "Value (%.64s) for parameter attribute is invalid.",
                        attr ? attr : "");
    if (!strcmp(attr, "sourceDestCheck"))   /* the primary interface's, in the network */
        return instance_sdc_describe(ctx, account, id, reply, e);
    if (!id || !ids_valid("i", id))
        return verr_set(e, 400, "InvalidInstanceID.Malformed", "Invalid id: \"%.64s\"", id ? id : "");
    const char *p[] = {id, account};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "attr_get",
        "SELECT instance_type, user_data, disable_api_termination, kernel_id, ramdisk_id, "
        "(SELECT groups::text FROM instance_interfaces f WHERE f.instance_id = i.id AND f.device_index = 0) "
        "FROM instances i WHERE id = $1 AND ($2::text IS NULL OR account_id = $2)", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id);
    *reply = json_pack("{s:s}", "instanceId", id);
    json_t *v = NULL;
    if (!strcmp(attr, "instanceType"))
        v = json_pack("{s:s}", "value", PQgetvalue(r, 0, 0));
    else if (!strcmp(attr, "userData"))
        v = PQgetisnull(r, 0, 1) ? json_object() : json_pack("{s:s}", "value", PQgetvalue(r, 0, 1));
    else if (!strcmp(attr, "disableApiTermination"))
        v = json_pack("{s:b}", "value", PQgetvalue(r, 0, 2)[0] == 't');
    else if (!strcmp(attr, "kernel"))
        v = PQgetisnull(r, 0, 3) ? json_object() : json_pack("{s:s}", "value", PQgetvalue(r, 0, 3));
    else if (!strcmp(attr, "ramdisk"))
        v = PQgetisnull(r, 0, 4) ? json_object() : json_pack("{s:s}", "value", PQgetvalue(r, 0, 4));
    else if (!strcmp(attr, "groupSet"))
        v = PQgetisnull(r, 0, 5) ? json_array() : json_loads(PQgetvalue(r, 0, 5), 0, NULL);
    else
        v = json_loads(fixed_attribute(attr), 0, NULL);
    json_object_set_new(*reply, attr, v ? v : json_object());
    return 0;
}

/* The one attribute a ModifyInstanceAttribute request changes: Attribute + Value, or the
 * structured form (InstanceType.Value, UserData.Value, DisableApiTermination.Value). */
static int wanted(const json_t *body, const char **attr, const char **value, verr_t *e)
{
    static const struct {
        const char *param, *attr;
    } forms[] = {{"InstanceType", "instanceType"}, {"UserData", "userData"},
                 {"DisableApiTermination", "disableApiTermination"}};
    *attr = json_str(body, "Attribute", NULL);
    *value = json_str(body, "Value", NULL);
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        json_t *o = json_object_get(body, forms[i].param);
        if (!o)
            continue;
        if (*attr)
            return verr_set(e, 400, "InvalidParameterCombination", "Only one attribute can be modified at a time");
        *attr = forms[i].attr;
        *value = json_str(o, "Value", NULL);
    }
    if (!*attr)
        return verr_set(e, 400, "MissingParameter", "No attribute specified");
    if (strcmp(*attr, "instanceType") && strcmp(*attr, "userData") && strcmp(*attr, "disableApiTermination"))
        return verr_set(e, 400, "InvalidParameterValue", "Value (%.64s) for parameter attribute is invalid.", *attr);
    if (!*value)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter value");
    return 0;
}

/* A new instance type for a stopped instance (under the account's lock and the instance's
 * row): the account's vCPU and memory quotas and its host's capacity must hold the new
 * size (stopped instances keep their room), as they would for a launch. */
static int resize_fits(bus_ctx_t *ctx, const char *id, const instance_type_t *t, const json_t *quotas, verr_t *e)
{
    db_t *db = service_db(ctx);
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "attr_resize_inst",
        "SELECT i.host_id, COALESCE(sum(o.vcpus), 0), COALESCE(sum(o.memory_mib), 0) FROM instances i "
        "LEFT JOIN instances o ON o.account_id = i.account_id AND o.state <> 'terminated' AND o.id <> i.id "
        "WHERE i.id = $1 GROUP BY i.host_id", 1, p);
    if (!r || !PQntuples(r))
        return r ? verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id) : -1;
    long long v = atoll(PQgetvalue(r, 0, 1)) + t->vcpus, m = atoll(PQgetvalue(r, 0, 2)) + t->memory_mib;
    long long qv = json_int(quotas, "vcpus", 64), qm = json_int(quotas, "memory_mib", 262144);
    if (v > qv)
        return verr_set(e, 400, "VcpuLimitExceeded",
                        "You have requested more vCPU capacity (%lld) than your current vCPU limit of %lld allows.", v,
                        qv);
    if (m > qm)
        return verr_set(e, 400, "InstanceLimitExceeded",
                        "You have requested more memory (%lld MiB) than your current limit of %lld MiB allows.", m, qm);
    if (PQgetisnull(r, 0, 0))
        return 0;
    return scheduler_resize(db, compute_of(ctx), PQgetvalue(r, 0, 0), id, t->vcpus, t->memory_mib, t->name, e);
}

/* The instance's account (for its lock, taken before the instance's row), whether it is
 * stopped now (its interfaces are counted only then: a running one is refused under the
 * lock with IncorrectInstanceState) and its type's number (type_seq), or -1 + e. */
static int owner_of(db_t *db, const char *scope, const char *id, char out[16], int *stopped, long long *seq,
                    verr_t *e)
{
    if (!id || !ids_valid("i", id))
        return verr_set(e, 400, "InvalidInstanceID.Malformed", "Invalid id: \"%.64s\"", id ? id : "");
    const char *p[] = {id, scope};
    PG_AUTO PGresult *r = db_prepared(db, e, "attr_owner",
        "SELECT account_id, state = 'stopped', type_seq FROM instances WHERE id = $1 AND ($2::text IS NULL OR "
        "account_id = $2)", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id);
    snprintf(out, 16, "%s", PQgetvalue(r, 0, 0));
    *stopped = PQgetvalue(r, 0, 1)[0] == 't';
    *seq = atoll(PQgetvalue(r, 0, 2));
    return 0;
}

/* A new type's interfaces, before anything is written here: a DryRun counts them; a change
 * has the network record the new type's limit under the number the type will have
 * (interface_limit.c). A running instance's are not asked (refused under the lock). */
static int interfaces_fit(bus_ctx_t *ctx, const char *owner, const char *id, int stopped, long long seq,
                          const instance_type_t *t, int dry_run, verr_t *e)
{
    if (!stopped)
        return 0;
    if (dry_run)
        return interface_limit_fits(ctx, owner, id, t, e);
    /* marked first (committed on its own): a change that dies after the network's record
     * and before its write is found by the mark (interface_limit.c, the reconcile pass) */
    return interface_limit_mark(service_db(ctx), id, seq, e) < 0 ? -1
                                                                   : interface_limit_hold(ctx, owner, id, seq + 1, t, e);
}

/* EC2 changes one attribute per ModifyInstanceAttribute: more than one is refused
 * (each form below went its own way, so DisableApiTermination with SourceDestCheck changed
 * the check and dropped the protection with a success), and the attributes this cloud
 * cannot change say so, not "No attribute specified". */
static int one_attribute(const json_t *body, verr_t *e)
{
    static const struct {
        const char *form;
        int changeable;
    } forms[] = {
        {"InstanceType", 1}, {"UserData", 1}, {"DisableApiTermination", 1}, {"GroupId", 1},
        {"SourceDestCheck", 1}, {"InstanceInitiatedShutdownBehavior", 0}, {"Kernel", 0}, {"Ramdisk", 0},
        {"BlockDeviceMapping", 0}, {"EbsOptimized", 0}, {"EnaSupport", 0}, {"SriovNetSupport", 0},
        {"DisableApiStop", 0}, {"EnclaveOptions", 0},
    };
    const char *named = json_str(body, "Attribute", NULL), *form = NULL, *refused = NULL;
    int n = 0;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        if (json_object_get(body, forms[i].form)) {
            n++;
            form = forms[i].form;
            if (!forms[i].changeable && !refused)
                refused = form;
        }
    /* Attribute=groupSet with GroupId.N, Attribute=sourceDestCheck with its form: one */
    char same[64] = "";
    if (form)
        snprintf(same, sizeof same, "%c%s", tolower((unsigned char)form[0]), form + 1);
    if (form && !strcmp(form, "GroupId"))
        snprintf(same, sizeof same, "groupSet");
    if (n > 1 || (named && n == 1 && strcmp(named, same)))
        return verr_set(e, 400, "InvalidParameterCombination", "Only one attribute can be modified at a time");
    if (refused)
        return verr_set(e, 400, "Unsupported", "Modifying %s is not supported here", refused);
    return 0;
}

int compute_modify_instance_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const compute_t *c = compute_of(ctx);
    const char *account, *attr, *value, *id = json_str(body, "InstanceId", NULL);
    if (instances_scope(ctx, &account, e) < 0 || one_attribute(body, e) < 0)
        return -1;
    if (json_object_get(body, "GroupId") || !strcmp(json_str(body, "Attribute", ""), "groupSet"))
        return instance_groups_modify(ctx, account, id, json_object_get(body, "GroupId"), json_flag(body, "DryRun"),
                                      reply, e);
    if (json_object_get(body, "SourceDestCheck") || !strcmp(json_str(body, "Attribute", ""), "sourceDestCheck"))
        return instance_sdc_modify(ctx, account, id, body, reply, e);
    if (wanted(body, &attr, &value, e) < 0)
        return -1;
    const instance_type_t *t = NULL;
    char vc[16] = "", mem[32] = "";
    if (!strcmp(attr, "instanceType")) {
        if (!(t = instance_type_find(c, value)))
            return verr_set(e, 400, "InvalidInstanceAttributeValue", "The instance type '%.64s' does not exist", value);
        snprintf(vc, sizeof vc, "%d", t->vcpus);
        snprintf(mem, sizeof mem, "%lld", t->memory_mib);
    } else if (!strcmp(attr, "userData")) {
        size_t n = strlen(value), len = 0;
        AUTOFREE unsigned char *raw = xmalloc(n + 1);
        if (sodium_base642bin(raw, n + 1, value, n, " \r\n", &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
            len > 16 * 1024)
            return verr_set(e, 400, "InvalidParameterValue", "User data must be base64 of at most 16384 bytes");
    } else if (strcmp(value, "true") && strcmp(value, "false")) {
        return verr_set(e, 400, "InvalidParameterValue", "Value (%.16s) for disableApiTermination is invalid", value);
    }
    db_t *db = service_db(ctx);
    char state[32], owner[16], seq_s[24] = "";
    int stopped = 0;
    long long seq = 0;
    PG_AUTO PGresult *r = NULL;
    JSON_AUTO json_t *quotas = NULL;
    if (t && (owner_of(db, account, id, owner, &stopped, &seq, e) < 0 ||
              launch_facts_quotas(ctx, owner, &quotas, e) < 0 ||
              interfaces_fit(ctx, owner, id, stopped, seq, t, json_flag(body, "DryRun"), e) < 0))
        return -1;
    snprintf(seq_s, sizeof seq_s, "%lld", seq);
    if (db_begin(db, e) < 0 || (t && db_lock_xact(db, "instances", owner, e) < 0) ||
        instance_lock(db, account, id, state, e) < 0)
        goto fail;
    /* a terminated instance changes no more (its protection was set with a success) */
    if (!strcmp(state, "terminated") || !strcmp(state, "shutting-down")) {
        verr_set(e, 400, "IncorrectInstanceState", "The instance '%s' is not in a state from which it can be modified.",
                 id);
        goto fail;
    }
    /* (a type for an instance that stopped after the read above: its interfaces were not
     * recorded in the network, so it is refused as if still running; a retry records them) */
    if (strcmp(attr, "disableApiTermination") && (strcmp(state, "stopped") || (t && !stopped))) {
        verr_set(e, 400, "IncorrectInstanceState", "The instance '%s' is not in the 'stopped' state.", id);
        goto fail;
    }
    if (t && resize_fits(ctx, id, t, quotas, e) < 0)
        goto fail;
    if (json_flag(body, "DryRun")) {
        verr_set(e, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.");
        goto fail;
    }
    const char *p[] = {id, attr, value, vc, mem, seq_s};
    r = db_prepared(db, e, "attr_set",
        "UPDATE instances SET "
        "instance_type = CASE WHEN $2 = 'instanceType' THEN $3 ELSE instance_type END, "
        "type_seq = CASE WHEN $2 = 'instanceType' THEN type_seq + 1 ELSE type_seq END, "
        "type_change_since = CASE WHEN $2 = 'instanceType' THEN NULL ELSE type_change_since END, "
        "vcpus = CASE WHEN $2 = 'instanceType' THEN NULLIF($4, '')::int ELSE vcpus END, "
        "memory_mib = CASE WHEN $2 = 'instanceType' THEN NULLIF($5, '')::bigint ELSE memory_mib END, "
        "user_data = CASE WHEN $2 = 'userData' THEN NULLIF($3, '') ELSE user_data END, "
        "disable_api_termination = CASE WHEN $2 = 'disableApiTermination' THEN (CASE WHEN $2 = 'disableApiTermination' THEN $3 END)::boolean "
        "ELSE disable_api_termination END, updated_at = now() WHERE id = $1 AND ($2 <> 'instanceType' OR "
        "type_seq = NULLIF($6, '')::bigint)", 6, p);
    if (!r)
        goto fail;
    /* another type change of this instance was written since the read above: the
     * network's record is this one's no more (the other's number) */
    if (!strcmp(PQcmdTuples(r), "0")) {
        verr_set(e, 400, "IncorrectModificationState", "The instance '%s' was modified concurrently; try again.",
                 id);
        goto fail;
    }
    if ((t && instance_usage_event(db, id, "resized", e) < 0) || db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
fail:
    db_rollback(db);
    return -1;
}
