// Replay: pick a camera and a day, see recorded ranges, gaps, alert markers and where each
// stretch comes from (city archive or the site's box) on a timeline that zooms from 24 h to
// 1 min; hover for a preview picture, click or step with the keys to seek (a time without
// recording says so and offers the next recording), space to pause; drag a stretch to export
// it as a clip with its signed manifest.
"use strict";

const replay = {
  cam: null, // {site_id, camera_id}
  dayStart: 0, // UTC seconds of the local midnight shown
  data: null, // the recordings answer
  player: null,
  seekedTo: null,
  lastStep: null, // [from, to] of the last key step
  view: null, // fsvTimeline window
  selection: null, // [start, end] UTC seconds dragged on the bar
  previews: new Map(), // preview URL -> "ok" | "none", so a gap is asked once
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
  state.textContent = replay.data.edge === "unavailable" ? fsv.t("replay.edge_unavailable") : "";
  clearSelection();
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
  box.querySelectorAll(".rec,.gap,.alert,.src").forEach((el) => el.remove());
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
  for (const r of replay.data.ranges) band(r.codec === "hevc" ? "rec hevc" : "rec", r.start, r.end, `${clock(r.start)}–${clock(r.end)} ${r.codec || ""}`);
  // Where each recorded stretch plays from: a strip along the bar's foot.
  // A stretch played from the sub stream (the archive may hold only that) is striped.
  for (const p of replay.data.sources || []) {
    const where = fsv.t(`replay.source_${p.source}`, { from: clock(p.start), to: clock(p.end) });
    const stream = p.stream ? ` · ${fsv.t(`replay.stream_${p.stream}`)}` : "";
    band(`src ${p.source}${p.stream === "sub" ? " sub" : ""}`, p.start, p.end, where + stream);
  }
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
  drawSelection();
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

// Seek to `ts`; with `later`, only move the playhead now and start playback once the keys
// rest (each start is a replay upstream of the site's line: a run of key presses opens one).
function seek(ts, later = false) {
  if (!replay.cam) return null;
  if (replay.player) replay.player.stop();
  replay.player = null;
  clearTimeout(replay.startTimer);
  replay.seekedTo = ts;
  if (later) {
    if (replay.view && fsvTimeline.frac(replay.view, ts) == null) {
      replay.view.start = ts - replay.view.span / 2;
      fsvTimeline.clamp(replay.view);
      drawTimeline();
    }
    tick();
    replay.startTimer = setTimeout(() => seek(ts), STEP_REST_MS);
    return null;
  }
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
  document.getElementById("source").hidden = true;
  document.getElementById("video").classList.remove("idle");
  const speed = Number(document.getElementById("speed").value);
  const url = `/api/v1/video/replay/${replay.cam.site_id}/${replay.cam.camera_id}?start=${ts}&speed=${speed}`;
  const video = document.getElementById("video");
  const state = document.getElementById("state");
  const player = new FsvPlayer(video, url, {
    live: false,
    startAt: ts,
    onState: (text) => { state.textContent = text; },
    onSource: (name, stream) => {
      const tag = document.getElementById("source");
      const from = fsv.t(name === "archive" ? "replay.playing_from_archive" : "replay.playing_from_edge");
      tag.textContent = stream ? `${from} · ${fsv.t(`replay.stream_${stream}`)}` : from;
      tag.className = `source-tag ${name}${stream === "sub" ? " sub" : ""}`;
      tag.dataset.stream = stream || "";
      tag.hidden = false;
    },
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

// Keyboard steps follow the zoom: about a 60th of the bar, ten times that with Shift.
const KEY_STEP = { 86400: 600, 21600: 300, 3600: 60, 900: 15, 300: 5, 60: 1 };

const STEP_REST_MS = 400;

function step(direction, big) {
  const now = position();
  if (now == null || !replay.view) return;
  const size = (KEY_STEP[replay.view.span] || 10) * (big ? 10 : 1);
  replay.lastStep = [now, now + direction * size];
  seek(now + direction * size, true);
}

// Space: pause or go on; with nothing playing, start at the time last asked for.
function playPause() {
  const video = document.getElementById("video");
  if (!replay.player) { if (replay.seekedTo != null) seek(replay.seekedTo); return; }
  if (video.paused) video.play().catch(() => {}); else video.pause();
}

function onKey(ev) {
  if (!replay.view || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const tag = ev.target && ev.target.tagName;
  if (["INPUT", "SELECT", "TEXTAREA", "BUTTON", "A", "VIDEO"].includes(tag) && ev.target.id !== "timeline") return;
  const now = position();
  if (ev.key === "ArrowLeft") step(-1, ev.shiftKey);
  else if (ev.key === "ArrowRight") step(1, ev.shiftKey);
  else if (ev.key === " ") playPause();
  else if (ev.key === "+" || ev.key === "=") { fsvTimeline.zoom(replay.view, 1, now); drawTimeline(); }
  else if (ev.key === "-") { fsvTimeline.zoom(replay.view, -1, now); drawTimeline(); }
  else if (ev.key === "Escape") clearSelection();
  else return;
  ev.preventDefault();
}

// --- scrubbing preview ----------------------------------------------------------------------

const PREVIEW_WAIT_MS = 120; // asked once the pointer rests this long, not on every pixel

function previewStep() {
  // Central keeps one picture per 10 s; a wide window asks for fewer distinct ones.
  const want = replay.view.span / 120;
  return [10, 30, 60, 300, 900].find((s) => s >= want) || 900;
}

function showPreview(ts, x) {
  const box = document.getElementById("preview");
  const wrap = box.parentElement.getBoundingClientRect();
  const half = box.offsetWidth / 2 || 100;
  box.style.left = `${Math.min(Math.max(x, half), wrap.width - half)}px`;
  document.getElementById("preview-time").textContent = clock(ts);
  box.hidden = false;
  clearTimeout(replay.previewTimer);
  const img = document.getElementById("preview-img");
  const note = document.getElementById("preview-note");
  note.hidden = true;
  if (!replay.data || !fsvTimeline.covering(replay.data.ranges, ts)) { img.hidden = true; return; }
  // The edge sends previews in its uplink's lowest class, which waits while a video of the
  // site plays: not asked for then (nor of an edge that is offline), the time is shown alone.
  const part = (replay.data.sources || []).find((p) => p.start <= ts && ts < p.end);
  if (part && part.source !== "archive" && (replay.player || part.source === "edge_offline")) {
    img.hidden = true;
    img.dataset.url = "";
    note.textContent = fsv.t(part.source === "edge_offline" ? "replay.preview_offline" : "replay.preview_while_playing");
    note.hidden = false;
    return;
  }
  // Rounded down to the zoom's preview step, but not out of the hovered stretch's source.
  const q = Math.max(Math.floor(ts / previewStep()) * previewStep(), part ? part.start + 0.1 : -Infinity);
  const at = fsvTimeline.covering(replay.data.ranges, q) ? q : ts;
  const url = `/api/v1/video/thumbnail/${replay.cam.site_id}/${replay.cam.camera_id}?at=${at.toFixed(2)}`;
  if (img.dataset.url === url) return;
  img.hidden = true; // never another moment's picture under this time
  img.dataset.url = ""; // a preview still loading for another moment stays hidden when it comes
  if (replay.previews.get(url) === "none") return;
  replay.previewTimer = setTimeout(() => {
    img.onload = () => {
      replay.previews.set(url, "ok");
      if (img.dataset.url !== url) return;
      img.dataset.loaded = url;
      img.hidden = false;
    };
    img.onerror = () => { replay.previews.set(url, "none"); if (img.dataset.url === url) img.hidden = true; };
    img.dataset.url = url;
    img.src = url;
  }, replay.previews.get(url) === "ok" ? 0 : PREVIEW_WAIT_MS);
}

function hidePreview() {
  clearTimeout(replay.previewTimer);
  document.getElementById("preview").hidden = true;
}

// --- selection for export -------------------------------------------------------------------

const MAX_CLIP_S = 3600; // the export API's limit (fsv_contract.video.MAX_EXPORT_S)

function drawSelection() {
  const el = document.getElementById("selection");
  const seg = replay.selection && replay.view && fsvTimeline.segment(replay.view, ...replay.selection);
  el.hidden = !seg;
  if (seg) place(el, seg[0], seg[1]);
}

function setSelection(a, b) {
  let [start, end] = a < b ? [a, b] : [b, a];
  const capped = end - start > MAX_CLIP_S;
  if (capped) end = start + MAX_CLIP_S;
  replay.selection = [start, end];
  drawSelection();
  document.getElementById("from").value = clock(start);
  document.getElementById("to").value = clock(end);
  const key = capped ? "replay.selection_capped" : "replay.selection";
  const n = capped ? fsv.duration(MAX_CLIP_S) : fsv.duration(end - start);
  document.getElementById("sel-text").textContent = fsv.t(key, { from: clock(start), to: clock(end), n });
  document.getElementById("sel-bar").hidden = false;
}

function clearSelection() {
  replay.selection = null;
  drawSelection();
  document.getElementById("sel-bar").hidden = true;
}

function bindTimeline() {
  const box = document.getElementById("timeline");
  const frac = (ev) => {
    const r = box.getBoundingClientRect();
    return Math.min(Math.max((ev.clientX - r.left) / r.width, 0), 1);
  };
  const at = (ev) => fsvTimeline.timeAt(replay.view, frac(ev));
  // A press that moves less than this is a click (seek); more is a drag (select).
  const DRAG_PX = 6;
  let press = null;
  box.addEventListener("pointerdown", (ev) => {
    if (!replay.view || ev.button !== 0 || ev.target.closest(".alert")) return;
    press = { x: ev.clientX, ts: at(ev), dragging: false };
    box.setPointerCapture(ev.pointerId);
  });
  box.addEventListener("pointermove", (ev) => {
    if (!replay.view) return;
    const ts = at(ev);
    const hover = document.getElementById("hover");
    hover.hidden = false;
    hover.textContent = clock(ts);
    place(hover, frac(ev));
    showPreview(ts, ev.clientX - box.getBoundingClientRect().left);
    if (press && !press.dragging && Math.abs(ev.clientX - press.x) >= DRAG_PX) press.dragging = true;
    if (press && press.dragging) setSelection(press.ts, ts);
  });
  box.addEventListener("pointerup", (ev) => {
    if (!press) return;
    const was = press;
    press = null;
    if (was.dragging) setSelection(was.ts, at(ev));
    else seek(at(ev));
  });
  box.addEventListener("pointercancel", () => { press = null; });
  box.addEventListener("pointerleave", () => {
    document.getElementById("hover").hidden = true;
    hidePreview();
  });
  box.addEventListener("wheel", (ev) => {
    if (!replay.view) return;
    ev.preventDefault();
    fsvTimeline.zoom(replay.view, ev.deltaY < 0 ? 1 : -1, at(ev));
    drawTimeline();
  }, { passive: false });
  document.addEventListener("keydown", onKey);
  const zoom = (d) => () => { if (replay.view) { fsvTimeline.zoom(replay.view, d, position()); drawTimeline(); } };
  const pan = (f) => () => { if (replay.view) { fsvTimeline.pan(replay.view, f); drawTimeline(); } };
  document.getElementById("zoom-in").onclick = zoom(1);
  document.getElementById("zoom-out").onclick = zoom(-1);
  document.getElementById("pan-left").onclick = pan(-0.5);
  document.getElementById("pan-right").onclick = pan(0.5);
  document.getElementById("sel-clear").onclick = () => clearSelection();
  document.getElementById("sel-export").onclick = () => { if (replay.selection) exportClip(...replay.selection); };
}

function timeOfDay(value) {
  const [h, m, s] = value.split(":").map(Number);
  return replay.dayStart + h * 3600 + m * 60 + (s || 0);
}

// Export [start, end) (the selection, or the times typed in): the job's steps on a progress
// bar, then a download link. Quotas and limits are the API's: its refusal is shown as is.
async function exportClip(start, end) {
  const out = document.getElementById("export-state");
  const bar = document.getElementById("export-progress");
  const link = document.getElementById("export-link");
  if (start == null) {
    start = timeOfDay(document.getElementById("from").value);
    end = timeOfDay(document.getElementById("to").value);
  }
  link.hidden = true;
  out.title = "";
  delete out.dataset.finished;
  const began = Date.now();
  const steps = { requested: 1, receiving: 2, done: 3 };
  try {
    const job = await fsv.api("/api/v1/video/exports", { method: "POST", json: { ...replay.cam, start, end } });
    bar.hidden = false;
    bar.value = 0;
    for (let i = 0; i < 300; i++) {
      const list = await fsv.api("/api/v1/video/exports");
      const now = list.items.find((x) => x.id === job.id) || job;
      bar.value = steps[now.status] || 0;
      out.textContent = fsv.t("replay.export_step", { step: fsv.label("export", now.status), s: Math.round((Date.now() - began) / 1000) });
      if (now.status === "done") {
        out.textContent = fsv.t("replay.export_done");
        link.href = `/api/v1/video/exports/file?id=${job.id}&part=clip`;
        link.hidden = false;
        break;
      }
      if (now.status === "failed") { out.textContent = fsv.t("replay.export_failed"); out.title = now.error || ""; bar.hidden = true; break; }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } catch (e) { out.textContent = e.message; bar.hidden = true; }
  out.dataset.finished = "1";
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
  replay.exportClip = exportClip;
  setInterval(tick, 250);
  if (document.getElementById("camera").value) {
    await show();
    if (t) seek(t);
  }
  replay.ready = true;
  replay.seek = seek;
  replay.draw = drawTimeline;
  replay.position = position;
});
