// Replay: pick a camera and a day, see recorded ranges, gaps and alerts on a timeline,
// click to seek, change speed, export a clip with its signed manifest.
"use strict";

const replay = {
  cam: null, // {site_id, camera_id}
  dayStart: 0, // UTC seconds of the local midnight shown
  data: null, // the recordings answer
  player: null,
  seekedTo: null,
};
window.fsvReplay = replay;

const DAY = 86400;

// Days and clock times are the site's (fsv.zoned / fsv.clock), whatever the browser's zone.
function pad(n) { return String(n).padStart(2, "0"); }
function clock(ts) { return fsv.clock(ts); }
function localMidnight(value) { return fsv.zoned(value); }
function pct(ts) { return `${(100 * (ts - replay.dayStart)) / DAY}%`; }

async function loadCameras() {
  const cams = await fsv.api("/api/v1/cameras");
  const sel = document.getElementById("camera");
  for (const c of cams.items) {
    const opt = document.createElement("option");
    opt.value = `${c.site_id}/${c.camera_id}`;
    opt.textContent = `${c.name} · ${fsv.label("station", c.station)} · ${c.enterprise || c.site_id}`;
    sel.appendChild(opt);
  }
}

function parseHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.get("site") && h.get("camera")) document.getElementById("camera").value = `${h.get("site")}/${h.get("camera")}`;
  const t = Number(h.get("t"));
  document.getElementById("day").value = fsv.date(t || Date.now() / 1000);
  return t || null;
}

async function show() {
  const [site, camera] = document.getElementById("camera").value.split("/");
  replay.cam = { site_id: site, camera_id: camera };
  replay.dayStart = localMidnight(document.getElementById("day").value);
  const q = new URLSearchParams({ start: replay.dayStart, end: replay.dayStart + DAY });
  const state = document.getElementById("state");
  state.textContent = fsv.t("replay.asking");
  try {
    replay.data = await fsv.api(`/api/v1/video/recordings/${site}/${camera}?${q}`);
  } catch (e) {
    state.textContent = e.message;
    return;
  }
  state.textContent = "";
  drawTimeline();
  listExports();
}

function drawTimeline() {
  const box = document.getElementById("timeline");
  box.querySelectorAll(".rec,.gap,.alert").forEach((el) => el.remove());
  const add = (cls, start, end, title) => {
    const el = document.createElement("div");
    el.className = cls;
    el.style.left = pct(start);
    if (end != null) el.style.width = `${(100 * (end - start)) / DAY}%`;
    el.title = title;
    box.appendChild(el);
  };
  for (const g of replay.data.gaps) add("gap", g.start, g.end || Date.now() / 1000, fsv.t("replay.gap", { reason: g.reason }));
  for (const r of replay.data.ranges) add(r.codec === "hevc" ? "rec hevc" : "rec", r.start, r.end, `${clock(r.start)}–${clock(r.end)} ${r.codec}`);
  for (const a of replay.data.alerts) add("alert", a.start, null, `${fsv.label("kind", a.kind)} ${clock(a.start)}`);
  const hours = document.getElementById("hours");
  hours.innerHTML = [0, 3, 6, 9, 12, 15, 18, 21, 24].map((h) => `<span>${pad(h)}</span>`).join("");
}

function seek(ts) {
  if (!replay.cam) return null;
  if (replay.player) replay.player.stop();
  replay.seekedTo = ts;
  const speed = Number(document.getElementById("speed").value);
  const url = `/api/v1/video/replay/${replay.cam.site_id}/${replay.cam.camera_id}?start=${ts}&speed=${speed}`;
  const video = document.getElementById("video");
  const state = document.getElementById("state");
  const player = new FsvPlayer(video, url, {
    live: false,
    startAt: ts,
    onState: (text) => { state.textContent = text; },
    onEnd: (reason) => {
      if (reason === "no viewers") return;
      state.textContent = fsv.t("replay.ended");
      state.title = String(reason || "");
    },
  });
  video.playbackRate = speed;
  replay.player = player.start();
  document.getElementById("from").value = clock(ts);
  document.getElementById("to").value = clock(ts + 60);
  return player;
}

function tick() {
  const p = replay.player;
  const now = p && p.wallNow();
  if (now != null) {
    document.getElementById("clock").textContent = clock(now);
    document.getElementById("cursor").style.left = pct(now);
    const v = document.getElementById("video");
    v.playbackRate = Number(document.getElementById("speed").value);
  }
}

function timeOfDay(value) {
  const [h, m, s] = value.split(":").map(Number);
  return replay.dayStart + h * 3600 + m * 60 + (s || 0);
}

async function exportClip() {
  const out = document.getElementById("export-state");
  const start = timeOfDay(document.getElementById("from").value);
  const end = timeOfDay(document.getElementById("to").value);
  try {
    const job = await fsv.api("/api/v1/video/exports", { method: "POST", json: { ...replay.cam, start, end } });
    out.textContent = fsv.t("replay.exporting", { id: job.id.slice(0, 8) });
    for (let i = 0; i < 300; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const list = await fsv.api("/api/v1/video/exports");
      const now = list.items.find((x) => x.id === job.id);
      if (now && now.status === "done") { out.textContent = fsv.t("replay.export_done"); break; }
      if (now && now.status === "failed") { out.textContent = fsv.t("replay.export_failed"); out.title = now.error || ""; break; }
    }
  } catch (e) { out.textContent = e.message; }
  listExports();
}

async function listExports() {
  const list = await fsv.api("/api/v1/video/exports");
  document.getElementById("exports").innerHTML = list.items.slice(0, 10).map((x) => {
    const links = x.status === "done"
      ? ` <a href="/api/v1/video/exports/file?id=${x.id}&part=clip">MP4</a> <a href="/api/v1/video/exports/file?id=${x.id}&part=manifest">${fsv.esc(fsv.t("replay.manifest"))}</a>`
      : ` ${fsv.esc(fsv.label("export", x.status))}`;
    return `<li>${fsv.esc(x.site_id)}/${fsv.esc(x.camera_id)} ${clock(x.start)}–${clock(x.end)}${links}</li>`;
  }).join("");
}

fsv.ready.then(async () => {
  await loadCameras();
  const t = parseHash();
  document.getElementById("load").onclick = () => show();
  document.getElementById("timeline").onclick = (ev) => {
    const box = ev.currentTarget.getBoundingClientRect();
    seek(replay.dayStart + (DAY * (ev.clientX - box.left)) / box.width);
  };
  document.getElementById("speed").onchange = () => { const now = replay.player && replay.player.wallNow(); if (now) seek(now); };
  document.getElementById("export").onclick = () => exportClip();
  setInterval(tick, 250);
  if (document.getElementById("camera").value) {
    await show();
    if (t) seek(t);
  }
  replay.ready = true;
  replay.seek = seek;
});
