// The alert inbox: filtered list that keeps itself current, detail with the history in words,
// the actions the alert's state and the user's role allow (each with its own form), evidence
// thumbnails with a viewer, push opt-in.
// New and changed alerts arrive over the update socket (updates.js); while it is down the
// newest page is polled instead, one request at a time.
"use strict";
const PAGE = 50;
const POLL_MS = 1000; // fallback while the socket is down: non-overlapping, once a second
const inbox = { offset: 0, user: null, shown: new Map(), enterprises: {}, orgPaths: {}, current: null, polls: 0, arrived: 0, resyncs: 0 };
window.fsvInbox = inbox;
const REMEMBER = { sound: "fsv_inbox_sound", notify: "fsv_inbox_notify" };

function query(extra = {}) {
  const f = new FormData(document.getElementById("filters"));
  const q = new URLSearchParams();
  for (const name of ["kind", "station", "state", "text"]) if (f.get(name)) q.set(name, f.get(name));
  // The enterprise lies inside the county: the narrower choice decides.
  const org = f.get("org_id") || f.get("county_id");
  if (org) q.set("org_id", org);
  if (f.get("from")) q.set("from", String(fsv.zoned(f.get("from"))));
  if (f.get("to")) q.set("to", String(fsv.zoned(f.get("to")) + 86400));
  if (f.get("overdue")) q.set("overdue", "true");
  if (inbox.camera) { q.set("site_id", inbox.camera.site); q.set("camera_id", inbox.camera.camera); }
  for (const [k, v] of Object.entries(extra)) q.set(k, String(v));
  return q;
}

function enterpriseName(a) { return inbox.enterprises[a.org_path] || a.site_id; }

function row(a) {
  const li = document.createElement("li");
  li.dataset.id = a.id;
  fillRow(li, a);
  li.onclick = () => show(a.id);
  return li;
}

// Regulators tick new alerts to acknowledge them together.
function canBulk() { return inbox.user && inbox.user.role !== "enterprise_staff"; }

function fillRow(li, a) {
  li.className = `alert-item sev-${a.severity || "warning"}${a.overdue ? " overdue" : ""}${inbox.current === a.id ? " selected" : ""}`;
  li.dataset.state = a.state;
  li.dataset.end = String(a.end || "");
  li.innerHTML =
    `<span class="sev" title="${fsv.esc(fsv.t("field.severity"))}">${fsv.esc(fsv.label("severity", a.severity || "warning"))}</span>` +
    `<span class="kind">${fsv.esc(fsv.label("kind", a.kind))}</span>` +
    `<span class="state state-${fsv.esc(a.state)}">${fsv.esc(fsv.label("state", a.state))}</span>` +
    `<span class="where">${fsv.esc(enterpriseName(a))} · ${fsv.esc(fsv.label("station", a.station))}</span>` +
    `<time>${fsv.esc(fsv.time(a.start))}</time>` +
    (a.overdue ? `<span class="flag">${fsv.esc(fsv.t("inbox.overdue"))}</span>` : "");
  if (canBulk() && a.state === "new") {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.className = "pick";
    box.setAttribute("aria-label", fsv.t("inbox.pick"));
    box.onclick = (ev) => { ev.stopPropagation(); bulkButton(); };
    li.prepend(box);
    li.classList.add("pickable");
  }
  bulkButton();
}

function picked() { return [...document.querySelectorAll("#alerts .pick:checked")].map((b) => b.closest("li").dataset.id); }

function bulkButton() {
  const ids = picked();
  const button = document.getElementById("bulk-ack");
  button.hidden = ids.length === 0;
  button.textContent = fsv.t("inbox.bulk_ack", { n: ids.length });
}

