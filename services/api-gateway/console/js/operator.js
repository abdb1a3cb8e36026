// operator.js - the operator's pages, for users of the operator account. Hosts come from
// EC2 DescribeHosts, which compute answers with the whole host registry for the operator
// account's administrator (a tenant gets an empty list). Accounts and quotas
// (accounts.js) and service health (services.js) are pages of their own.
import { ec2, list } from "./api.js";
import { h, table, page, attempt, poll, stateBadge } from "./ui.js";

let box;

const pct = (used, total) => (Number(total) ? ` (${Math.round((100 * Number(used)) / Number(total))} %)` : "");

async function refresh() {
  const r = await attempt("Listing hosts", () => ec2("DescribeHosts", {}));
  if (!r) return;
  const hosts = list(r.hostSet);
  box.replaceChildren(table("Hosts", [
    { label: "Host", get: (x) => x.hostId },
    { label: "Health", get: (x) => stateBadge(x.state === "available" ? "healthy" : "unhealthy") },
    { label: "Last report", get: (x) => x.lastSeen },
    { label: "Zone", get: (x) => x.availabilityZone },
    { label: "Drivers", get: (x) => x.drivers },
    { label: "vCPUs used", get: (x) => {
        const total = Number(x.hostProperties?.totalVCpus || 0), free = Number(x.availableCapacity?.availableVCpus || 0);
        return `${total - free} / ${total}${pct(total - free, total)}`;
      } },
    { label: "Memory used (MiB)", get: (x) => `${x.usedMemoryMiB} / ${x.memoryMiB}${pct(x.usedMemoryMiB, x.memoryMiB)}` },
    { label: "Disk (GiB)", get: (x) => x.diskGiB },
    { label: "Instances", get: (x) => String(list(x.instances).length) },
  ], hosts, { empty: "No hosts have reported." }));
}

export async function show(ctx) {
  if (!ctx.who.is_operator) {
    page("Operator", h("p", { class: "error-text" }, "These pages are for the operator account."));
    return;
  }
  box = h("div", {}, "Loading…");
  page("Operator", h("h2", {}, "Hosts"), h("p", { class: "field-hint" }, "Capacity and health, refreshed every 10 seconds."), box,
    h("p", {}, h("a", { href: "#/accounts" }, "Accounts and quotas"), " · ", h("a", { href: "#/services" }, "Service health")));
  await refresh();
  poll(refresh, 10000);
}
