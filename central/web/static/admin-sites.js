// Edge sites of the administrator's subtree with their online state: register a site and hand
// over its enrolment (credentials shown once, as files to download), or issue new credentials.
"use strict";

const SITE_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;

fsv.ready.then(async () => {
  const A = fsvAdmin;
  const state = { sites: [], loads: 0, ready: false, bundles: 0 };
  const tbody = document.querySelector("#list tbody");
  const q = document.getElementById("q");
  const fOrg = document.getElementById("f-org");
  const fState = document.getElementById("f-state");
  const editor = document.getElementById("editor");
  const form = document.getElementById("site-form");
  const bundle = document.getElementById("bundle");
  A.wireDialog(editor);

  const enterprise = (s) => A.byId.get(s.org_id);

  function render() {
    const text = q.value.trim();
    const root = fOrg.value ? A.byId.get(Number(fOrg.value)) : null;
    const shown = state.sites.filter((s) =>
      (!root || (s.org_path || "").startsWith(root.org_path)) &&
      (!fState.value || A.siteState(s) === fState.value) &&
      (A.match(s.id, text) || A.match(s.name, text) || A.match(enterprise(s)?.name, text)));
    tbody.innerHTML = shown.map((s) => {
      const st = A.siteState(s);
      const ent = enterprise(s);
      return `<tr data-id="${fsv.esc(s.id)}">` +
        `<td data-label="${fsv.esc(fsv.t("admin.field.site_id"))}" class="mono">${fsv.esc(s.id)}</td>` +
        `<td data-label="${fsv.esc(fsv.t("admin.field.site_name"))}">${fsv.esc(s.name)}</td>` +
        `<td data-label="${fsv.esc(fsv.t("admin.field.enterprise"))}" title="${fsv.esc(ent ? A.path(ent) : "")}">${fsv.esc(ent ? A.short(ent) : "")}</td>` +
        `<td data-label="${fsv.esc(fsv.t("admin.field.online"))}"><span class="dot ${st}"></span>${fsv.esc(fsv.label("camera", st))}</td>` +
        `<td data-label="${fsv.esc(fsv.t("admin.field.heartbeat"))}">${s.last_heartbeat_at ? `<time>${fsv.esc(fsv.time(s.last_heartbeat_at))}</time>` : "—"}</td>` +
        `<td class="row-actions"><button type="button" class="secondary small" data-act="rotate">${fsv.esc(fsv.t("admin.sites.rotate"))}</button></td></tr>`;
    }).join("");
    const online = shown.filter((s) => A.siteState(s) === "online").length;
    document.getElementById("count").textContent = fsv.t("admin.sites.count", { n: shown.length, online });
    document.getElementById("empty").hidden = shown.length > 0;
  }

  async function load() {
    const data = await fsv.api("/api/v1/sites");
    state.sites = data.items;
    state.loads += 1;
    render();
  }

  // The enrolment of a site, shown once: the login, both files to download, the snippet.
  function showBundle(site) {
    document.getElementById("bundle-title").textContent = fsv.t("admin.sites.bundle_title", { site: site.id });
    const files = site.files || {};
    const has = Boolean(site.mqtt);
    document.getElementById("b-user").textContent = has ? site.mqtt.username : "—";
    document.getElementById("b-password").textContent = has ? site.mqtt.password : "—";
    document.getElementById("b-snippet").textContent = site.enrolment || "";
    document.getElementById("b-no-broker").hidden = has;
    const box = document.getElementById("b-files");
    box.innerHTML = Object.keys(files).map((name) => `<button type="button" class="secondary" data-file="${fsv.esc(name)}">${fsv.esc(fsv.t("admin.sites.download", { file: name }))}</button>`).join("");
    box.onclick = (ev) => {
      const b = ev.target.closest("button[data-file]");
      if (b) A.download(b.dataset.file, files[b.dataset.file]);
    };
    state.bundles += 1;
    bundle.showModal();
  }
  // Closed: the secret leaves the page.
  bundle.onclose = () => {
    for (const id of ["b-user", "b-password", "b-snippet", "b-files"]) document.getElementById(id).textContent = "";
  };

  function openEditor() {
    form.reset();
    A.clearErrors(form);
    const ents = A.orgs.filter((o) => o.level === "enterprise");
    const chosen = fOrg.value && A.byId.get(Number(fOrg.value))?.level === "enterprise" ? fOrg.value : "";
    A.orgOptions(form.elements.org_id, ents, { blank: ents.length ? fsv.t("admin.choose") : fsv.t("admin.sites.no_enterprise"), value: chosen });
    editor.showModal();
    form.elements.org_id.focus();
  }

  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const f = form.elements;
    const problems = [];
    if (!f.org_id.value) problems.push(["org_id", fsv.t("admin.err.choose")]);
    if (!SITE_ID.test(f.site_id.value)) problems.push(["site_id", f.site_id.value ? fsv.t("admin.err.site_id_shape") : fsv.t("admin.err.required")]);
    if (!A.showChecks(form, problems)) return;
    try {
      const site = await fsv.api("/api/v1/sites", { method: "POST", json: { org_id: Number(f.org_id.value), site_id: f.site_id.value, name: f.name.value.trim() } });
      editor.close("saved");
      await load();
      showBundle(site);
    } catch (e) { A.showServerError(form, e); }
  };

  tbody.onclick = async (ev) => {
    const button = ev.target.closest("button[data-act=rotate]");
    if (!button) return;
    const id = button.closest("tr").dataset.id;
    let issued = null;
    await A.confirm(fsv.t("admin.sites.rotate_q", { site: id }), async () => {
      issued = await fsv.api(`/api/v1/sites/${encodeURIComponent(id)}/credentials`, { method: "POST" });
    });
    if (issued) showBundle(issued);
  };

  document.getElementById("new").onclick = openEditor;
  for (const el of [q, fOrg, fState]) el.oninput = render;
  window.addEventListener("hashchange", () => { fromHash(); render(); });
  function fromHash() {
    const m = location.hash.match(/org=(\d+)/);
    if (m && A.byId.has(Number(m[1]))) fOrg.value = m[1];
  }

  try {
    await A.loadOrgs();
    A.orgOptions(fOrg, A.orgs, { blank: fsv.t("filter.all") });
    fromHash();
    await load();
  } catch (e) { A.fail(e); }
  window.fsvAdminSites = state;
  state.ready = true;
});