async function bulkAcknowledge() {
  const button = document.getElementById("bulk-ack");
  button.disabled = true;
  let failed = 0;
  for (const id of picked()) {
    try {
      await fsv.api(`/api/v1/alerts/${encodeURIComponent(id)}/transitions`, { method: "POST", json: { action: "acknowledge", note: "" } });
      const a = await fsv.api(`/api/v1/alerts/${encodeURIComponent(id)}`);
      const li = inbox.shown.get(id);
      if (li) fillRow(li, a);
    } catch (e) { failed += 1; }
  }
  button.disabled = false;
  bulkButton();
  if (failed) document.getElementById("count").textContent = fsv.t("inbox.bulk_failed", { n: failed });
}

// One listing request at a time: a filter change while one runs waits for it, never overlaps.
let loading = Promise.resolve();
function load(reset) {
  loading = loading.catch(() => {}).then(() => loadPage(reset));
  return loading;
}

async function loadPage(reset) {
  if (reset) { inbox.offset = 0; inbox.shown.clear(); document.getElementById("alerts").innerHTML = ""; }
  const page = await fsv.api(`/api/v1/alerts?${query({ limit: PAGE, offset: inbox.offset })}`);
  const list = document.getElementById("alerts");
  for (const a of page.items) {
    if (inbox.shown.has(a.id)) continue;
    const li = row(a);
    inbox.shown.set(a.id, li);
    list.appendChild(li);
  }
  inbox.offset += page.items.length;
  showCount(page.total);
}

function showCount(total) {
  inbox.total = total;
  document.getElementById("count").textContent = fsv.t("inbox.count", { n: total });
  document.getElementById("empty").hidden = total > 0;
  document.getElementById("more").hidden = inbox.offset >= total;
  document.getElementById("alerts").dataset.loaded = "1";
}

// The newest page again: new alerts go on top (with a chime if wanted), known ones update.
// Runs through `load`'s chain, so it never overlaps a listing request.
function newest() {
  loading = loading.catch(() => {}).then(async () => {
    const page = await fsv.api(`/api/v1/alerts?${query({ limit: 20, offset: 0 })}`);
    const fresh = [];
    for (const a of [...page.items].reverse()) if (place(a)) fresh.push(a);
    if (fresh.length) announce(fresh.reverse());
    showCount(page.total);
  });
  return loading;
}

// Put an alert on the list: a known one is updated, a new one goes on top; true if new.
function place(a) {
  const li = inbox.shown.get(a.id);
  if (li) { if (li.dataset.state !== a.state || li.dataset.end !== String(a.end || "")) fillRow(li, a); return false; }
  const added = row(a);
  added.classList.add("fresh");
  inbox.shown.set(a.id, added);
  document.getElementById("alerts").prepend(added);
  inbox.offset += 1;
  return true;
}

function announce(alerts) {
  inbox.arrived += alerts.length;
  chime();
  notify(alerts);
}

// Does an alert pushed over the socket belong on the list as it is filtered now?
function matches(a) {
  const f = new FormData(document.getElementById("filters"));
  const org = f.get("org_id") || f.get("county_id");
  if (org && !(inbox.orgPaths[org] && (a.org_path || "").startsWith(inbox.orgPaths[org]))) return false;
  for (const name of ["kind", "station"]) if (f.get(name) && a[name] !== f.get(name)) return false;
  if (f.get("state") && !f.get("state").split(",").includes(a.state)) return false;
  if (f.get("from") && a.start < fsv.zoned(f.get("from"))) return false;
  if (f.get("to") && a.start >= fsv.zoned(f.get("to")) + 86400) return false;
  if (f.get("overdue") && !a.overdue) return false;
  if (inbox.camera && (a.site_id !== inbox.camera.site || a.camera_id !== inbox.camera.camera)) return false;
  const text = (f.get("text") || "").trim().toLowerCase();
  if (text && ![a.site_id, a.camera_id, a.rule, inbox.enterprises[a.org_path]].some((v) => String(v || "").toLowerCase().includes(text))) return false;
  return true;
}

