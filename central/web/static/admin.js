// Shared by the administration pages: the organisation list with readable paths, forms whose
// errors appear next to their field in the page's language, a confirm dialog, downloads.
"use strict";

// Server refusals ("field: what is wrong") in words; the field prefix says where to show it.
const ADMIN_ERRORS = [
  [/already exists/, () => fsv.t("admin.err.taken")],
  [/at least (\d+) char/, (m) => fsv.t("admin.err.min_chars", { n: m[1] })],
  [/at most (\d+) char/, (m) => fsv.t("admin.err.max_chars", { n: m[1] })],
  [/letters and digits or symbols/, () => fsv.t("admin.err.password_weak")],
  [/2-64 letters/, () => fsv.t("admin.err.username_shape")],
  [/lower-case letters|should match pattern/, () => fsv.t("admin.err.site_id_shape")],
  [/needs an organisation/, () => fsv.t("admin.err.org_required")],
  [/belongs to an? (\w+)/, (m) => fsv.t("admin.err.org_level", { level: fsv.label("level", m[1]) })],
  [/hangs under an? (\w+)/, (m) => fsv.t("admin.err.parent_level", { level: fsv.label("level", m[1]) })],
  [/may not grant/, () => fsv.t("admin.err.grant")],
  [/province has no parent/, () => fsv.t("admin.err.province_root")],
  [/needs a name|must not be empty/, () => fsv.t("admin.err.required")],
  [/must be one of|Input should be/, () => fsv.t("admin.err.choose")],
  [/cannot disable your own/, () => fsv.t("admin.err.self")],
  [/`broker` section/, () => fsv.t("admin.err.no_broker")],
];
const PASSWORD_MIN = 10;

