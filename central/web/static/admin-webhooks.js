// Webhooks (admins): add one (its signing key shown once), test it, pause or delete it, and
// see how its deliveries of the last 7 days went.
"use strict";
const hooksPage = { orgs: {}, ready: false, loads: 0 };
window.fsvWebhooks = hooksPage;

const FORMAT_KEYS = { json: "webhook.format_json", wecom: "webhook.format_wecom", dingtalk: "webhook.format_dingtalk" };

function cell(label, html, cls = "") {
  // One child beside the label on a phone, whatever the cell holds.
  return `<td data-label="${fsv.esc(label)}"${cls ? ` class="${cls}"` : ""}><div>${html}</div></td>`;
}

function events(filters) {
  const kinds = (filters.kinds || []).map((k) => fsv.label("kind", k));
  const parts = [kinds.length ? kinds.join("、") : fsv.t("webhook.all_kinds")];
  if (filters.min_severity && filters.min_severity !== "info") parts.push(fsv.t("webhook.at_least", { severity: fsv.label("severity", filters.min_severity) }));
  return parts.join(" · ");
}

function counts(d) {
  return `<span class="counts"><span class="good">${fsv.esc(fsv.t("webhook.delivered"))} <span class="n">${d.delivered}</span></span> · ` +
    `<span class="${d.failed ? "bad" : ""}">${fsv.esc(fsv.t("webhook.failed"))} <span class="n">${d.failed}</span></span>` +
    (d.pending ? ` · ${fsv.esc(fsv.t("webhook.pending"))} <span class="n">${d.pending}</span>` : "") + "</span>" +
    (d.delivered_at ? `<br><span class="muted">${fsv.esc(fsv.t("webhook.last_ok"))} <time>${fsv.esc(fsv.time(d.delivered_at))}</time></span>` : "");
}

function hookRow(h) {
  const tr = document.createElement("tr");
  tr.dataset.id = h.id;
  const d = h.deliveries;
  const state = h.enabled ? `<span class="badge on">${fsv.esc(fsv.t("webhook.enabled"))}</span>` : `<span class="badge off">${fsv.esc(fsv.t("webhook.paused"))}</span>`;
  const fmt = `${fsv.esc(fsv.t(FORMAT_KEYS[h.format] || "webhook.format_json"))}${h.signed ? ` · ${fsv.esc(fsv.t("webhook.signed"))}` : ""}`;
  tr.innerHTML =
    cell(fsv.t("webhook.org"), fsv.esc(hooksPage.orgs[h.org_id] ? hooksPage.orgs[h.org_id].name : h.org_id)) +
    cell(fsv.t("webhook.url"), `${fsv.esc(h.url)}<br><span class="muted">${fmt}</span>`, "url") +
    cell(fsv.t("webhook.events"), fsv.esc(events(h.filters || {}))) +
    cell(fsv.t("webhook.state"), state) +
    cell(fsv.t("webhook.deliveries"), counts(d)) +
    cell(fsv.t("webhook.last_error"), d.error ? `${fsv.esc(d.error)}<br><time>${fsv.esc(fsv.time(d.error_at))}</time>` : `<span class="muted">${fsv.esc(fsv.t("common.none"))}</span>`, d.error ? "error-text" : "") +
    cell(fsv.t("webhook.actions"), '<div class="row-actions"></div>');
  const box = tr.querySelector(".row-actions");
  const result = document.createElement("span");
  result.className = "result";
  const button = (key, cls, action) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = cls;
    b.dataset.action = action;
    b.textContent = fsv.t(key);
    box.append(b);
    return b;
  };
  button("webhook.test", "secondary", "test").onclick = async (ev) => {
    ev.target.disabled = true;
    result.className = "result";
    result.textContent = fsv.t("webhook.testing");
    try {
      const r = await fsv.api(`/api/v1/webhooks/${h.id}/test`, { method: "POST" });
      result.className = `result ${r.ok ? "ok" : "bad"}`;
      result.textContent = r.ok ? fsv.t("webhook.test_ok") : fsv.t("webhook.test_failed", { error: r.error });
    } catch (e) { result.className = "result bad"; result.textContent = e.message; }
    ev.target.disabled = false;
  };
  button(h.enabled ? "webhook.pause" : "webhook.resume", "secondary", h.enabled ? "pause" : "resume").onclick = async () => {
    try {
      await fsv.api(`/api/v1/webhooks/${h.id}`, { method: "PATCH", json: { enabled: !h.enabled } });
      await load();
    } catch (e) { result.className = "result bad"; result.textContent = e.message; }
  };
  // Deleting asks twice on the button itself (no browser dialog).
  const del = button("webhook.delete", "danger", "delete");
  del.onclick = async () => {
    if (del.dataset.armed !== "1") { del.dataset.armed = "1"; del.textContent = fsv.t("webhook.delete_confirm"); return; }
    try {
      await fsv.api(`/api/v1/webhooks/${h.id}`, { method: "DELETE" });
      await load();
    } catch (e) { result.className = "result bad"; result.textContent = e.message; }
  };
  box.append(result);
  return tr;
}