// A message from the update socket.
function onUpdate(msg) {
  if (msg.type !== "alert" || !inbox.ready) return;
  const a = msg.alert;
  if (msg.op === "created" && !inbox.shown.has(a.id)) {
    if (!matches(a)) return;
    place(a);
    showCount((inbox.total || 0) + 1);
    announce([a]);
  } else if (inbox.shown.has(a.id)) {
    fillRow(inbox.shown.get(a.id), a);
  }
}

function liveState(up) {
  const dot = document.getElementById("live");
  dot.classList.toggle("down", !up);
  dot.title = fsv.t(up ? "inbox.live_hint" : "inbox.live_polling");
}

// While the socket is down: the newest page once a second, each request after the last.
async function poll() {
  if (!inbox.updates.up) {
    try {
      await newest();
      inbox.polls += 1;
    } catch (e) { /* the next round tries again */ }
  }
  setTimeout(poll, POLL_MS);
}

// The socket (re)connected: whatever happened while it was down comes with one list request.
async function resync() {
  inbox.resyncs += 1;
  try { await newest(); } catch (e) { /* the socket carries what comes next */ }
}

// A desktop notification per new alert, when the user switched it on and the browser allows.
function notify(alerts) {
  if (!document.getElementById("notify").checked || !window.Notification || Notification.permission !== "granted") return;
  for (const a of alerts) {
    const n = new Notification(fsv.label("kind", a.kind), { body: `${enterpriseName(a)} · ${fsv.label("station", a.station)} · ${fsv.time(a.start)}`, tag: a.id });
    n.onclick = () => { window.focus(); show(a.id); };
  }
}

function chime() {
  if (!document.getElementById("sound").checked) return;
  inbox.chimes = (inbox.chimes || 0) + 1;
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    osc.frequency.value = 880;
    osc.connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.2);
  } catch (e) { /* no audio output: the list still shows the alert */ }
}

function historyLine(tr) {
  const params = { who: tr.username, deadline: tr.deadline ? fsv.time(tr.deadline) : "" };
  const words = fsv.t(`history.${tr.action}`, params);
  return `<li><time>${fsv.esc(fsv.time(tr.ts))}</time> ${fsv.esc(words)}` +
    (tr.note ? `<q>${fsv.esc(tr.note)}</q>` : "") + "</li>";
}

function media(a) {
  const base = `/api/v1/alerts/${encodeURIComponent(a.id)}`;
  let out = "";
  if (a.snapshot) out += `<img class="snapshot" alt="${fsv.esc(fsv.t("alert.snapshot"))}" src="${base}/media/${encodeURIComponent(a.snapshot.name)}">`;
  const clip = a.clip || a.first_clip; // the first seconds until the full clip arrives
  if (clip) out += `<video controls playsinline preload="metadata" src="${base}/media/${encodeURIComponent(clip.name)}"></video>`;
  if (!a.clip && a.first_clip) out += `<p class="note">${fsv.esc(fsv.t("alert.first_clip"))}</p>`;
  if (a.camera_id) {
    const hash = `site=${encodeURIComponent(a.site_id)}&camera=${encodeURIComponent(a.camera_id)}&t=${Math.floor(a.start - 10)}`;
    out += `<p><a class="replay-link" href="/replay#${hash}">${fsv.esc(fsv.t("alert.replay_before"))}</a></p>`;
  }
  return out;
}

