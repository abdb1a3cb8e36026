// network.js - VPCs, subnets and elastic IP addresses.
import { ec2, list } from "./api.js";
import { h, table, page, attempt, showOk, formDialog, field, select, confirmDialog, nameTag } from "./ui.js";

let box;

const del = (what, action, params, label) => h("button", { type: "button", class: "danger", "aria-label": `Delete ${label}`,
  onclick: async () => {
    if (!(await confirmDialog(`Delete ${label}?`, "Delete"))) return;
    if (await attempt(`Deleting ${what}`, () => ec2(action, params))) { showOk(`Deleted ${label}`); refresh(); }
  } }, "Delete");

async function refresh() {
  const [v, s, a, i] = await Promise.all([
    attempt("Listing VPCs", () => ec2("DescribeVpcs", {})),
    attempt("Listing subnets", () => ec2("DescribeSubnets", {})),
    attempt("Listing addresses", () => ec2("DescribeAddresses", {})),
    attempt("Listing instances", () => ec2("DescribeInstances", {})),
  ]);
  const instances = list(i?.reservationSet).flatMap((r) => list(r.instancesSet)).filter((x) => x.instanceState?.name !== "terminated");
  box.replaceChildren(
    h("h2", {}, "VPCs"),
    h("button", { type: "button", onclick: createVpc }, "Create VPC"),
    table("VPCs", [
      { label: "Name", get: (x) => nameTag(x.tagSet) },
      { label: "VPC", get: (x) => x.vpcId },
      { label: "CIDR", get: (x) => x.cidrBlock },
      { label: "State", get: (x) => x.state },
      { label: "Default", get: (x) => (x.isDefault === "true" ? "yes" : "no") },
      { label: "Actions", get: (x) => del("the VPC", "DeleteVpc", { VpcId: x.vpcId }, x.vpcId) },
    ], list(v?.vpcSet), { empty: "No VPCs." }),
    h("h2", {}, "Subnets"),
    h("button", { type: "button", onclick: () => createSubnet(list(v?.vpcSet)) }, "Create subnet"),
    table("Subnets", [
      { label: "Subnet", get: (x) => x.subnetId },
      { label: "VPC", get: (x) => x.vpcId },
      { label: "CIDR", get: (x) => x.cidrBlock },
      { label: "Zone", get: (x) => x.availabilityZone },
      { label: "Free addresses", get: (x) => x.availableIpAddressCount },
      { label: "Actions", get: (x) => del("the subnet", "DeleteSubnet", { SubnetId: x.subnetId }, x.subnetId) },
    ], list(s?.subnetSet), { empty: "No subnets." }),
    h("h2", {}, "Elastic IP addresses"),
    h("button", { type: "button", onclick: allocate }, "Allocate address"),
    table("Elastic IP addresses", [
      { label: "Address", get: (x) => x.publicIp },
      { label: "Allocation", get: (x) => x.allocationId },
      { label: "Instance", get: (x) => x.instanceId || "" },
      { label: "Private IP", get: (x) => x.privateIpAddress || "" },
      { label: "Actions", get: (x) => h("span", {},
          x.associationId
            ? h("button", { type: "button", class: "secondary", "aria-label": `Disassociate ${x.publicIp}`,
                onclick: () => act("Disassociating", "DisassociateAddress", { AssociationId: x.associationId }) }, "Disassociate")
            : h("button", { type: "button", class: "secondary", "aria-label": `Associate ${x.publicIp}`,
                onclick: () => associate(x, instances) }, "Associate"),
          " ", h("button", { type: "button", class: "danger", "aria-label": `Release ${x.publicIp}`,
                onclick: () => act("Releasing", "ReleaseAddress", { AllocationId: x.allocationId }) }, "Release")) },
    ], list(a?.addressesSet), { empty: "No addresses." }));
}

async function act(what, action, params) {
  if (await attempt(what, () => ec2(action, params))) { showOk(`${what}: done`); refresh(); }
}

async function createVpc() {
  const f = await formDialog("Create a VPC", (form) => form.append(
    ...field("IPv4 CIDR", h("input", { name: "CidrBlock", value: "10.10.0.0/16", required: true }))));
  if (f) act("Creating the VPC", "CreateVpc", { CidrBlock: f.get("CidrBlock") });
}

async function createSubnet(vpcs) {
  const f = await formDialog("Create a subnet", (form) => form.append(
    ...field("VPC", select("VpcId", vpcs.map((v) => [v.vpcId, `${v.vpcId} ${v.cidrBlock}`]))),
    ...field("IPv4 CIDR", h("input", { name: "CidrBlock", required: true, placeholder: "10.10.1.0/24" }))));
  if (f) act("Creating the subnet", "CreateSubnet", { VpcId: f.get("VpcId"), CidrBlock: f.get("CidrBlock") });
}

function allocate() { act("Allocating an address", "AllocateAddress", { Domain: "vpc" }); }

async function associate(addr, instances) {
  const f = await formDialog(`Associate ${addr.publicIp}`, (form) => form.append(
    ...field("Instance", select("InstanceId", instances.map((x) => [x.instanceId, `${x.instanceId} ${nameTag(x.tagSet)}`])))), "Associate");
  if (f) act("Associating", "AssociateAddress", { AllocationId: addr.allocationId, InstanceId: f.get("InstanceId") });
}

export async function show() {
  box = h("div", {}, "Loading…");
  page("VPCs, subnets and addresses", box);
  await refresh();
}
