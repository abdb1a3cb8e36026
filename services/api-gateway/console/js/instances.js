// instances.js - the instances page: a list that refreshes (state, addresses, tags,
// filters), the launch wizard, start/stop/reboot/terminate, and the console output of
// the selected instance, refreshed while it is shown.
import { ec2, list } from "./api.js";
import { h, table, stateBadge, tagsText, nameTag, page, poll, attempt, showOk, formDialog, field, select,
         confirmDialog } from "./ui.js";

let selected = null;            // instance id
let filters = { state: "", text: "" };

async function describe() {
  const f = filters.state ? [{ Name: "instance-state-name", Value: [filters.state] }] : [];
  const r = await ec2("DescribeInstances", { Filter: f });
  const out = [];
  for (const res of list(r.reservationSet)) for (const i of list(res.instancesSet)) out.push(i);
  const q = filters.text.trim().toLowerCase();
  return out.filter((i) => !q || [i.instanceId, i.imageId, i.privateIpAddress, i.ipAddress, tagsText(i.tagSet)]
    .some((v) => (v || "").toLowerCase().includes(q)));
}

const columns = [
  { label: "Name", get: (i) => nameTag(i.tagSet) },
  { label: "Instance", get: (i) => i.instanceId },
  { label: "State", get: (i) => stateBadge(i.instanceState?.name || "") },
  { label: "Type", get: (i) => i.instanceType },
  { label: "Image", get: (i) => i.imageId },
  { label: "Private IP", get: (i) => i.privateIpAddress || "" },
  { label: "Public IP", get: (i) => i.ipAddress || "" },
  { label: "Key", get: (i) => i.keyName || "" },
  { label: "Tags", get: (i) => tagsText(i.tagSet) },
];

async function act(action, label) {
  if (!selected) return;
  if (action === "TerminateInstances" && !(await confirmDialog(`Terminate ${selected}?`, "Terminate"))) return;
  const r = await attempt(label, () => ec2(action, { InstanceId: [selected] }));
  if (r) { showOk(`${label}: ${selected}`); await refresh(); }
}

let listBox, detailBox, consoleBox, stopConsole = null;

async function refresh() {
  const rows = await attempt("Listing instances", describe);
  if (!rows) return;
  const focused = listBox.contains(document.activeElement) ? document.activeElement.closest("tr")?.dataset.id : null;
  listBox.replaceChildren(table("Instances", columns, rows, {
    id: (i) => i.instanceId, selected, empty: "No instances. Launch one.",
    select: (i) => { selected = i.instanceId; showDetail(); },
  }));
  if (focused) listBox.querySelector(`tr[data-id="${focused}"] input`)?.focus();
  const sel = rows.find((i) => i.instanceId === selected);
  detailBox.querySelectorAll("button[data-needs]").forEach((b) => {
    b.disabled = !sel || !b.dataset.needs.split(" ").includes(sel.instanceState?.name);
  });
}

async function loadConsole() {
  if (!selected) return;
  const r = await ec2("GetConsoleOutput", { InstanceId: selected, Latest: "true" });
  const text = r.output ? new TextDecoder().decode(Uint8Array.from(atob(r.output), (c) => c.charCodeAt(0))) : "";
  consoleBox.textContent = text || "(no console output yet)";
  consoleBox.scrollTop = consoleBox.scrollHeight;
}

function showDetail() {
  if (stopConsole) stopConsole();
  const controls = [
    ["StartInstances", "Start", "stopped"], ["StopInstances", "Stop", "running pending"],
    ["RebootInstances", "Reboot", "running"], ["TerminateInstances", "Terminate", "running stopped pending stopping"],
  ].map(([a, label, needs]) => h("button", { type: "button", class: a === "TerminateInstances" ? "danger" : "secondary",
                                             "data-needs": needs, onclick: () => act(a, label) }, label));
  consoleBox = h("pre", { class: "console-output", tabindex: "0", "aria-label": "Console output", "aria-live": "off" },
                 "Loading…");
  detailBox.replaceChildren(h("h2", {}, `Instance ${selected}`), h("div", { class: "toolbar" }, controls),
    h("h2", {}, "Console output"), h("p", { class: "field-hint" }, "Refreshes every 5 seconds."), consoleBox);
  attempt("Console output", loadConsole);
  stopConsole = poll(loadConsole, 5000);
  refresh();
}