async function show(id) {
  let a;
  try { a = await fsv.api(`/api/v1/alerts/${encodeURIComponent(id)}`); } catch (e) {
    const box = document.getElementById("detail");
    box.hidden = false;
    box.innerHTML = `<p class="error" role="alert">${fsv.esc(e.message)}</p>`;
    return;
  }
  inbox.current = id;
  for (const [key, li] of inbox.shown) li.classList.toggle("selected", key === id);
  const box = document.getElementById("detail");
  box.hidden = false;
  box.dataset.state = a.state;
  const photos = a.evidence.map((e) => `<button type="button" class="thumb" data-src="/api/v1/alerts/${encodeURIComponent(id)}/evidence/${e.id}">` +
    `<img alt="${fsv.esc(e.filename)}" src="/api/v1/alerts/${encodeURIComponent(id)}/evidence/${e.id}"></button>`).join("");
  box.innerHTML =
    `<header><button type="button" class="back secondary" aria-label="${fsv.esc(fsv.t("common.back"))}">‹</button>` +
    `<h2><span class="sev sev-${fsv.esc(a.severity || "warning")}">${fsv.esc(fsv.label("severity", a.severity || "warning"))}</span> ${fsv.esc(fsv.label("kind", a.kind))}</h2></header>` +
    `<p class="where">${fsv.esc(enterpriseName(a))} · ${fsv.esc(fsv.label("station", a.station))}${a.camera_id ? ` · ${fsv.esc(a.camera_id)}` : ""}</p>` +
    `<p class="facts"><span class="state state-${fsv.esc(a.state)}" id="detail-state">${fsv.esc(fsv.label("state", a.state))}</span> ` +
    `<time>${fsv.esc(fsv.time(a.start))}</time>` +
    (a.deadline ? ` · ${fsv.esc(fsv.t("alert.deadline"))} <time>${fsv.esc(fsv.time(a.deadline))}</time>` : "") +
    (a.overdue ? ` <span class="flag">${fsv.esc(fsv.t("inbox.overdue"))}</span>` : "") + "</p>" +
    (a.model ? `<p class="muted model">${fsv.esc(fsv.t("alert.model"))} <code>${fsv.esc(a.model)}</code></p>` : "") +
    ((a.frame || a.snapshot) && fsv.user && fsv.user.role !== "enterprise_staff" ? `<p><a class="label-link" href="/label#alert=${encodeURIComponent(a.id)}">${fsv.esc(fsv.t("alert.label"))}</a></p>` : "") +
    `<div id="actions" class="actions"></div>` + media(a) +
    `<h3>${fsv.esc(fsv.t("alert.history"))}</h3><ol class="history">${a.transitions.map(historyLine).join("")}</ol>` + (a.transitions.length ? "" : `<p class="muted">${fsv.esc(fsv.t("alert.no_history"))}</p>`) +
    (photos ? `<h3>${fsv.esc(fsv.t("alert.evidence"))}</h3><div class="thumbs">${photos}</div>` : "");
  box.querySelector(".back").onclick = () => { box.hidden = true; inbox.current = null; };
  for (const b of box.querySelectorAll(".thumb")) b.onclick = () => view(b.dataset.src);
  actions(a);
  if (window.matchMedia("(max-width: 800px)").matches) box.scrollIntoView({ block: "start" });
}

function view(src) {
  const dialog = document.getElementById("viewer");
  document.getElementById("viewer-img").src = src;
  dialog.showModal();
}

// The buttons the server says this user may use now, each opening the form it needs.
function actions(a) {
  const box = document.getElementById("actions");
  box.innerHTML = "";
  const bar = document.createElement("div");
  bar.className = "action-bar";
  box.appendChild(bar);
  for (const action of a.allowed_actions || []) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.action = action;
    b.textContent = fsv.label("action", action);
    if (action === "close") b.classList.add("danger");
    b.onclick = () => (action === "acknowledge" ? step(a.id, action, {}) : openForm(a, action));
    bar.appendChild(b);
  }
  if (!bar.children.length) bar.innerHTML = `<span class="muted">${fsv.esc(fsv.t("alert.no_actions"))}</span>`;
}