const fsvAdmin = {
  orgs: [],
  byId: new Map(),
  levels: ["province", "city", "county", "enterprise"],

  async loadOrgs() {
    const data = await fsv.api("/api/v1/orgs");
    fsvAdmin.orgs = data.items;
    fsvAdmin.byId = new Map(data.items.map((o) => [o.id, o]));
    return fsvAdmin.orgs;
  },
  // "宁夏 › 中卫市 › 沙坡头区": the organisation and its ancestors the caller may see.
  path(org) {
    const names = [];
    for (let o = org; o; o = fsvAdmin.byId.get(o.parent_id)) names.unshift(o.name);
    return names.join(" › ");
  },
  // The last two names ("中卫市 › 沙坡头区"): enough to tell places apart in a list.
  short(org) { return fsvAdmin.path(org).split(" › ").slice(-2).join(" › "); },
  childLevel(level) { const i = fsvAdmin.levels.indexOf(level); return i >= 0 && i < 3 ? fsvAdmin.levels[i + 1] : null; },
  parentLevel(level) { const i = fsvAdmin.levels.indexOf(level); return i > 0 ? fsvAdmin.levels[i - 1] : null; },
  orgOptions(select, orgs, { blank = null, value = "" } = {}) {
    const opts = orgs.map((o) => `<option value="${o.id}" title="${fsv.esc(fsvAdmin.path(o))}">${fsv.esc(fsvAdmin.short(o))}</option>`).join("");
    select.innerHTML = (blank ? `<option value="">${fsv.esc(blank)}</option>` : "") + opts;
    select.value = String(value ?? "");
  },
  siteState(site) { return site.agent_state === "online" || site.agent_state === "offline" ? site.agent_state : "unknown"; },
  match(text, q) { return !q || String(text || "").toLowerCase().includes(q.toLowerCase()); },

  // Forms: every <label data-field> holds its control and a .field-error span.
  clearErrors(form) {
    for (const span of form.querySelectorAll(".field-error")) span.textContent = "";
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    const general = form.querySelector(".form-error");
    if (general) general.textContent = "";
  },
  fieldError(form, field, text) {
    const label = form.querySelector(`[data-field="${field}"]`);
    if (!label || label.hidden) {
      const general = form.querySelector(".form-error");
      general.textContent = [general.textContent, text].filter(Boolean).join(" ");
      return;
    }
    label.querySelector(".field-error").textContent = text;
    const control = label.querySelector("input, select, textarea");
    if (control) control.setAttribute("aria-invalid", "true");
  },
  // Checks of the page before sending: [[field, message], ...]; true if none failed.
  showChecks(form, problems) {
    fsvAdmin.clearErrors(form);
    for (const [field, text] of problems) fsvAdmin.fieldError(form, field, text);
    const first = problems.length ? form.querySelector(`[data-field="${problems[0][0]}"] input, [data-field="${problems[0][0]}"] select`) : null;
    if (first) first.focus();
    return problems.length === 0;
  },
  // An API refusal shown next to the fields it names (the rest above the buttons).
  showServerError(form, err) {
    fsvAdmin.clearErrors(form);
    const message = (err.data && err.data.error && err.data.error.message) || "";
    const parts = message ? message.split("; ") : [];
    let placed = false;
    for (const part of parts) {
      const m = part.match(/^([a-z_]+)(?:\.\d+)?: (.*)$/);
      if (!m) continue;
      const rule = ADMIN_ERRORS.find(([re]) => re.test(m[2]));
      fsvAdmin.fieldError(form, m[1], rule ? rule[1](m[2].match(rule[0])) : err.message);
      placed = true;
    }
    if (!placed) {
      const rule = ADMIN_ERRORS.find(([re]) => re.test(message));
      form.querySelector(".form-error").textContent = rule ? rule[1](message.match(rule[0])) : err.message;
    }
  },
  checkPassword(value, required) {
    if (!value) return required ? fsv.t("admin.err.required") : null;
    if (value.length < PASSWORD_MIN) return fsv.t("admin.err.min_chars", { n: PASSWORD_MIN });
    if (/^\d+$/.test(value) || /^\p{L}+$/u.test(value)) return fsv.t("admin.err.password_weak");
    return null;
  },
  // The dialogs' cancel buttons close without submitting.
  wireDialog(dialog) {
    for (const b of dialog.querySelectorAll("button.cancel")) b.onclick = () => dialog.close("cancel");
  },
  // A question in the page's own dialog (never the browser's confirm box); resolves to true
  // once `run` (if any) succeeded, false when cancelled. An error of `run` stays in the dialog.
  confirm(text, run = null) {
    const dialog = document.getElementById("confirm");
    const form = dialog.querySelector("form");
    document.getElementById("confirm-text").textContent = text;
    form.querySelector(".form-error").textContent = "";
    return new Promise((resolve) => {
      const ok = document.getElementById("confirm-ok");
      ok.disabled = false;
      form.onsubmit = async (ev) => {
        if (ev.submitter && ev.submitter.value !== "ok") { resolve(false); return; }
        if (!run) { resolve(true); return; }
        ev.preventDefault();
        ok.disabled = true;
        try { await run(); dialog.close("ok"); resolve(true); } catch (e) {
          form.querySelector(".form-error").textContent = e.message;
          ok.disabled = false;
        }
      };
      dialog.onclose = () => { if (dialog.returnValue !== "ok") resolve(false); };
      dialog.returnValue = "";
      dialog.showModal();
    });
  },
  download(name, text) {
    const url = URL.createObjectURL(new Blob([text], { type: "application/x-yaml" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  },
  fail(e) { document.getElementById("error").textContent = e.message; },
};
window.fsvAdmin = fsvAdmin;
// On a phone the header's menu and the tab bar scroll sideways: keep "管理" and the open tab
// in view.
function showActiveMenu() {
  for (const active of document.querySelectorAll("header.top nav.menu a.active, nav.admin-tabs a.active")) {
    const bar = active.parentElement;
    bar.scrollLeft = Math.max(0, active.offsetLeft - bar.offsetLeft + active.offsetWidth - bar.clientWidth);
  }
}
fsv.ready.then(showActiveMenu, () => {});
window.addEventListener("resize", showActiveMenu);
