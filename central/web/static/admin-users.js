// Users of the administrator's subtree: search, create, edit (name, role, organisation,
// password) and disable; roles offered are those the server says the caller may grant.
"use strict";

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$/;

fsv.ready.then(async (me) => {
  const A = fsvAdmin;
  const state = { users: [], roles: [], editing: null, loads: 0 };
  const tbody = document.querySelector("#list tbody");
  const dialog = document.getElementById("editor");
  const form = document.getElementById("user-form");
  const q = document.getElementById("q");
  const fRole = document.getElementById("f-role");
  const fStatus = document.getElementById("f-status");
  A.wireDialog(dialog);

  const orgName = (u) => (u.org_id == null ? fsv.t("admin.users.no_org") : (A.byId.has(u.org_id) ? A.short(A.byId.get(u.org_id)) : String(u.org_id)));
  const orgPath = (u) => (A.byId.has(u.org_id) ? A.path(A.byId.get(u.org_id)) : "");
  const levelOf = (role) => (state.roles.find((r) => r.role === role) || {}).level;

  function render() {
    const text = q.value.trim();
    const shown = state.users.filter((u) =>
      (A.match(u.username, text) || A.match(u.display_name, text) || A.match(orgPath(u), text)) &&
      (!fRole.value || u.role === fRole.value) &&
      (!fStatus.value || (fStatus.value === "disabled") === u.disabled));
    tbody.innerHTML = shown.map((u) => {
      const self = u.id === me.id;
      const toggle = self ? `<span class="muted">${fsv.esc(fsv.t("admin.users.self"))}</span>`
        : `<button type="button" class="${u.disabled ? "secondary" : "danger"} small" data-act="toggle">${fsv.esc(fsv.t(u.disabled ? "admin.users.enable" : "admin.users.disable"))}</button>`;
      return `<tr data-id="${u.id}" class="${u.disabled ? "off" : ""}">` +
        `<td data-label="${fsv.esc(fsv.t("admin.field.username"))}" class="mono">${fsv.esc(u.username)}</td>` +
        `<td data-label="${fsv.esc(fsv.t("admin.field.display_name"))}">${fsv.esc(u.display_name)}</td>` +
        `<td data-label="${fsv.esc(fsv.t("admin.field.role"))}">${fsv.esc(fsv.label("role", u.role))}</td>` +
        `<td data-label="${fsv.esc(fsv.t("admin.field.org"))}" title="${fsv.esc(orgPath(u))}">${fsv.esc(orgName(u))}</td>` +
        `<td data-label="${fsv.esc(fsv.t("admin.field.status"))}"><span class="state ${u.disabled ? "state-off" : "state-closed"}">${fsv.esc(fsv.t(u.disabled ? "admin.status.disabled" : "admin.status.active"))}</span></td>` +
        `<td class="row-actions"><button type="button" class="secondary small" data-act="edit">${fsv.esc(fsv.t("admin.edit"))}</button>${toggle}</td></tr>`;
    }).join("");
    document.getElementById("count").textContent = fsv.t("admin.users.count", { n: shown.length, total: state.users.length });
    document.getElementById("empty").hidden = shown.length > 0;
  }

  async function load() {
    const data = await fsv.api("/api/v1/users");
    state.users = data.items;
    state.loads += 1;
    render();
  }

  // The organisation choice follows the role: only organisations of the level it needs.
  function fillOrgs(role, value) {
    const level = levelOf(role);
    const select = form.elements.org_id;
    const orgs = A.orgs.filter((o) => !level || o.level === level);
    const blank = role === "admin" && me.org_id == null ? fsv.t("admin.users.no_org") : (orgs.length ? null : fsv.t("admin.users.no_orgs"));
    A.orgOptions(select, orgs, { blank, value: value ?? "" });
    if (value == null && !blank && orgs.length) select.value = String(orgs[0].id);
    document.getElementById("org-hint").textContent = level ? fsv.t("admin.hint.org_level", { level: fsv.label("level", level) }) : fsv.t("admin.hint.org_any");
  }

  function openEditor(user) {
    state.editing = user;
    form.reset();
    A.clearErrors(form);
    document.getElementById("editor-title").textContent = user ? fsv.t("admin.users.edit_title", { name: user.username }) : fsv.t("admin.users.new");
    form.elements.username.value = user ? user.username : "";
    form.elements.username.readOnly = Boolean(user);
    form.elements.display_name.value = user ? user.display_name : "";
    form.elements.role.innerHTML = state.roles.map((r) => `<option value="${r.role}">${fsv.esc(fsv.label("role", r.role))}</option>`).join("");
    const role = user ? user.role : (state.roles.find((r) => r.role === "county_inspector") || state.roles[0] || {}).role;
    form.elements.role.value = role;
    // Nobody changes their own role or organisation.
    const self = user && user.id === me.id;
    form.elements.role.disabled = Boolean(self);
    form.elements.org_id.disabled = Boolean(self);
    fillOrgs(role, user ? user.org_id : null);
    document.getElementById("password-label").textContent = fsv.t(user ? "admin.field.new_password" : "admin.field.password");
    dialog.showModal();
    (user ? form.elements.display_name : form.elements.username).focus();
  }

  function checks() {
    const f = form.elements;
    const problems = [];
    if (!state.editing && !USERNAME.test(f.username.value)) problems.push(["username", f.username.value ? fsv.t("admin.err.username_shape") : fsv.t("admin.err.required")]);
    if (state.editing && !f.display_name.value.trim()) problems.push(["display_name", fsv.t("admin.err.required")]);
    if (!f.role.value) problems.push(["role", fsv.t("admin.err.choose")]);
    const level = levelOf(f.role.value);
    if (level && !f.org_id.value) problems.push(["org_id", fsv.t("admin.err.org_required")]);
    const pw = A.checkPassword(f.password.value, !state.editing);
    if (pw) problems.push(["password", pw]);
    return problems;
  }

  form.elements.role.onchange = () => fillOrgs(form.elements.role.value, null);
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    if (!A.showChecks(form, checks())) return;
    const f = form.elements;
    const orgId = f.org_id.value ? Number(f.org_id.value) : null;
    const save = document.getElementById("save");
    save.disabled = true;
    try {
      if (!state.editing) {
        const body = { username: f.username.value, password: f.password.value, role: f.role.value, org_id: orgId };
        if (f.display_name.value.trim()) body.display_name = f.display_name.value.trim();
        await fsv.api("/api/v1/users", { method: "POST", json: body });
      } else {
        const u = state.editing;
        const body = {};
        if (f.display_name.value.trim() !== u.display_name) body.display_name = f.display_name.value.trim();
        if (u.id !== me.id && (f.role.value !== u.role || orgId !== u.org_id)) { body.role = f.role.value; body.org_id = orgId; }
        if (f.password.value) body.password = f.password.value;
        if (Object.keys(body).length) await fsv.api(`/api/v1/users/${u.id}`, { method: "PATCH", json: body });
      }
      dialog.close("saved");
      await load();
    } catch (e) {
      A.showServerError(form, e);
    } finally {
      save.disabled = false;
    }
  };

  tbody.onclick = async (ev) => {
    const button = ev.target.closest("button[data-act]");
    if (!button) return;
    const user = state.users.find((u) => String(u.id) === button.closest("tr").dataset.id);
    if (button.dataset.act === "edit") { openEditor(user); return; }
    const disable = !user.disabled;
    const question = fsv.t(disable ? "admin.users.disable_q" : "admin.users.enable_q", { name: user.username });
    const done = await A.confirm(question, () => fsv.api(`/api/v1/users/${user.id}`, { method: "PATCH", json: { disabled: disable } }));
    if (done) await load();
  };
  document.getElementById("new").onclick = () => openEditor(null);
  for (const el of [q, fRole, fStatus]) el.oninput = render;

  try {
    const [roles] = await Promise.all([fsv.api("/api/v1/users/roles"), A.loadOrgs()]);
    state.roles = roles.items;
    fRole.innerHTML += state.roles.map((r) => `<option value="${r.role}">${fsv.esc(fsv.label("role", r.role))}</option>`).join("");
    await load();
  } catch (e) { A.fail(e); }
  window.fsvAdminUsers = state;
  state.ready = true;
});
