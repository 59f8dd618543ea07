// The big screen: key figures, the org tree one level at a time (click to drill down, the
// breadcrumb to go up), alert trend and kinds, enterprise rankings, the latest alerts.
"use strict";
const REFRESH_MS = 10000;
const dash = { orgId: null, data: null, rank: "open_alerts", charts: {}, seen: new Set(), loads: 0, strip: [], stripOrg: undefined };
const STRIP = 4; // live tiles: the online cameras with the most open alerts in the focus
window.fsvDashboard = dash;

function kpis(t) {
  const rate = t.cameras ? t.online / t.cameras : null;
  const items = [
    ["dash.cameras", t.cameras, ""], ["dash.online", t.online, "good"], ["dash.offline", t.offline, t.offline ? "bad" : ""],
    ["dash.online_rate", fsv.pct(rate), rate != null && rate < 0.9 ? "bad" : "good"],
    ["dash.recording_complete", t.recording_complete, t.recording_complete < t.cameras ? "bad" : "good"],
    ["dash.open_alerts", t.open_alerts, t.open_alerts ? "bad" : ""], ["dash.overdue", t.overdue, t.overdue ? "bad" : ""],
  ];
  document.getElementById("kpis").innerHTML = items.map(([key, value, cls]) =>
    `<div class="kpi ${cls}"><span class="value">${fsv.esc(value)}</span><span class="name">${fsv.esc(fsv.t(key))}</span></div>`).join("");
}

function crumbs(d) {
  const box = document.getElementById("crumbs");
  const top = fsv.user && fsv.user.role === "admin" ? `<a href="?" data-org="">${fsv.esc(fsv.t("dash.all"))}</a>` : "";
  const trail = d.breadcrumb.map((o, i) => (i === d.breadcrumb.length - 1
    ? `<span>${fsv.esc(o.name)}</span>`
    : `<a href="?org_id=${o.id}" data-org="${o.id}">${fsv.esc(o.name)}</a>`)).join("");
  box.innerHTML = top + trail;
  for (const a of box.querySelectorAll("a")) a.onclick = (ev) => { ev.preventDefault(); go(a.dataset.org || null); };
  const focus = d.focus;
  document.getElementById("dash-title").textContent = focus
    ? fsv.t("dash.title_of", { name: focus.name }) : fsv.t("page.dashboard");
}

// The camera's recorded sub stream (its lane), as the site's last heartbeat reported it:
// recording, offline with the edge's reason, not recorded; nothing when not reported.
function subLane(lane) {
  if (!lane) return "";
  const text = lane.state === "offline" && lane.reason
    ? fsv.t("dash.sub_offline_reason", { reason: lane.reason }) : fsv.label("sub_lane", lane.state);
  return `<span class="sub ${fsv.esc(lane.state)}" title="${fsv.esc(text)}">${fsv.esc(text)}</span>`;
}