async function options(action, params, pick) {
  const r = await ec2(action, params);
  return pick(r);
}

async function launch() {
  const [images, types, keys, subnets, groups] = await Promise.all([
    options("DescribeImages", {}, (r) => list(r.imagesSet).filter((i) => i.imageState === "available")),
    options("DescribeInstanceTypes", {}, (r) => list(r.instanceTypeSet)),
    options("DescribeKeyPairs", {}, (r) => list(r.keySet)),
    options("DescribeSubnets", {}, (r) => list(r.subnetSet)),
    options("DescribeSecurityGroups", {}, (r) => list(r.securityGroupInfo)),
  ]);
  const data = await formDialog("Launch an instance", (form) => {
    form.classList.add("wizard");
    form.append(
      h("fieldset", {}, h("legend", {}, "1. Image and type"),
        field("Image", select("ImageId", images.map((i) => [i.imageId, `${i.name || i.imageId} (${i.imageId})`]),
                              { required: true })),
        field("Instance type", select("InstanceType", types.map((t) => [t.instanceType,
          `${t.instanceType} – ${t.vCpuInfo?.defaultVCpus || "?"} vCPU, ${t.memoryInfo?.sizeInMiB || "?"} MiB`])))),
      h("fieldset", {}, h("legend", {}, "2. Access"),
        field("Key pair", select("KeyName", [["", "(none)"], ...keys.map((k) => [k.keyName, k.keyName])])),
        field("Name tag", h("input", { name: "Name", maxlength: "255" }))),
      h("fieldset", {}, h("legend", {}, "3. Network"),
        field("Subnet", select("SubnetId", [["", "(default VPC)"], ...subnets.map((s) =>
          [s.subnetId, `${s.subnetId} ${s.cidrBlock} (${s.vpcId})`])])),
        field("Security groups", select("SecurityGroupId", groups.map((g) => [g.groupId, `${g.groupName} (${g.groupId}, ${g.vpcId})`]),
                                        { multiple: true, size: String(Math.min(4, Math.max(2, groups.length))) }),
              "None chosen: the VPC's default group.")),
      h("fieldset", {}, h("legend", {}, "4. User data"),
        field("User data", h("textarea", { name: "UserData", rows: "4", cols: "40" }), "A script or cloud-config; sent base64-encoded.")));
    if (!images.length) form.prepend(h("p", { class: "error-text" }, "No images available: register or import one first."));
  }, "Launch");
  if (!data) return;
  const params = { ImageId: data.get("ImageId"), InstanceType: data.get("InstanceType"), MinCount: 1, MaxCount: 1,
                   KeyName: data.get("KeyName"), SubnetId: data.get("SubnetId"), SecurityGroupId: data.getAll("SecurityGroupId") };
  if (data.get("UserData")) params.UserData = btoa(String.fromCharCode(...new TextEncoder().encode(data.get("UserData"))));
  if (data.get("Name")) params.TagSpecification = [{ ResourceType: "instance", Tag: [{ Key: "Name", Value: data.get("Name") }] }];
  const r = await attempt("Launching", () => ec2("RunInstances", params));
  if (!r) return;
  selected = list(r.instancesSet)[0]?.instanceId || null;
  showOk(`Launched ${selected}`);
  if (selected) showDetail(); else refresh();
}

export async function show() {
  const state = select("state", [["", "Any state"], ...["pending", "running", "stopping", "stopped", "shutting-down",
                                                          "terminated"].map((s) => [s, s])], { id: "filter-state" });
  state.value = filters.state;
  const text = h("input", { type: "search", id: "filter-text", value: filters.text, placeholder: "id, IP, tag…" });
  state.addEventListener("change", () => { filters.state = state.value; refresh(); });
  text.addEventListener("input", () => { filters.text = text.value; refresh(); });
  listBox = h("div", { "aria-live": "off" }, h("p", {}, "Loading…"));
  detailBox = h("section", { "aria-label": "Selected instance" });
  page("Instances",
    h("div", { class: "toolbar" },
      h("button", { type: "button", id: "launch", onclick: () => attempt("Launch wizard", launch) }, "Launch instance"),
      h("label", { for: "filter-state" }, "State"), state, h("label", { for: "filter-text" }, "Search"), text),
    listBox, detailBox);
  await refresh();
  if (selected) showDetail();
  poll(refresh, 3000);
}
