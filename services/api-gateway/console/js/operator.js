// operator.js - the operator's pages. Only for users of the operator account; the data
// comes from operator-only actions that the gateway does not serve yet (docs/console.md):
// hosts, accounts and quotas, and service health are on virgadm meanwhile.
import { h, page } from "./ui.js";

export async function show(ctx) {
  if (!ctx.who.is_operator) {
    page("Operator", h("p", { class: "error-text" }, "This page is for the operator account."));
    return;
  }
  page("Operator",
    h("p", {}, "Hosts with capacity and health, accounts and quotas, and service health are not served to the console yet."),
    h("p", {}, "Meanwhile: ", h("code", {}, "virgadm status"), ", ", h("code", {}, "virgadm account list"), ", ",
      h("code", {}, "virgadm quota show ACCOUNT_ID"), "."));
}
