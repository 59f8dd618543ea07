// The organisation tree (province → city → county → enterprise) of the administrator's
// subtree: search, sites online per node, add a child, rename and edit, move to another parent.
"use strict";

fsv.ready.then(async (me) => {
  const A = fsvAdmin;
  const state = { sites: [], selected: null, open: new Set(), loads: 0, ready: false };
  const tree = document.getElementById("tree");
  const q = document.getElementById("q");
  const editor = document.getElementById("org-editor");
  const orgForm = document.getElementById("org-form");
  const mover = document.getElementById("mover");
  const moveForm = document.getElementById("move-form");
  A.wireDialog(editor);
  A.wireDialog(mover);

  const sitesUnder = (org) => state.sites.filter((s) => s.org_path && s.org_path.startsWith(org.org_path));
  const children = (id) => A.orgs.filter((o) => o.parent_id === id).sort((a, b) => a.name.localeCompare(b.name, "zh-CN"));
  const roots = () => A.orgs.filter((o) => !A.byId.has(o.parent_id)).sort((a, b) => a.name.localeCompare(b.name, "zh-CN"));

  // Which nodes to show for a search: the matches and their ancestors (opened).
  function visibleIds(text) {
    if (!text) return null;
    const keep = new Set();
    for (const o of A.orgs) {
      if (!A.match(o.name, text) && !A.match(o.address, text) && !A.match(o.licence_no, text)) continue;
      for (let p = o; p; p = A.byId.get(p.parent_id)) keep.add(p.id);
    }
    return keep;
  }

  function nodeHtml(org, keep) {
    if (keep && !keep.has(org.id)) return "";
    const kids = children(org.id);
    const open = keep ? true : state.open.has(org.id);
    const sites = sitesUnder(org);
    const online = sites.filter((s) => A.siteState(s) === "online").length;
    const count = sites.length ? fsv.t("admin.orgs.online_count", { online, total: sites.length }) : "";
    const caret = kids.length ? `<span class="caret" data-toggle="${org.id}" aria-hidden="true">${open ? "▾" : "▸"}</span>` : `<span class="caret"></span>`;
    const sel = state.selected === org.id ? " selected" : "";
    return `<li role="treeitem" aria-expanded="${kids.length ? open : "false"}" data-id="${org.id}">` +
      `<div class="tree-row${sel}" data-id="${org.id}">${caret}<span class="name">${fsv.esc(org.name)}</span>` +
      `<span class="level">${fsv.esc(fsv.label("level", org.level))}</span>` +
      (count ? `<span class="sites${online < sites.length ? " some-off" : ""}">${fsv.esc(count)}</span>` : "") + `</div>` +
      (kids.length && open ? `<ul role="group">${kids.map((k) => nodeHtml(k, keep)).join("")}</ul>` : "") + `</li>`;
  }

  function renderTree() {
    const keep = visibleIds(q.value.trim());
    tree.innerHTML = roots().map((o) => nodeHtml(o, keep)).join("");
    document.getElementById("empty").hidden = tree.children.length > 0 && tree.textContent.trim() !== "";
  }

  function renderDetail() {
    const org = A.byId.get(state.selected);
    document.getElementById("node").hidden = !org;
    document.getElementById("pick").hidden = Boolean(org);
    if (!org) return;
    document.getElementById("node-name").textContent = org.name;
    document.getElementById("node-level").textContent = org.level === "enterprise" && org.enterprise_type ? `${fsv.label("level", org.level)} · ${fsv.label("etype", org.enterprise_type)}` : fsv.label("level", org.level);
    document.getElementById("node-path").textContent = [A.path(org), org.address, org.licence_no, org.contact, org.phone].filter(Boolean).join(" · ");
    const child = A.childLevel(org.level);
    const add = document.getElementById("add-child");
    add.hidden = !child;
    if (child) add.textContent = fsv.t("admin.orgs.add_child", { level: fsv.label("level", child) });
    document.getElementById("move").hidden = org.level === "province";
    document.getElementById("to-sites").href = `/admin/sites#org=${org.id}`;
    const sites = sitesUnder(org);
    document.querySelector("#node-sites tbody").innerHTML = sites.map((s) => {
      const st = A.siteState(s);
      const ent = A.byId.get(s.org_id);
      const cell = (key, html, cls = "") => `<td data-label="${fsv.esc(fsv.t(key))}"${cls}>${html}</td>`;
      return `<tr>${cell("admin.field.site_id", fsv.esc(s.id), ' class="mono"')}${cell("admin.field.site_name", fsv.esc(s.name))}` +
        `${cell("admin.field.enterprise", fsv.esc(ent ? ent.name : ""))}` +
        `${cell("admin.field.online", `<span class="dot ${st}"></span>${fsv.esc(fsv.label("camera", st))}`)}</tr>`;
    }).join("");
    document.getElementById("node-sites").hidden = sites.length === 0;
    document.getElementById("no-sites").hidden = sites.length > 0;
  }

  function render() { renderTree(); renderDetail(); }

  async function load() {
    const [, sites] = await Promise.all([A.loadOrgs(), fsv.api("/api/v1/sites")]);
    state.sites = sites.items;
    if (state.loads === 0) for (const o of A.orgs) if (o.level !== "county" && o.level !== "enterprise") state.open.add(o.id);
    if (state.selected != null && !A.byId.has(state.selected)) state.selected = null;
    state.loads += 1;
    render();
  }

  function select(id) {
    state.selected = id;
    for (let p = A.byId.get(A.byId.get(id)?.parent_id); p; p = A.byId.get(p.parent_id)) state.open.add(p.id);
    render();
    if (window.matchMedia("(max-width: 800px)").matches) document.getElementById("detail").scrollIntoView({ block: "start" });
  }

  tree.onclick = (ev) => {
    const toggle = ev.target.closest("[data-toggle]");
    if (toggle) {
      const id = Number(toggle.dataset.toggle);
      if (state.open.has(id)) state.open.delete(id); else state.open.add(id);
      renderTree();
      return;
    }
    const row = ev.target.closest(".tree-row");
    if (row) select(Number(row.dataset.id));
  };
  q.oninput = renderTree;

  // One form for a new organisation and for editing one: enterprise fields only where they apply.
  function openOrgForm(mode, org) {
    // mode: "create" (org = parent or null for a province) or "edit" (org = the organisation)
    const level = mode === "edit" ? org.level : (org ? A.childLevel(org.level) : "province");
    orgForm.reset();
    A.clearErrors(orgForm);
    orgForm.dataset.mode = mode;
    orgForm.dataset.level = level;
    orgForm.dataset.id = org ? org.id : "";
    document.getElementById("org-editor-title").textContent = mode === "edit" ? fsv.t("admin.orgs.edit_title", { name: org.name }) : fsv.t("admin.orgs.add_child", { level: fsv.label("level", level) });
    document.getElementById("org-editor-where").textContent = mode === "create" && org ? fsv.t("admin.orgs.under", { name: A.path(org) }) : "";
    const enterprise = level === "enterprise";
    for (const el of orgForm.querySelectorAll(".ent, [data-field=enterprise_type]")) el.hidden = !enterprise;
    if (mode === "edit") {
      for (const name of ["name", "enterprise_type", "address", "licence_no", "contact", "phone", "public_info"]) {
        if (orgForm.elements[name]) orgForm.elements[name].value = org[name] || "";
      }
    }
    editor.showModal();
    orgForm.elements.name.focus();
  }

  orgForm.onsubmit = async (ev) => {
    ev.preventDefault();
    const f = orgForm.elements;
    const { mode, level } = orgForm.dataset;
    const problems = [];
    if (!f.name.value.trim()) problems.push(["name", fsv.t("admin.err.required")]);
    if (level === "enterprise" && !f.enterprise_type.value) problems.push(["enterprise_type", fsv.t("admin.err.choose")]);
    if (!A.showChecks(orgForm, problems)) return;
    const fields = level === "enterprise" ? ["name", "enterprise_type", "address", "licence_no", "contact", "phone", "public_info"] : ["name", "contact", "phone"];
    const body = {};
    for (const name of fields) body[name] = name === "name" ? f[name].value.trim() : f[name].value;
    try {
      let saved;
      if (mode === "edit") {
        const org = A.byId.get(Number(orgForm.dataset.id));
        const changes = Object.fromEntries(Object.entries(body).filter(([k, v]) => (org[k] || "") !== v));
        saved = Object.keys(changes).length ? await fsv.api(`/api/v1/orgs/${org.id}`, { method: "PATCH", json: changes }) : org;
      } else {
        const parent = orgForm.dataset.id ? Number(orgForm.dataset.id) : null;
        saved = await fsv.api("/api/v1/orgs", { method: "POST", json: { ...body, level, parent_id: parent } });
        if (parent != null) state.open.add(parent);
      }
      editor.close("saved");
      state.selected = saved.id;
      await load();
    } catch (e) { A.showServerError(orgForm, e); }
  };

  function openMover(org) {
    const want = A.parentLevel(org.level);
    const parents = A.orgs.filter((o) => o.level === want && o.id !== org.parent_id);
    moveForm.reset();
    A.clearErrors(moveForm);
    moveForm.dataset.id = org.id;
    document.getElementById("mover-title").textContent = fsv.t("admin.orgs.move_title", { name: org.name });
    A.orgOptions(moveForm.elements.parent_id, parents, { blank: parents.length ? fsv.t("admin.choose") : fsv.t("admin.orgs.no_parent") });
    mover.showModal();
  }

  moveForm.onsubmit = async (ev) => {
    ev.preventDefault();
    const value = moveForm.elements.parent_id.value;
    if (!A.showChecks(moveForm, value ? [] : [["parent_id", fsv.t("admin.err.choose")]])) return;
    try {
      const moved = await fsv.api(`/api/v1/orgs/${moveForm.dataset.id}/move`, { method: "POST", json: { parent_id: Number(value) } });
      mover.close("moved");
      state.open.add(Number(value));
      state.selected = moved.id;
      await load();
    } catch (e) { A.showServerError(moveForm, e); }
  };

  document.getElementById("edit").onclick = () => openOrgForm("edit", A.byId.get(state.selected));
  document.getElementById("add-child").onclick = () => openOrgForm("create", A.byId.get(state.selected));
  document.getElementById("move").onclick = () => openMover(A.byId.get(state.selected));
  const newProvince = document.getElementById("new-province");
  newProvince.hidden = me.org_id != null; // provinces are made by administrators of the whole tree
  newProvince.onclick = () => openOrgForm("create", null);

  try { await load(); } catch (e) { A.fail(e); }
  window.fsvAdminOrgs = state;
  state.ready = true;
});