function tree(d) {
  const box = document.getElementById("tree");
  if (!d.children.length) { box.innerHTML = `<p class="empty">${fsv.esc(fsv.t("dash.no_children"))}</p>`; return; }
  box.innerHTML = "";
  for (const c of d.children) {
    const node = document.createElement(c.kind === "camera" ? "a" : "div");
    const rate = c.cameras ? c.online / c.cameras : 0;
    if (c.kind === "camera") {
      node.className = `node camera ${c.state}`;
      node.href = `/replay#site=${encodeURIComponent(c.site_id)}&camera=${encodeURIComponent(c.camera_id)}`;
      node.innerHTML = `<span class="name"><span class="dot"></span>${fsv.esc(c.name)}</span><span class="lvl">${fsv.esc(fsv.label("station", c.station))}</span>` +
        `<span class="nums"><span>${fsv.esc(fsv.label("camera", c.state))}</span><span class="${c.recording_complete ? "" : "warn"}">${fsv.esc(fsv.t(c.recording_complete ? "dash.recording_complete" : "dash.recording_gaps"))}</span>` +
        `<span class="${c.open_alerts ? "warn" : ""}">${fsv.esc(fsv.t("dash.open_alerts"))} <b>${c.open_alerts}</b></span>${subLane(c.sub_lane)}</span>`;
    } else {
      node.className = "node";
      node.dataset.org = c.id;
      node.tabIndex = 0;
      node.setAttribute("role", "button");
      node.innerHTML = `<span class="name">${fsv.esc(c.name)}</span><span class="lvl">${fsv.esc(fsv.label("level", c.level))}</span>` +
        `<span class="bar"><span></span></span>` +
        `<span class="nums"><span>${fsv.esc(fsv.t("dash.online"))} <b>${c.online}</b></span><span class="${c.offline ? "warn" : ""}">${fsv.esc(fsv.t("dash.offline"))} <b>${c.offline}</b></span>` +
        `<span class="${c.recording_complete < c.cameras ? "warn" : ""}">${fsv.esc(fsv.t("dash.recording_complete"))} <b>${c.recording_complete}</b></span>` +
        `<span class="${c.open_alerts ? "warn" : ""}">${fsv.esc(fsv.t("dash.open_alerts"))} <b>${c.open_alerts}</b></span>` +
        (c.level !== "enterprise" ? `<span>${fsv.esc(fsv.t("dash.enterprises"))} <b>${c.enterprises}</b></span>` : "") + "</span>";
      node.querySelector(".bar span").style.width = `${(rate * 100).toFixed(1)}%`; // CSSOM, allowed by the CSP
      node.onclick = () => go(String(c.id));
      node.onkeydown = (ev) => { if (ev.key === "Enter") go(String(c.id)); };
    }
    box.appendChild(node);
  }
}

function charts(d) {
  const days = d.trend.days.map((x) => x.slice(5));
  fsvCharts.line(dash.charts.trend, days, [
    { name: fsv.t("dash.trend_total"), data: d.trend.total },
    { name: fsv.t("dash.trend_critical"), data: d.trend.critical },
  ]);
  const kinds = Object.entries(d.by_kind).sort((a, b) => b[1] - a[1]);
  if (kinds.length) fsvCharts.bar(dash.charts.kinds, kinds.map(([k]) => fsv.label("kind", k)), kinds.map(([, n]) => n), true);
  else dash.charts.kinds.setOption({ title: { text: fsv.t("dash.no_alerts"), left: "center", top: "middle", textStyle: { color: "#6b84ad", fontSize: 14 } } }, true);
}

function ranking() {
  const rows = dash.data ? dash.data.rankings[dash.rank] : [];
  for (const tab of document.querySelectorAll(".rank-tabs .tab")) tab.classList.toggle("active", tab.dataset.rank === dash.rank);
  const value = (r) => (dash.rank === "online_rate" ? fsv.pct(r.online_rate) : r[dash.rank]);
  document.getElementById("ranking").innerHTML = rows.length
    ? rows.map((r) => `<li><span class="name">${fsv.esc(r.name)}</span><span class="n">${fsv.esc(value(r))}</span></li>`).join("")
    : `<li class="empty"><span class="none">${fsv.esc(fsv.t("dash.rank_none"))}</span></li>`;
}

function ticker(d) {
  const box = document.getElementById("ticker");
  const first = dash.seen.size === 0;
  box.innerHTML = d.latest.length ? d.latest.map((a) =>
    `<li class="${!first && !dash.seen.has(a.id) ? "fresh" : ""}"><span class="sev sev-${fsv.esc(a.severity || "warning")}">${fsv.esc(fsv.label("severity", a.severity || "warning"))}</span>` +
    `<a href="/inbox#alert=${encodeURIComponent(a.id)}">${fsv.esc(a.enterprise)} · ${fsv.esc(fsv.label("kind", a.kind))}</a>` +
    `<time>${fsv.esc(fsv.time(a.start).slice(5))}</time></li>`).join("")
    : `<li><span></span><span class="muted">${fsv.esc(fsv.t("dash.no_alerts"))}</span></li>`;
  for (const a of d.latest) dash.seen.add(a.id);
}