async function load() {
  const error = document.getElementById("error");
  try {
    const data = await fsv.api("/api/v1/webhooks");
    const body = document.querySelector("#hooks tbody");
    body.replaceChildren(...data.items.map(hookRow));
    document.getElementById("empty").hidden = data.items.length > 0;
    document.getElementById("hooks").hidden = data.items.length === 0;
    document.getElementById("count").textContent = fsv.t("webhook.count", { n: data.items.length });
    document.getElementById("window").textContent = fsv.t("webhook.window");
    error.textContent = "";
  } catch (e) { error.textContent = e.message; }
  hooksPage.loads += 1;
}

function formatChanged() {
  const fmt = document.getElementById("w-format").value;
  document.getElementById("w-generate-box").hidden = fmt !== "json";
  const generate = document.getElementById("w-generate").checked;
  document.getElementById("w-secret-box").hidden = fmt === "wecom" || (fmt === "json" && generate);
}

async function addHook(ev) {
  ev.preventDefault();
  const form = ev.target;
  const error = document.getElementById("add-error");
  error.textContent = "";
  const f = new FormData(form);
  const url = String(f.get("url") || "").trim();
  if (!/^https?:\/\/\S+$/.test(url)) { error.textContent = fsv.t("webhook.url_required"); form.elements.url.focus(); return; }
  const fmt = f.get("format");
  const generate = fmt === "json" && form.elements.generate_secret.checked;
  const body = {
    org_id: Number(f.get("org_id")), url, format: fmt,
    secret: generate || fmt === "wecom" ? "" : String(f.get("secret") || ""),
    generate_secret: generate,
    filters: { kinds: f.getAll("kinds"), min_severity: f.get("min_severity") },
  };
  const submit = document.getElementById("w-submit");
  submit.disabled = true;
  try {
    const hook = await fsv.api("/api/v1/webhooks", { method: "POST", json: body });
    form.elements.url.value = "";
    form.elements.secret.value = "";
    if (hook.secret) {
      document.getElementById("secret-value").textContent = hook.secret;
      document.getElementById("secret-once").hidden = false;
    }
    await load();
  } catch (e) { error.textContent = e.message; }
  submit.disabled = false;
}

fsv.ready.then(async () => {
  const orgs = (await fsv.api("/api/v1/orgs")).items.sort((a, b) => a.org_path.localeCompare(b.org_path));
  const select = document.getElementById("w-org");
  for (const o of orgs) {
    hooksPage.orgs[o.id] = o;
    const depth = o.org_path.split("/").filter(Boolean).length - 1;
    select.append(new Option(`${"\u3000".repeat(depth)}${o.name} · ${fsv.label("level", o.level)}`, o.id));
  }
  const kinds = document.getElementById("w-kinds");
  for (const kind of (window.FSV_I18N.enums && window.FSV_I18N.enums.kind) || []) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.name = "kinds"; box.value = kind;
    label.append(box, ` ${fsv.label("kind", kind)}`);
    kinds.append(label);
  }
  document.getElementById("w-format").onchange = formatChanged;
  document.getElementById("w-generate").onchange = formatChanged;
  formatChanged();
  document.getElementById("add-hook").onsubmit = addHook;
  document.getElementById("secret-done").onclick = () => {
    document.getElementById("secret-value").textContent = "";
    document.getElementById("secret-once").hidden = true;
  };
  if (window.matchMedia("(max-width: 480px)").matches) document.getElementById("add-box").open = false;
  await load();
  hooksPage.ready = true;
}).catch((e) => { document.getElementById("error").textContent = e.message; });
