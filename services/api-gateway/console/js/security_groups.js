// security_groups.js - security groups and their rules: create and delete groups, add
// and remove inbound and outbound rules.
import { ec2, list } from "./api.js";
import { h, table, page, attempt, showOk, formDialog, field, select, confirmDialog } from "./ui.js";

let box, selected = null;

const ruleText = (p) => {
  const proto = p.ipProtocol === "-1" ? "all" : p.ipProtocol;
  const ports = p.ipProtocol === "-1" ? "all" : p.fromPort === p.toPort ? p.fromPort : `${p.fromPort}-${p.toPort}`;
  return { proto, ports };
};

// One row per (permission, source): what Revoke needs to remove exactly that one.
function rules(perms) {
  const out = [];
  for (const p of list(perms)) {
    for (const r of list(p.ipRanges)) out.push({ p, source: r.cidrIp, kind: "IpRanges", value: { CidrIp: r.cidrIp } });
    for (const g of list(p.groups)) out.push({ p, source: g.groupId, kind: "UserIdGroupPairs", value: { GroupId: g.groupId } });
    for (const r of list(p.ipv6Ranges)) out.push({ p, source: r.cidrIpv6, kind: "Ipv6Ranges", value: { CidrIpv6: r.cidrIpv6 } });
  }
  return out;
}

function permission(rule) {
  const perm = { IpProtocol: rule.p.ipProtocol, [rule.kind]: [rule.value] };
  if (rule.p.ipProtocol !== "-1") { perm.FromPort = rule.p.fromPort; perm.ToPort = rule.p.toPort; }
  return perm;
}

async function revoke(g, rule, egress) {
  const action = egress ? "RevokeSecurityGroupEgress" : "RevokeSecurityGroupIngress";
  if (await attempt("Removing the rule", () => ec2(action, { GroupId: g.groupId, IpPermissions: [permission(rule)] }))) {
    showOk("Rule removed");
    refresh();
  }
}

async function addRule(g, egress) {
  const f = await formDialog(`Add an ${egress ? "outbound" : "inbound"} rule to ${g.groupName}`, (form) => form.append(
    ...field("Protocol", select("IpProtocol", [["tcp", "TCP"], ["udp", "UDP"], ["icmp", "ICMP"], ["-1", "All traffic"]])),
    ...field("From port", h("input", { name: "FromPort", type: "number", min: "-1", max: "65535", value: "22" })),
    ...field("To port", h("input", { name: "ToPort", type: "number", min: "-1", max: "65535", value: "22" })),
    ...field(egress ? "Destination CIDR" : "Source CIDR", h("input", { name: "Cidr", value: "0.0.0.0/0", required: true }),
             "An IPv4 CIDR such as 10.0.0.0/16, or a group id (sg-…).")), "Add rule");
  if (!f) return;
  const cidr = f.get("Cidr").trim();
  const perm = { IpProtocol: f.get("IpProtocol") };
  if (perm.IpProtocol !== "-1") { perm.FromPort = f.get("FromPort"); perm.ToPort = f.get("ToPort"); }
  if (cidr.startsWith("sg-")) perm.Groups = [{ GroupId: cidr }];
  else perm.IpRanges = [{ CidrIp: cidr }];
  const action = egress ? "AuthorizeSecurityGroupEgress" : "AuthorizeSecurityGroupIngress";
  if (await attempt("Adding the rule", () => ec2(action, { GroupId: g.groupId, IpPermissions: [perm] }))) {
    showOk("Rule added");
    refresh();
  }
}

function rulesTable(g, egress) {
  const rows = rules(egress ? g.ipPermissionsEgress : g.ipPermissions);
  return [
    h("h3", {}, egress ? "Outbound rules" : "Inbound rules"),
    table(`${egress ? "Outbound" : "Inbound"} rules of ${g.groupName}`, [
      { label: "Protocol", get: (r) => ruleText(r.p).proto },
      { label: "Ports", get: (r) => String(ruleText(r.p).ports) },
      { label: egress ? "Destination" : "Source", get: (r) => r.source },
      { label: "Actions", get: (r) => h("button", { type: "button", class: "danger",
          "aria-label": `Remove ${egress ? "outbound" : "inbound"} rule ${ruleText(r.p).proto} ${ruleText(r.p).ports} ${r.source}`,
          onclick: () => revoke(g, r, egress) }, "Remove") },
    ], rows, { empty: "No rules." }),
    h("button", { type: "button", class: "secondary", onclick: () => addRule(g, egress) },
      egress ? "Add outbound rule" : "Add inbound rule"),
  ];
}

async function createGroup() {
  const vpcs = list((await ec2("DescribeVpcs", {})).vpcSet);
  const f = await formDialog("Create a security group", (form) => form.append(
    ...field("Name", h("input", { name: "GroupName", required: true })),
    ...field("Description", h("input", { name: "GroupDescription", required: true })),
    ...field("VPC", select("VpcId", vpcs.map((v) => [v.vpcId, `${v.vpcId} ${v.cidrBlock}${v.isDefault === "true" ? " (default)" : ""}`])))));
  if (!f) return;
  const r = await attempt("Creating the group", () => ec2("CreateSecurityGroup", Object.fromEntries(f)));
  if (r) { selected = r.groupId; showOk(`Created ${r.groupId}`); refresh(); }
}

async function deleteGroup(g) {
  if (!(await confirmDialog(`Delete security group ${g.groupName}?`, "Delete"))) return;
  if (await attempt("Deleting the group", () => ec2("DeleteSecurityGroup", { GroupId: g.groupId }))) {
    selected = null;
    showOk(`Deleted ${g.groupId}`);
    refresh();
  }
}

async function refresh() {
  const r = await attempt("Listing security groups", () => ec2("DescribeSecurityGroups", {}));
  if (!r) return;
  const groups = list(r.securityGroupInfo);
  const g = groups.find((x) => x.groupId === selected);
  box.replaceChildren(table("Security groups", [
    { label: "Name", get: (x) => x.groupName },
    { label: "Group", get: (x) => x.groupId },
    { label: "VPC", get: (x) => x.vpcId },
    { label: "Description", get: (x) => x.groupDescription },
  ], groups, { id: (x) => x.groupId, selected, select: (x) => { selected = x.groupId; refresh(); } }),
  g ? h("section", { "aria-label": `Rules of ${g.groupName}` }, h("h2", {}, `${g.groupName} (${g.groupId})`),
        ...rulesTable(g, false), ...rulesTable(g, true),
        h("p", {}, h("button", { type: "button", class: "danger", onclick: () => deleteGroup(g) }, "Delete group"))) : "");
}

export async function show() {
  box = h("div", {}, "Loading…");
  page("Security groups", h("div", { class: "toolbar" },
    h("button", { type: "button", onclick: () => attempt("Create group", createGroup) }, "Create security group")), box);
  await refresh();
}
