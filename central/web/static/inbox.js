// The alert inbox: list, detail with history, workflow buttons, evidence upload, push opt-in.
"use strict";
let offset = 0;
let user = null;
let enterprises = {}; // org_path → enterprise name, for the list's enterprise column
const ACTIONS = {
  acknowledge: "确认 Acknowledge", request_rectification: "要求整改 Request rectification",
  close: "关闭 Close", reopen: "重新打开 Reopen",
};

// One listing request at a time: a click while one runs waits for it instead of overlapping.
let loading = Promise.resolve();
function load(reset) {
  loading = loading.catch(() => {}).then(() => loadPage(reset));
  return loading;
}

async function loadPage(reset) {
  if (reset) { offset = 0; document.querySelector("#alerts tbody").innerHTML = ""; }
  const q = new URLSearchParams({ limit: 50, offset });
  const state = document.getElementById("state").value;
  if (state) q.set("state", state);
  if (document.getElementById("overdue").checked) q.set("overdue", "true");
  const page = await fsv.api(`/api/v1/alerts?${q}`);
  const body = document.querySelector("#alerts tbody");
  for (const a of page.items) {
    const tr = document.createElement("tr");
    if (a.overdue) tr.className = "overdue";
    tr.innerHTML = `<td>${fsv.time(a.start)}</td><td>${fsv.esc(enterprises[a.org_path] || a.site_id)}</td><td>${fsv.esc(a.station)}</td>` +
      `<td>${fsv.esc(a.kind)}</td><td><span class="state">${fsv.esc(a.state)}</span></td>`;
    tr.onclick = () => show(a.id);
    body.appendChild(tr);
  }
  offset += page.items.length;
  document.getElementById("more").hidden = offset >= page.total;
}

async function show(id) {
  const a = await fsv.api(`/api/v1/alerts/${id}`);
  const box = document.getElementById("detail");
  box.hidden = false;
  const media = (a.snapshot ? `<img alt="snapshot" src="/api/v1/alerts/${id}/media/${encodeURIComponent(a.snapshot.name)}">` : "") +
    (a.clip ? `<video controls playsinline preload="metadata" src="/api/v1/alerts/${id}/media/${encodeURIComponent(a.clip.name)}"></video>` : "") +
    `<p><a href="/replay#site=${encodeURIComponent(a.site_id)}&camera=${encodeURIComponent(a.camera_id)}&t=${Math.floor(a.start - 10)}">回放 Replay from 10 s before</a></p>`;
  const history = a.transitions.map((t) => `<li>${fsv.time(t.ts)} ${fsv.esc(t.username)}: ${fsv.esc(t.action)} → ${fsv.esc(t.to_state)} ${fsv.esc(t.note)}</li>`).join("");
  const photos = a.evidence.map((e) => `<a target="_blank" href="/api/v1/alerts/${id}/evidence/${e.id}">${fsv.esc(e.filename)}</a>`).join(" ");
  box.innerHTML = `<h2>${fsv.esc(a.kind)} · ${fsv.esc(enterprises[a.org_path] || "")} · ${fsv.esc(a.site_id)}/${fsv.esc(a.camera_id)}</h2>${media}` +
    `<p>状态 state: <b>${fsv.esc(a.state)}</b>${a.deadline ? ` · 期限 deadline ${fsv.time(a.deadline)}` : ""}${a.overdue ? " · <b>逾期 overdue</b>" : ""}</p>` +
    `<ol>${history}</ol><p>${photos}</p><div id="act"></div>`;
  const act = document.getElementById("act");
  const staff = user.role === "enterprise_staff"; // staff submit; regulators run the workflow
  for (const [action, label] of staff ? [] : Object.entries(ACTIONS)) {
    const b = document.createElement("button");
    b.textContent = label;
    b.onclick = () => step(id, action);
    act.appendChild(b);
  }
  if (a.state === "rectification_requested" && (staff || user.role === "admin")) {
    const form = document.createElement("form");
    form.innerHTML = `<h3>提交整改 Submit rectification</h3><textarea name="note" required></textarea>` +
      `<input type="file" name="photos" accept="image/*" capture="environment" multiple required><button>提交 Submit</button>`;
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      try {
        await fsv.api(`/api/v1/alerts/${id}/rectification`, { method: "POST", body: new FormData(form) });
      } catch (e) { alert(e.message); return; }
      show(id); load(true);
    };
    act.appendChild(form);
  }
}

async function step(id, action) {
  const note = action === "acknowledge" || action === "close" ? "" : prompt("说明 Note") || "";
  let deadline_days = null;
  if (action === "request_rectification") {
    const days = Number(prompt("期限（天）Deadline in days", "3") || "3");
    deadline_days = days;
  }
  try {
    await fsv.api(`/api/v1/alerts/${id}/transitions`, { method: "POST", json: { action, note, deadline_days } });
  } catch (e) { alert(e.message); }
  show(id); load(true);
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
  document.getElementById("push").textContent = "推送已开启 Push on";
}

async function loadEnterprises() {
  const orgs = await fsv.api("/api/v1/orgs?level=enterprise");
  enterprises = Object.fromEntries(orgs.items.map((o) => [o.org_path, o.name]));
}

fsv.ready.then(async (u) => {
  user = u;
  await loadEnterprises();
  document.getElementById("state").onchange = () => load(true);
  document.getElementById("overdue").onchange = () => load(true);
  document.getElementById("more").onclick = () => load(false);
  document.getElementById("push").onclick = () => enablePush().catch((e) => alert(e.message));
  const m = location.hash.match(/alert=([\w-]+)/);
  if (m) show(m[1]).catch((e) => { // e.g. a link to an alert outside the user's scope
    const box = document.getElementById("detail");
    box.hidden = false;
    box.textContent = e.message;
  });
  return load(true);
});