function openForm(a, action) {
  const box = document.getElementById("actions");
  box.querySelector("form")?.remove();
  const form = document.createElement("form");
  form.className = "action-form";
  form.dataset.action = action;
  const noteKey = action === "close" || action === "reopen" ? "form.reason" : "form.note";
  let html = `<h3>${fsv.esc(fsv.label("action", action))}</h3>` +
    `<label>${fsv.esc(fsv.t(noteKey))}<textarea name="note" required maxlength="4000"></textarea></label>`;
  if (action === "request_rectification") {
    const tomorrow = fsv.date(Date.now() / 1000 + 86400);
    html += `<label>${fsv.esc(fsv.t("form.deadline"))}<input type="date" name="deadline" required min="${tomorrow}" max="${fsv.date(Date.now() / 1000 + 365 * 86400)}" value="${fsv.date(Date.now() / 1000 + 3 * 86400)}"></label>`;
  }
  if (action === "submit_rectification") {
    html += `<label>${fsv.esc(fsv.t("form.photos"))}<input type="file" name="photos" accept="image/*" capture="environment" multiple required></label>`;
  }
  html += `<p class="error" role="alert"></p><div class="form-buttons"><button>${fsv.esc(fsv.t("common.submit"))}</button>` +
    `<button type="button" class="secondary cancel">${fsv.esc(fsv.t("common.cancel"))}</button></div>`;
  form.innerHTML = html;
  form.querySelector(".cancel").onclick = () => form.remove();
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const error = form.querySelector(".error");
    try {
      if (action === "submit_rectification") {
        await fsv.api(`/api/v1/alerts/${encodeURIComponent(a.id)}/rectification`, { method: "POST", body: f });
      } else {
        // The deadline is the end of the chosen day on the site's clock.
        const deadline = f.get("deadline") ? fsv.zoned(f.get("deadline"), "23:59:59") : null;
        await fsv.api(`/api/v1/alerts/${encodeURIComponent(a.id)}/transitions`, { method: "POST", json: { action, note: f.get("note"), deadline } });
      }
    } catch (e) { error.textContent = e.message; return; }
    await refresh(a.id);
  };
  box.appendChild(form);
  form.querySelector("textarea").focus();
}

async function step(id, action, extra) {
  try {
    await fsv.api(`/api/v1/alerts/${encodeURIComponent(id)}/transitions`, { method: "POST", json: { action, note: "", ...extra } });
  } catch (e) {
    const bar = document.querySelector("#actions .action-bar");
    const p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    p.textContent = e.message;
    bar.after(p);
    return;
  }
  await refresh(id);
}

async function refresh(id) {
  await show(id);
  const a = await fsv.api(`/api/v1/alerts/${encodeURIComponent(id)}`);
  const li = inbox.shown.get(id);
  if (li) fillRow(li, a);
}

function b64ToBytes(s) {
  const raw = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

async function enablePush() {
  const { public_key } = await fsv.api("/api/v1/push/vapid-public-key");
  const reg = await navigator.serviceWorker.register("/sw.js");
  const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64ToBytes(public_key) });
  await fsv.api("/api/v1/push/subscriptions", { method: "POST", json: sub.toJSON() });
  document.getElementById("push").textContent = fsv.t("inbox.push_on");
}

async function loadChoices() {
  const [enterprises, counties] = await Promise.all([fsv.api("/api/v1/orgs?level=enterprise"), fsv.api("/api/v1/orgs?level=county")]);
  const option = (sel, value, text, path) => {
    const opt = document.createElement("option");
    opt.value = value;
    opt.textContent = text;
    if (path) opt.dataset.path = path;
    sel.appendChild(opt);
  };
  for (const o of enterprises.items) {
    inbox.enterprises[o.org_path] = o.name;
    inbox.orgPaths[o.id] = o.org_path;
    option(document.getElementById("f-org"), o.id, o.name, o.org_path);
  }
  const county = document.getElementById("f-county");
  for (const o of counties.items) {
    inbox.orgPaths[o.id] = o.org_path;
    option(county, o.id, o.name, o.org_path);
  }
  // A county inspector has one county: the choice would change nothing.
  county.closest("label").hidden = counties.items.length < 2;
  const enums = window.FSV_I18N.enums || {};
  for (const kind of enums.kind || []) option(document.getElementById("f-kind"), kind, fsv.label("kind", kind));
  const stations = (enums.station || []).map((s) => [s, fsv.label("station", s)]).sort((x, y) => x[1].localeCompare(y[1], fsv.lang));
  for (const [s, text] of stations) option(document.getElementById("f-station"), s, text);
}

