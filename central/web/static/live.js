// The live wall: 1/4/9/16 cameras per page chosen by organisation and station, auto-cycle,
// online state and open-alert badges, a tile goes full screen on click. Badges and dots
// follow the update socket (updates.js); while it is down the wall list is polled instead.
"use strict";
const POLL_MS = 15000; // fallback while the socket is down; never overlapping

const wall = {
  cameras: [],
  sites: [],
  page: 0,
  tiles: [], // {cam, el, video, player}
  timer: null,
  refresh: null,
};
window.fsvWall = wall;

function perPage() { return Number(document.getElementById("grid").value); }
function pages() { return Math.max(1, Math.ceil(wall.cameras.length / perPage())); }
function camKey(c) { return `${c.site_id}/${c.camera_id}`; }

async function loadOrgs() {
  const orgs = await fsv.api("/api/v1/orgs");
  const sel = document.getElementById("org");
  for (const o of orgs.items || orgs) {
    const opt = document.createElement("option");
    opt.value = o.id;
    const depth = (o.org_path.match(/\//g) || []).length - 2;
    opt.textContent = `${"· ".repeat(Math.max(0, depth))}${o.name}`;
    sel.appendChild(opt);
  }
  const params = new URLSearchParams(location.search);
  if (params.get("org_id")) sel.value = params.get("org_id");
  if (params.get("grid")) document.getElementById("grid").value = params.get("grid");
}

async function loadCameras() {
  const q = new URLSearchParams();
  const org = document.getElementById("org").value;
  const station = document.getElementById("station").value;
  if (org) q.set("org_id", org);
  if (station) q.set("station", station);
  // Socket updates heard while the list is requested are applied again to the list it
  // returns: it may have been read before them (a resync must not undo a newer count).
  const heard = [];
  wall.heard = heard;
  let data;
  try {
    data = await fsv.api(`/api/v1/video/wall?${q}`);
  } finally {
    if (wall.heard === heard) wall.heard = null;
  }
  wall.cameras = data.items;
  for (const msg of heard) applyCamera(msg);
  wall.sites = data.sites;
  const stations = document.getElementById("station");
  if (stations.options.length <= 1) {
    for (const s of [...new Set(data.items.map((c) => c.station))].sort()) {
      const opt = document.createElement("option");
      opt.value = s;
      opt.textContent = fsv.label("station", s);
      stations.appendChild(opt);
    }
  }
  showUplinks();
}

function showUplinks() {
  const slow = wall.sites.filter((s) => s.starved).map((s) => s.site);
  const box = document.getElementById("uplinks");
  box.hidden = !slow.length;
  box.textContent = slow.length ? fsv.t("live.uplink_slow", { sites: slow.join(", ") }) : "";
}

function tileCaption(cam) {
  return `<div class="cap"><span class="dot"></span><span class="cap-text">${fsv.esc(cam.name)} · ${fsv.esc(fsv.label("station", cam.station))} · ${fsv.esc(cam.enterprise)}</span></div>`;
}

function decorate(tile) {
  const cam = wall.cameras.find((c) => camKey(c) === camKey(tile.cam)) || tile.cam;
  tile.el.classList.toggle("online", cam.state === "online");
  const badge = tile.el.querySelector(".badge");
  badge.hidden = !cam.open_alerts;
  badge.textContent = cam.open_alerts ? fsv.t("live.badge", { n: cam.open_alerts }) : "";
}

function makeTile(cam) {
  const el = document.createElement("div");
  el.className = "tile";
  el.dataset.camera = camKey(cam);
  const inbox = `/inbox#site=${encodeURIComponent(cam.site_id)}&camera=${encodeURIComponent(cam.camera_id)}`;
  el.innerHTML = `<video muted autoplay playsinline></video><a class="badge" href="${inbox}" hidden></a><div class="msg"></div>${tileCaption(cam)}`;
  const video = el.querySelector("video");
  video.muted = true;
  const tile = { cam, el, video, player: null, stream: "sub" };
  el.querySelector(".badge").onclick = (ev) => ev.stopPropagation(); // opens the camera's alerts
  el.onclick = () => (document.fullscreenElement ? document.exitFullscreen() : el.requestFullscreen()).catch(() => {});
  // Full screen shows the main (HD) stream; back in the grid, the light sub stream again.
  el.addEventListener("fullscreenchange", () => {
    const want = document.fullscreenElement === el ? "main" : "sub";
    if (want === tile.stream) return;
    tile.stream = want;
    if (tile.player) tile.player.stop();
    play(tile);
  });
  decorate(tile);
  play(tile);
  return tile;
}

function play(tile) {
  const msg = tile.el.querySelector(".msg");
  const base = `/api/v1/video/live/${encodeURIComponent(tile.cam.site_id)}/${encodeURIComponent(tile.cam.camera_id)}`;
  const hls = `/api/v1/video/hls/${encodeURIComponent(tile.cam.site_id)}/${encodeURIComponent(tile.cam.camera_id)}/sub.m3u8`;
  clearTimeout(tile.retry); // a retry waiting for this tile is this attempt
  tile.retry = null;
  const player = new FsvPlayer(tile.video, `${base}?stream=${tile.stream || "sub"}`, {
    live: true,
    hls: tile.stream === "main" ? null : hls,
    onState: (text, key) => { msg.textContent = key === "player.live" ? "" : text; },
    onEnd: (reason) => {
      msg.textContent = fsv.t("live.offline");
      msg.title = String(reason || "");
      if (player.fragments) tile.failures = 0; // it played: a drop (a node lost) retries at once
      // The camera or its node may come back: try again soon while the tile is shown, one
      // attempt at a time (the next is scheduled only when this one ended).
      clearTimeout(tile.retry);
      tile.retry = setTimeout(() => {
        tile.retry = null;
        if (wall.tiles.includes(tile) && tile.player === player && !player.error) play(tile);
      }, retryDelay(tile.failures || 0));
      tile.failures = (tile.failures || 0) + 1;
      tile.retries = (tile.retries || 0) + 1;
    },
  });
  tile.player = player;
  player.start();
}

// A tile's next attempt after `failures` attempts in a row that did not play: 0.5, 1, 2,
// then 4 s at most (±20 %, so tiles that dropped together do not all come back at once).
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 4000;
function retryDelay(failures) {
  const base = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(failures, 4));
  return base * (0.8 + Math.random() * 0.4);
}

function render() {
  for (const t of wall.tiles) { clearTimeout(t.retry); t.player && t.player.stop(); }
  const box = document.getElementById("wall");
  box.innerHTML = "";
  box.className = `wall grid-${perPage()}`;
  wall.page = Math.min(wall.page, pages() - 1);
  const shown = wall.cameras.slice(wall.page * perPage(), (wall.page + 1) * perPage());
  wall.tiles = shown.map(makeTile);
  for (const t of wall.tiles) box.appendChild(t.el);
  // Cells without a camera say so instead of staying black.
  for (let i = shown.length; wall.cameras.length && i < perPage(); i++) {
    const empty = document.createElement("div");
    empty.className = "tile empty";
    empty.textContent = fsv.t("live.empty_cell");
    box.appendChild(empty);
  }
  document.getElementById("no-cameras").hidden = wall.cameras.length > 0;
  document.getElementById("page").textContent = `${wall.page + 1}/${pages()}`;
}

function turn(step) {
  wall.page = (wall.page + step + pages()) % pages();
  render();
}

function cycle() {
  clearInterval(wall.timer);
  wall.timer = null;
  if (document.getElementById("cycle").checked) {
    const s = Math.max(5, Number(document.getElementById("cycle-s").value) || 30);
    wall.timer = setInterval(() => turn(1), s * 1000);
  }
}

async function reload() {
  await loadCameras();
  wall.page = 0;
  render();
}

fsv.ready.then(async () => {
  await loadOrgs();
  for (const id of ["org", "station", "grid"]) document.getElementById(id).onchange = () => reload();
  document.getElementById("prev").onclick = () => turn(-1);
  document.getElementById("next").onclick = () => turn(1);
  document.getElementById("cycle").onchange = cycle;
  document.getElementById("cycle-s").onchange = cycle;
  await reload();
  // Badges and online dots follow the alerts and camera states without restarting video.
  // The socket carries each change; while it is down the list is polled, and each round is
  // scheduled only once the last one answered: requests never pile up.
  const refresh = async () => {
    if (!wall.updates.up) {
      try { await loadCameras(); wall.tiles.forEach(decorate); wall.polls = (wall.polls || 0) + 1; } catch (e) { /* next round */ }
    }
    wall.refresh = setTimeout(refresh, POLL_MS);
  };
  wall.updates = new FsvUpdates({ message: onUpdate, resync }).start();
  wall.refresh = setTimeout(refresh, POLL_MS);
  wall.ready = true;
});

// A camera's open-alert counter or online state changed: its tile follows, video untouched.
function onUpdate(msg) {
  if (msg.type !== "camera") return;
  if (wall.heard) wall.heard.push(msg);
  const cam = applyCamera(msg);
  if (cam) for (const t of wall.tiles) if (camKey(t.cam) === camKey(cam)) decorate(t);
}

function applyCamera(msg) {
  const cam = (wall.cameras || []).find((c) => c.site_id === msg.site_id && c.camera_id === msg.camera_id);
  if (!cam) return null;
  if (msg.open_alerts != null) cam.open_alerts = msg.open_alerts;
  if (msg.state) cam.state = msg.state;
  return cam;
}

// The socket (re)connected: one list request catches up with what it missed.
async function resync() {
  wall.resyncs = (wall.resyncs || 0) + 1;
  try { await loadCameras(); wall.tiles.forEach(decorate); } catch (e) { /* the socket carries what comes next */ }
}
