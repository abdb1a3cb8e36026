// services.js - the operator's service health: DescribeServiceHealth, which the gateway
// answers by asking every service for its sys.health over the bus (what `virgadm status`
// asks; one that does not answer in time is down) and compute for its hosts' heartbeats
// (the agents). Operator account only.
import { ec2, list } from "./api.js";
import { h, table, page, orRefusal, poll, stateBadge } from "./ui.js";

let box, when;

const uptime = (s) => {
  s = Number(s || 0);
  if (s >= 86400) return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
};

async function refresh() {
  const r = await orRefusal(box, "Checking the services", () => ec2("DescribeServiceHealth", {}));
  if (!r) return false;
  const rows = list(r.serviceSet);
  const down = rows.filter((s) => s.status !== "healthy").length;
  when.textContent = `Checked at ${r.checkedAt} in ${Math.round(Number(r.elapsedMs))} ms: ` +
    (down ? `${down} of ${rows.length} not healthy.` : `all ${rows.length} healthy.`);
  box.replaceChildren(table("Services", [
    { label: "Service", get: (s) => s.serviceName },
    { label: "Kind", get: (s) => s.kind },
    { label: "Status", get: (s) => stateBadge(s.status === "healthy" ? "up" : s.status) },
    { label: "Version", get: (s) => s.version || "" },
    { label: "Instance", get: (s) => s.instance || "" },
    { label: "Uptime", get: (s) => (s.uptimeSeconds === undefined ? "" : uptime(s.uptimeSeconds)) },
    { label: "Database", get: (s) => s.database || "" },
    { label: "Bus (served / calls / timeouts)", get: (s) => (s.busServed === undefined ? "" : `${s.busServed} / ${s.busCalls} / ${s.busTimeouts}`) },
    { label: "Last answer or heartbeat", get: (s) => s.lastSeen || "never" },
    { label: "Detail", get: (s) => (s.errorCode ? `${s.errorCode}: ${s.errorMessage}` : s.drivers ? `drivers: ${s.drivers}` : "") },
  ], rows, { id: (s) => s.serviceName, empty: "No services are configured." }));
  return true;
}

export async function show() {
  box = h("div", {}, "Checking…");
  when = h("p", { role: "status" });
  const again = h("button", { type: "button", onclick: () => refresh() }, "Check now");
  page("Service health", h("p", { class: "field-hint" }, "Each service asked over the bus every 10 seconds (no answer within 5 s is down); host agents as compute hears their heartbeats."),
    h("div", { class: "toolbar" }, again), when, box);
  if (await refresh()) poll(refresh, 10000);
}
