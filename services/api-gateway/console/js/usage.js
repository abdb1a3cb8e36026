// usage.js - usage and cost for the account, one calendar month (UTC) at a time: the totals
// from DescribeUsage and the invoice from GetInvoice, the same Virga actions a tenant's
// tools call (docs/accounting.md, "Showback"). The account is always the caller's own.
import { ec2, list } from "./api.js";
import { h, table, page, attempt, field } from "./ui.js";

let box;

// "YYYY-MM" of this month, and the first days of a month and of the next one
function thisMonth() {
  return new Date().toISOString().slice(0, 7);
}

function bounds(month) {
  const [y, m] = month.split("-").map(Number);
  const next = m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, "0")}`;
  return [`${month}-01`, `${next}-01`];
}

async function refresh(month) {
  const [start, end] = bounds(month);
  box.replaceChildren("Loading…");
  const usage = await attempt("Reading usage", () => ec2("DescribeUsage", { StartTime: start, EndTime: end, MaxResults: 1 }));
  const parts = [];
  if (usage) {
    parts.push(table(`Usage in ${month}`, [
      { label: "Usage type", get: (t) => t.usageType },
      { label: "Item", get: (t) => t.item || "" },
      { label: "Cloud", get: (t) => t.cloud },
      { label: "Quantity", get: (t) => `${t.quantity} ${t.unit}` },
      { label: "Records", get: (t) => t.records },
    ], list(usage.usageTotalSet), { empty: "No usage recorded in this month." }));
  }
  // a cloud whose operator loaded no price list (accounting.price_list) has usage but
  // no cost: said where the cost would be, not as an error
  let noPrices = false;
  const inv = await attempt("Reading the invoice", () => ec2("GetInvoice", { Month: month }).catch((e) => {
    if (e.code !== "NoPriceList") throw e;
    noPrices = true;
    return undefined;
  }));
  if (noPrices)
    parts.push(h("p", { class: "muted", "data-state": "no-price-list" }, "No price list is loaded in this cloud, so no cost is shown."));
  if (inv && inv.invoice) {
    const i = inv.invoice;
    parts.push(table(`Cost in ${month} (${i.currency})`, [
      { label: "Usage type", get: (l) => l.usageType },
      { label: "Item", get: (l) => l.item || "" },
      { label: "Cloud", get: (l) => l.cloud },
      { label: "Quantity", get: (l) => `${l.quantity} ${l.quantityUnit}` },
      { label: "Unit price", get: (l) => l.unitPrice },
      { label: "Amount", get: (l) => l.amount },
    ], list(i.lineSet), { empty: "Nothing to pay in this month." }),
    h("p", { class: "total" }, `Total: ${i.total} ${i.currency}`));
  }
  box.replaceChildren(...(parts.length ? parts : [h("p", { class: "muted" }, "No usage or cost to show.")]));
}

export async function show() {
  box = h("div", {}, "Loading…");
  const month = h("input", { type: "month", name: "Month", value: thisMonth(), required: true });
  const form = h("form", { class: "toolbar", onsubmit: (ev) => { ev.preventDefault(); refresh(month.value); } },
    ...field("Month", month), h("button", { type: "submit" }, "Show"));
  page("Usage and cost", form, box);
  await refresh(month.value);
}
