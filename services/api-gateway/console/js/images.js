// images.js - images: the list (own, shared and public), import from an object in the
// object store with its progress, launch permissions, deregister.
import { ec2, list } from "./api.js";
import { h, table, page, attempt, showOk, formDialog, field, select, poll, stateBadge, confirmDialog } from "./ui.js";

let box, tasksBox, who;

async function permissions(img) {
  const r = await attempt("Reading permissions", () => ec2("DescribeImageAttribute", { ImageId: img.imageId, Attribute: "launchPermission" }));
  if (!r) return;
  const current = list(r.launchPermission).map((p) => p.group === "all" ? "everyone (public)" : p.userId).join(", ") || "only this account";
  const f = await formDialog(`Launch permissions of ${img.imageId}`, (form) => form.append(
    h("p", {}, "Now: " + current),
    ...field("Change", select("Op", [["add", "Grant"], ["remove", "Revoke"]])),
    ...field("Account id, or \"all\" for everyone", h("input", { name: "Who", required: true, pattern: "all|[0-9]{12}" }))), "Apply");
  if (!f) return;
  const target = f.get("Who") === "all" ? { Group: "all" } : { UserId: f.get("Who") };
  const key = f.get("Op") === "add" ? "Add" : "Remove";
  if (await attempt("Changing permissions", () => ec2("ModifyImageAttribute",
      { ImageId: img.imageId, LaunchPermission: { [key]: [target] } }))) showOk("Permissions changed");
}

async function deregister(img) {
  if (!(await confirmDialog(`Deregister ${img.imageId}?`, "Deregister"))) return;
  if (await attempt("Deregistering", () => ec2("DeregisterImage", { ImageId: img.imageId }))) { showOk("Deregistered"); refresh(); }
}

async function refresh() {
  const [r, t] = await Promise.all([
    attempt("Listing images", () => ec2("DescribeImages", {})),
    attempt("Listing imports", () => ec2("DescribeImportImageTasks", {})),
  ]);
  if (r) box.replaceChildren(table("Images", [
    { label: "Name", get: (i) => i.name || "" },
    { label: "Image", get: (i) => i.imageId },
    { label: "State", get: (i) => stateBadge(i.imageState) },
    { label: "Owner", get: (i) => i.imageOwnerId === who.account_id ? "you" : i.imageOwnerId },
    { label: "Public", get: (i) => (i.isPublic === "true" ? "yes" : "no") },
    { label: "Actions", get: (i) => i.imageOwnerId !== who.account_id ? "" : h("span", {},
        h("button", { type: "button", class: "secondary", onclick: () => permissions(i), "aria-label": `Permissions of ${i.imageId}` }, "Permissions"), " ",
        h("button", { type: "button", class: "danger", onclick: () => deregister(i), "aria-label": `Deregister ${i.imageId}` }, "Deregister")) },
  ], list(r.imagesSet), { empty: "No images." }));
  if (t) tasksBox.replaceChildren(table("Image imports", [
    { label: "Task", get: (x) => x.importTaskId },
    { label: "Status", get: (x) => stateBadge(x.status) },
    { label: "Progress", get: (x) => x.progress ? h("progress", { max: "100", value: x.progress, "aria-label": `Progress of ${x.importTaskId}` }) : "" },
    { label: "Image", get: (x) => x.imageId || "" },
    { label: "Message", get: (x) => x.statusMessage || "" },
  ], list(t.importImageTaskSet), { empty: "No imports." }));
}

async function importImage() {
  const f = await formDialog("Import an image from the object store", (form) => form.append(
    ...field("Bucket", h("input", { name: "Bucket", required: true })),
    ...field("Key", h("input", { name: "Key", required: true })),
    ...field("Format", select("Format", ["qcow2", "raw", "vmdk", "vhd", "vhdx", "vdi"].map((x) => [x, x]))),
    ...field("Description", h("input", { name: "Description" }))), "Import");
  if (!f) return;
  const r = await attempt("Importing", () => ec2("ImportImage", { Description: f.get("Description"),
    DiskContainer: [{ Format: f.get("Format"), UserBucket: { S3Bucket: f.get("Bucket"), S3Key: f.get("Key") } }] }));
  if (r) { showOk(`Import ${r.importTaskId} started`); refresh(); }
}

export async function show(ctx) {
  who = ctx.who;
  box = h("div", {}, "Loading…");
  tasksBox = h("div", {});
  page("Images", h("div", { class: "toolbar" }, h("button", { type: "button", onclick: importImage }, "Import image")),
       box, h("h2", {}, "Imports"), tasksBox);
  await refresh();
  poll(refresh, 5000);
}