// A few live tiles of the organisation in focus (sub stream), kept while the focus stays.
async function liveStrip() {
  if (dash.stripOrg === dash.orgId) return;
  dash.stripOrg = dash.orgId;
  for (const t of dash.strip) t.player.stop();
  dash.strip = [];
  const box = document.getElementById("strip");
  box.innerHTML = "";
  let cams = [];
  try {
    const q = dash.orgId ? `?org_id=${encodeURIComponent(dash.orgId)}` : "";
    cams = (await fsv.api(`/api/v1/video/wall${q}`)).items;
  } catch (e) { cams = []; }
  cams = cams.filter((c) => c.state === "online").sort((a, b) => b.open_alerts - a.open_alerts).slice(0, STRIP);
  if (!cams.length) { box.innerHTML = `<p class="empty">${fsv.esc(fsv.t("dash.no_live"))}</p>`; return; }
  for (const c of cams) {
    const tile = document.createElement("a");
    tile.className = "strip-tile";
    tile.href = `/live?org_id=${encodeURIComponent(c.enterprise_id)}&grid=1`;
    tile.innerHTML = `<video muted autoplay playsinline></video><span class="msg"></span>` +
      `<span class="cap">${fsv.esc(c.enterprise)} · ${fsv.esc(c.name)}</span>`;
    box.appendChild(tile);
    const video = tile.querySelector("video");
    video.muted = true;
    const msg = tile.querySelector(".msg");
    const base = `/api/v1/video/live/${encodeURIComponent(c.site_id)}/${encodeURIComponent(c.camera_id)}`;
    const player = new FsvPlayer(video, `${base}?stream=sub`, {
      live: true,
      onState: (text, key) => { msg.textContent = key === "player.live" ? "" : text; },
      onEnd: () => { msg.textContent = fsv.t("live.offline"); },
    }).start();
    dash.strip.push({ cam: c, player });
  }
}

async function load() {
  const q = dash.orgId ? `?org_id=${encodeURIComponent(dash.orgId)}` : "";
  const error = document.getElementById("dash-error");
  try {
    const d = await fsv.api(`/api/v1/dashboard${q}`);
    dash.data = d;
    error.textContent = "";
    crumbs(d); kpis(d.totals); tree(d); charts(d); ranking(); ticker(d);
    liveStrip();
    dash.loads += 1;
  } catch (e) { error.textContent = e.message; }
}

// Refresh without overlap: the next round is planned when this one has finished.
async function refreshLoop() {
  await load();
  dash.timer = setTimeout(refreshLoop, REFRESH_MS);
}

function go(orgId) {
  dash.orgId = orgId;
  dash.seen.clear();
  history.replaceState(null, "", orgId ? `?org_id=${orgId}` : location.pathname);
  clearTimeout(dash.timer);
  refreshLoop();
}

function tickClock() { document.getElementById("dash-clock").textContent = fsv.time(Date.now() / 1000); }

fsv.ready.then(async () => {
  dash.orgId = new URLSearchParams(location.search).get("org_id");
  dash.charts.trend = fsvCharts.make(document.getElementById("chart-trend"), true);
  dash.charts.kinds = fsvCharts.make(document.getElementById("chart-kinds"), true);
  for (const tab of document.querySelectorAll(".rank-tabs .tab")) tab.onclick = () => { dash.rank = tab.dataset.rank; ranking(); };
  document.getElementById("fullscreen").onclick = () => {
    const el = document.getElementById("dash");
    (document.fullscreenElement ? document.exitFullscreen() : el.requestFullscreen()).catch(() => {});
  };
  document.addEventListener("fullscreenchange", () => setTimeout(() => fsvCharts.all.forEach((c) => c.resize()), 100));
  tickClock();
  setInterval(tickClock, 1000);
  await refreshLoop();
  dash.ready = true;
});
