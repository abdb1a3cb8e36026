// accounts.js - the operator's accounts and their quotas: DescribeAccounts,
// DescribeAccountQuotas and ModifyAccountQuota, Virga actions that the gateway serves to
// the operator account only (docs/console.md) - the same rows of its action table as any
// call, so a tenant who opens this page sees the gateway's refusal, not a hidden link.
import { ec2, list } from "./api.js";
import { h, table, page, attempt, showOk, orRefusal, formDialog, field } from "./ui.js";

const LABELS = {
  instances: "Instances", vcpus: "vCPUs", memory_mib: "Memory (MiB)", elastic_ips: "Elastic IPs", vpcs: "VPCs",
  buckets: "Buckets", stored_bytes: "Stored bytes", key_pairs: "Key pairs", users: "Users",
};
const label = (r) => LABELS[r] || r;

let box, quotaBox, selected = "";

async function showQuotas(acct) {
  selected = acct;
  const r = await attempt(`Reading the quotas of ${acct}`, () => ec2("DescribeAccountQuotas", { AccountId: acct }));
  if (!r) return;
  quotaBox.replaceChildren(h("h2", {}, `Quotas of ${acct}`), table(`Quotas of ${acct}`, [
    { label: "Resource", get: (q) => label(q.resource) },
    { label: "Limit", get: (q) => Number(q.value).toLocaleString() },
    { label: "Actions", get: (q) => h("button", { type: "button", class: "secondary", "aria-label": `Change ${label(q.resource)} quota`,
        onclick: () => change(acct, q) }, "Change") },
  ], list(r.quotaSet), { id: (q) => q.resource, empty: "No quotas." }));
}

async function change(acct, q) {
  const f = await formDialog(`Change the ${label(q.resource)} quota of ${acct}`, (form) => form.append(
    ...field("Limit", h("input", { name: "Value", type: "number", min: "0", step: "1", required: true, value: q.value }),
             "The most the account may have; what it has already stays.")), "Save");
  if (!f) return;
  const r = await attempt("Changing the quota", () => ec2("ModifyAccountQuota", { AccountId: acct, Resource: q.resource, Value: f.get("Value") }));
  if (r) {
    await showQuotas(acct);   // the table first: the message says what it shows
    showOk(`${label(q.resource)} quota of ${acct} is now ${f.get("Value")}`);
  }
}

export async function show() {
  box = h("div", {}, "Loading…");
  quotaBox = h("div", { "aria-live": "polite" });
  page("Accounts and quotas", h("p", { class: "field-hint" }, "Every account of the cloud; select one to see and change its quotas."),
    box, quotaBox);
  const r = await orRefusal(box, "Listing accounts", () => ec2("DescribeAccounts", {}));
  if (!r) return;
  box.replaceChildren(table("Accounts", [
    { label: "Account id", get: (a) => a.accountId },
    { label: "Name", get: (a) => a.accountName },
    { label: "Operator", get: (a) => (a.isOperator === "true" ? "yes" : "no") },
    { label: "Users", get: (a) => a.userCount },
    { label: "Created", get: (a) => a.createTime },
    { label: "E-mail", get: (a) => a.email || "" },
  ], list(r.accountSet), { id: (a) => a.accountId, select: (a) => showQuotas(a.accountId), selected, empty: "No accounts." }));
  if (selected) await showQuotas(selected);
}