// Choosing a county keeps only its enterprises in the enterprise list.
function narrowEnterprises() {
  const path = inbox.orgPaths[document.getElementById("f-county").value] || "";
  const sel = document.getElementById("f-org");
  for (const opt of sel.options) if (opt.value) opt.hidden = !opt.dataset.path.startsWith(path);
  if (sel.selectedOptions[0] && sel.selectedOptions[0].hidden) sel.value = "";
}

// Sound and desktop notifications stay as the user left them on this device.
function remembered(id) {
  const box = document.getElementById(id);
  try { box.checked = localStorage.getItem(REMEMBER[id]) === "1"; } catch (e) { box.checked = false; }
  if (id === "notify" && box.checked && (!window.Notification || Notification.permission !== "granted")) box.checked = false;
}

function remember(id) {
  try { localStorage.setItem(REMEMBER[id], document.getElementById(id).checked ? "1" : "0"); } catch (e) { /* private mode */ }
}

fsv.ready.then(async (u) => {
  inbox.user = u;
  // Filters fold away on a phone (the alert comes first) and are always open on a desk.
  const phone = window.matchMedia("(max-width: 480px)");
  const fold = () => { document.getElementById("filter-box").open = !phone.matches; };
  fold();
  phone.addEventListener("change", fold);
  await loadChoices();
  remembered("sound");
  remembered("notify");
  const filters = document.getElementById("filters");
  filters.onchange = (ev) => {
    if (ev.target.id === "sound" || ev.target.id === "notify") return;
    if (ev.target.id === "f-county") narrowEnterprises();
    load(true);
  };
  document.getElementById("sound").addEventListener("change", () => remember("sound"));
  filters.onsubmit = (ev) => { ev.preventDefault(); load(true); };
  let typing = null;
  document.getElementById("f-text").oninput = () => { clearTimeout(typing); typing = setTimeout(() => load(true), 400); };
  document.getElementById("more").onclick = () => load(false);
  document.getElementById("bulk-ack").onclick = () => bulkAcknowledge();
  // The browser asks for permission only when the user ticks the box (a click), never before.
  document.getElementById("notify").onchange = async (ev) => {
    if (ev.target.checked && window.Notification) {
      if (Notification.permission === "default") await Notification.requestPermission();
      ev.target.checked = Notification.permission === "granted";
    } else if (ev.target.checked) ev.target.checked = false;
    remember("notify");
  };
  document.getElementById("push").onclick = () => enablePush().catch(() => { document.getElementById("push").textContent = fsv.t("err.push"); });
  // From a live tile's badge: this camera's alerts only, until the chip is cleared.
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.get("site") && h.get("camera")) {
    inbox.camera = { site: h.get("site"), camera: h.get("camera") };
    const chip = document.getElementById("camera-chip");
    chip.hidden = false;
    chip.textContent = fsv.t("inbox.camera_only", { camera: `${inbox.camera.site}/${inbox.camera.camera}` });
    chip.onclick = () => { inbox.camera = null; chip.hidden = true; history.replaceState(null, "", location.pathname); load(true); };
  }
  await load(true);
  const m = location.hash.match(/alert=([\w-]+)/);
  if (m) await show(m[1]);
  inbox.ready = true;
  inbox.updates = new FsvUpdates({ message: onUpdate, resync, state: liveState }).start();
  liveState(false);
  setTimeout(poll, POLL_MS);
});
