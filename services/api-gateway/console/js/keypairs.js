// keypairs.js - key pairs: create (the private key is offered once, as a download),
// import a public key, delete.
import { ec2, list } from "./api.js";
import { h, table, page, attempt, showOk, formDialog, field, select, download, confirmDialog } from "./ui.js";

let box;

async function refresh() {
  const r = await attempt("Listing key pairs", () => ec2("DescribeKeyPairs", {}));
  if (!r) return;
  box.replaceChildren(table("Key pairs", [
    { label: "Name", get: (k) => k.keyName },
    { label: "Type", get: (k) => k.keyType || "" },
    { label: "Fingerprint", get: (k) => k.keyFingerprint },
    { label: "Actions", get: (k) => h("button", { type: "button", class: "danger", "aria-label": `Delete key pair ${k.keyName}`,
                                                onclick: () => remove(k.keyName) }, "Delete") },
  ], list(r.keySet), { empty: "No key pairs." }));
}

async function remove(name) {
  if (!(await confirmDialog(`Delete key pair ${name}?`, "Delete"))) return;
  if (await attempt("Deleting the key pair", () => ec2("DeleteKeyPair", { KeyName: name }))) {
    showOk(`Deleted key pair ${name}`);
    refresh();
  }
}

async function create() {
  const f = await formDialog("Create a key pair", (form) => form.append(
    ...field("Name", h("input", { name: "KeyName", required: true, maxlength: "255" })),
    ...field("Type", select("KeyType", [["ed25519", "ed25519"], ["rsa", "rsa"]]))));
  if (!f) return;
  const r = await attempt("Creating the key pair", () => ec2("CreateKeyPair", { KeyName: f.get("KeyName"), KeyType: f.get("KeyType") }));
  if (!r) return;
  // shown once: the cloud keeps only the public half
  download(`${r.keyName}.pem`, r.keyMaterial);
  showOk(`Created ${r.keyName}: its private key was downloaded (it is not kept).`);
  refresh();
}

async function importKey() {
  const f = await formDialog("Import a public key", (form) => form.append(
    ...field("Name", h("input", { name: "KeyName", required: true })),
    ...field("Public key (OpenSSH format)", h("textarea", { name: "Material", rows: "4", required: true }))), "Import");
  if (!f) return;
  const material = btoa(f.get("Material").trim());
  if (await attempt("Importing the key", () => ec2("ImportKeyPair", { KeyName: f.get("KeyName"), PublicKeyMaterial: material }))) {
    showOk(`Imported ${f.get("KeyName")}`);
    refresh();
  }
}

export async function show() {
  box = h("div", {}, "Loading…");
  page("Key pairs", h("div", { class: "toolbar" },
    h("button", { type: "button", onclick: create }, "Create key pair"),
    h("button", { type: "button", class: "secondary", onclick: importKey }, "Import public key")), box);
  await refresh();
}
