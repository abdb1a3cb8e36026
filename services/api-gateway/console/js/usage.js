// usage.js - usage and cost for the account. The accounting service (issue: usage
// metering) has not landed in this build: this page says so instead of inventing numbers.
import { h, page } from "./ui.js";

export async function show() {
  page("Usage and cost",
    h("p", {}, "Usage and cost reports come from the accounting service, which this cloud does not run yet."),
    h("p", { class: "muted" }, "When it lands, this page shows instance hours, storage and transfer for your account."));
}
