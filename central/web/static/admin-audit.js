// The audit log (admins): filters (who, what, which object, local days, words), pages that
// continue from a cursor, and the CSV of exactly the filtered entries.
"use strict";
const auditPage = { cursor: null, next: null, ready: false, loads: 0, shown: 0 };
window.fsvAudit = auditPage;
const PAGE_SIZE = 50;

function query() {
  const f = new FormData(document.getElementById("filters"));
  const q = new URLSearchParams();
  for (const name of ["actor", "action", "target", "text"]) {
    const v = String(f.get(name) || "").trim();
    if (v) q.set(name, v);
  }
  // Days are the site's days: from its midnight to the midnight after the "to" day.
  if (f.get("from")) q.set("from", String(fsv.zoned(f.get("from"))));
  if (f.get("to")) q.set("to", String(fsv.zoned(f.get("to")) + 86400));
  return q;
}

// A value that names an alert step or an audited action is shown in words.
function detailValue(v) {
  if (typeof v === "object" && v !== null) return JSON.stringify(v);
  if (typeof v === "string" && fsv.has(`action.${v}`)) return fsv.label("action", v);
  if (typeof v === "string" && fsv.has(`audit_action.${v}`)) return fsv.label("audit_action", v);
  return String(v);
}

function detailText(detail) {
  const parts = Object.entries(detail || {}).map(([k, v]) => `${k}: ${detailValue(v)}`);
  return parts.join(" · ");
}

function entryRow(e) {
  const tr = document.createElement("tr");
  tr.dataset.id = e.id;
  tr.dataset.action = e.action;
  const c = (key, html, cls = "") => `<td data-label="${fsv.esc(fsv.t(key))}"${cls ? ` class="${cls}"` : ""}><div>${html}</div></td>`;
  tr.innerHTML =
    c("audit.col_time", `<time>${fsv.esc(fsv.time(e.ts))}</time>`, "nowrap") +
    c("audit.col_actor", fsv.esc(e.username || fsv.t("audit.system"))) +
    c("audit.col_action", fsv.esc(fsv.label("audit_action", e.action))) +
    c("audit.col_target", fsv.esc(e.target || ""), "url") +
    c("audit.col_ip", fsv.esc(e.ip || "")) +
    c("audit.col_detail", fsv.esc(detailText(e.detail)), "detail");
  return tr;
}

async function load(cursor) {
  const error = document.getElementById("error");
  const q = query();
  q.set("limit", String(PAGE_SIZE));
  if (cursor) q.set("before", cursor);
  const csv = new URLSearchParams(query());
  csv.set("format", "csv");
  document.getElementById("csv").href = `/api/v1/audit?${csv}`;
  try {
    const page = await fsv.api(`/api/v1/audit?${q}`);
    document.querySelector("#log tbody").replaceChildren(...page.items.map(entryRow));
    auditPage.cursor = cursor;
    auditPage.next = page.next;
    auditPage.shown = page.items.length;
    document.getElementById("empty").hidden = page.items.length > 0;
    document.getElementById("log").hidden = page.items.length === 0;
    document.getElementById("count").textContent = fsv.t(cursor ? "audit.count_older" : "audit.count", { n: page.items.length });
    const partial = document.getElementById("partial");
    partial.hidden = !page.partial;
    partial.textContent = page.partial ? fsv.t("audit.partial", { n: page.scanned }) : "";
    document.getElementById("older").hidden = !page.next;
    document.getElementById("newest").hidden = !cursor;
    error.textContent = "";
  } catch (e) { error.textContent = e.message; }
  auditPage.loads += 1;
}

fsv.ready.then(async () => {
  const actions = document.getElementById("a-action");
  const known = ((window.FSV_I18N.enums && window.FSV_I18N.enums.audit_action) || []).slice();
  known.sort((a, b) => fsv.label("audit_action", a).localeCompare(fsv.label("audit_action", b), fsv.lang));
  for (const a of known) actions.append(new Option(fsv.label("audit_action", a), a));
  document.getElementById("a-from").value = fsv.date(Date.now() / 1000 - 6 * 86400);
  document.getElementById("a-to").value = fsv.today();
  document.getElementById("filters").onsubmit = (ev) => { ev.preventDefault(); load(null); };
  document.getElementById("older").onclick = () => load(auditPage.next);
  document.getElementById("newest").onclick = () => load(null);
  await load(null);
  auditPage.ready = true;
}).catch((e) => { document.getElementById("error").textContent = e.message; });
