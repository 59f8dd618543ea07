// Replay: pick a camera and a day, see recorded ranges, gaps and alert markers on a timeline
// that zooms from 24 h to 1 min, click or step to seek (a time without recording says so and
// offers the next recording), change speed, export a clip with its signed manifest.
"use strict";

const replay = {
  cam: null, // {site_id, camera_id}
  dayStart: 0, // UTC seconds of the local midnight shown
  data: null, // the recordings answer
  player: null,
  seekedTo: null,
  view: null, // fsvTimeline window
};
window.fsvReplay = replay;

const DAY = 86400;

// Days and clock times are the site's (fsv.zoned / fsv.clock), whatever the browser's zone.
function clock(ts) { return fsv.clock(ts); }
function localMidnight(value) { return fsv.zoned(value); }

async function loadCameras() {
  const cams = await fsv.api("/api/v1/cameras");
  const sel = document.getElementById("camera");
  if (!cams.items.length) {
    document.getElementById("state").textContent = fsv.t("replay.no_camera");
    document.getElementById("load").disabled = true;
  }
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
  replay.view = fsvTimeline.create(replay.dayStart);
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

// Positions are set through the CSSOM (el.style), which the pages' CSP allows.
function place(el, left, width) {
  el.style.left = `${(left * 100).toFixed(4)}%`;
  if (width != null) el.style.width = `${Math.max(width * 100, 0.15).toFixed(4)}%`;
}

function drawTimeline() {
  const box = document.getElementById("timeline");
  const view = replay.view;
  box.querySelectorAll(".rec,.gap,.alert").forEach((el) => el.remove());
  if (!view || !replay.data) return;
  const band = (cls, start, end, title) => {
    const seg = fsvTimeline.segment(view, start, end);
    if (!seg) return;
    const el = document.createElement("div");
    el.className = cls;
    place(el, seg[0], seg[1]);
    el.title = title;
    box.appendChild(el);
  };
  for (const g of replay.data.gaps) band("gap", g.start, g.end || Date.now() / 1000, fsv.t("replay.gap", { reason: g.reason }));
  for (const r of replay.data.ranges) band(r.codec === "hevc" ? "rec hevc" : "rec", r.start, r.end, `${clock(r.start)}–${clock(r.end)} ${r.codec}`);
  for (const a of replay.data.alerts) {
    const f = fsvTimeline.frac(view, a.start);
    if (f == null) continue;
    const el = document.createElement("button");
    el.type = "button";
    el.className = "alert";
    el.title = fsv.t("replay.alert_marker", { kind: fsv.label("kind", a.kind), time: clock(a.start) });
    el.setAttribute("aria-label", el.title);
    place(el, f);
    el.onclick = (ev) => { ev.stopPropagation(); seek(a.start - 5); };
    box.appendChild(el);
  }
  const hours = document.getElementById("hours");
  hours.innerHTML = "";
  const short = view.span > 300;
  for (const ts of fsvTimeline.ticks(view, box.getBoundingClientRect().width, short ? 56 : 80)) {
    const span = document.createElement("span");
    span.textContent = ts >= view.dayStart + DAY ? "24:00" : short ? clock(ts).slice(0, 5) : clock(ts);
    const f = (ts - view.start) / view.span;
    if (f < 0.04) span.className = "start"; // labels at the ends stay inside the bar
    else if (f > 0.96) span.className = "end";
    place(span, f);
    hours.appendChild(span);
  }
  document.getElementById("window").textContent = `${clock(view.start).slice(0, short ? 5 : 8)} – ${view.start + view.span >= view.dayStart + DAY ? "24:00" : clock(view.start + view.span).slice(0, short ? 5 : 8)}`;
  document.getElementById("zoom-in").disabled = view.span === fsvTimeline.SPANS[fsvTimeline.SPANS.length - 1];
  document.getElementById("zoom-out").disabled = view.span === fsvTimeline.SPANS[0];
  tick();
}

// Nothing recorded at `ts`: say so over the player, and offer the next recording if any.
function noRecording(ts) {
  const box = document.getElementById("norec");
  const next = fsvTimeline.nextRange(replay.data.ranges, ts);
  document.getElementById("norec-text").textContent = fsv.t("replay.no_recording", { time: fsv.time(ts) });
  const button = document.getElementById("norec-next");
  button.hidden = !next;
  if (next) {
    button.textContent = fsv.t("replay.next_recording", { time: clock(next.start) });
    button.onclick = () => seek(next.start);
  }
  box.hidden = false;
  document.getElementById("video").classList.add("idle");
}

function seek(ts) {
  if (!replay.cam) return null;
  if (replay.player) replay.player.stop();
  replay.player = null;
  replay.seekedTo = ts;
  if (replay.view && fsvTimeline.frac(replay.view, ts) == null) {
    replay.view.start = ts - replay.view.span / 2; // bring the asked time into view
    fsvTimeline.clamp(replay.view);
    drawTimeline();
  }
  document.getElementById("from").value = clock(ts);
  document.getElementById("to").value = clock(ts + 60);
  if (replay.data && !fsvTimeline.covering(replay.data.ranges, ts)) {
    noRecording(ts);
    tick();
    return null;
  }
  document.getElementById("norec").hidden = true;
  document.getElementById("video").classList.remove("idle");
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
  tick();
  return player;
}

// Where playback is now (or the time last asked for), on the clock and the bar.
function position() {
  const now = replay.player && replay.player.wallNow();
  return now != null ? now : replay.seekedTo;
}

function tick() {
  const now = position();
  const cursor = document.getElementById("cursor");
  if (now == null || !replay.view) { cursor.hidden = true; return; }
  document.getElementById("clock").textContent = clock(now);
  const f = fsvTimeline.frac(replay.view, now);
  cursor.hidden = f == null;
  if (f != null) place(cursor, f);
  if (replay.player) document.getElementById("video").playbackRate = Number(document.getElementById("speed").value);
}

function bindTimeline() {
  const box = document.getElementById("timeline");
  const at = (ev) => {
    const r = box.getBoundingClientRect();
    return fsvTimeline.timeAt(replay.view, Math.min(Math.max((ev.clientX - r.left) / r.width, 0), 1));
  };
  box.onclick = (ev) => { if (replay.view) seek(at(ev)); };
  box.addEventListener("wheel", (ev) => {
    if (!replay.view) return;
    ev.preventDefault();
    fsvTimeline.zoom(replay.view, ev.deltaY < 0 ? 1 : -1, at(ev));
    drawTimeline();
  }, { passive: false });
  const hover = document.getElementById("hover");
  box.onmousemove = (ev) => {
    if (!replay.view) return;
    const ts = at(ev);
    hover.hidden = false;
    hover.textContent = clock(ts);
    place(hover, (ts - replay.view.start) / replay.view.span);
  };
  box.onmouseleave = () => { hover.hidden = true; };
  box.onkeydown = (ev) => {
    const now = position();
    if (now == null) return;
    const step = ev.shiftKey ? 60 : 10;
    if (ev.key === "ArrowLeft") seek(now - step);
    else if (ev.key === "ArrowRight") seek(now + step);
    else if (ev.key === "+" || ev.key === "=") { fsvTimeline.zoom(replay.view, 1, now); drawTimeline(); }
    else if (ev.key === "-") { fsvTimeline.zoom(replay.view, -1, now); drawTimeline(); }
    else return;
    ev.preventDefault();
  };
  const zoom = (d) => () => { if (replay.view) { fsvTimeline.zoom(replay.view, d, position()); drawTimeline(); } };
  const pan = (f) => () => { if (replay.view) { fsvTimeline.pan(replay.view, f); drawTimeline(); } };
  document.getElementById("zoom-in").onclick = zoom(1);
  document.getElementById("zoom-out").onclick = zoom(-1);
  document.getElementById("pan-left").onclick = pan(-0.5);
  document.getElementById("pan-right").onclick = pan(0.5);
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
  bindTimeline();
  window.addEventListener("resize", () => drawTimeline());
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
