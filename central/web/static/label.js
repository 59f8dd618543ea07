// The labelling page: an inspector marks an image true or false and boxes what it really
// shows, with a class from the site's class map. Mouse, touch (pointer events) and keys.
"use strict";
const SVG_NS = "http://www.w3.org/2000/svg";
const MIN_SIZE = 0.01; // a box smaller than this (relative) is a slip, not a box
const lab = {
  items: [], // the queue: { kind, id, image, label_url, site_id, detections, label, ... }
  index: -1,
  classes: [], // the current item's site class map
  cls: 0, // the class new boxes get
  boxes: [], // { cls, x1, y1, x2, y2 }, relative to the image
  selected: -1,
  verdict: null,
  dirty: false,
  drag: null,
  maps: new Map(), // site id -> class names
  offset: 0,
};
window.lab = lab; // tests read the state

const $ = (id) => document.getElementById(id);
const clamp = (v) => Math.min(1, Math.max(0, v));
const round = (v) => Math.round(v * 10000) / 10000;

function className(name) {
  // Classes of a site's own map may have no translation: shown as named.
  return fsv.has(`class.${name}`) ? fsv.t(`class.${name}`) : name;
}

function status(text, error = false) {
  const p = $("lab-status");
  p.textContent = text;
  p.classList.toggle("error", error);
}

// --- the queue -------------------------------------------------------------------------------

async function loadQueue(append = false) {
  const state = $("q-state").value;
  if (!append) lab.offset = 0;
  const data = await fsv.api(`/api/v1/labels/queue?state=${encodeURIComponent(state)}&limit=50&offset=${lab.offset}`);
  lab.items = append ? lab.items.concat(data.items) : data.items;
  lab.offset += data.items.length;
  $("q-more").hidden = !data.more;
  renderQueue();
}

function itemLine(item, i) {
  const li = document.createElement("li");
  const b = document.createElement("button");
  b.type = "button";
  b.className = "q-item" + (i === lab.index ? " selected" : "");
  b.dataset.i = String(i);
  const verdict = item.label ? fsv.t(item.label.verdict === "true" ? "label.verdict_true" : "label.verdict_false") : fsv.t("label.state_unlabelled");
  const what = item.kind === "sample" ? fsv.t("label.sample") : fsv.label("kind", item.alert_kind);
  b.innerHTML = `<span class="q-what">${fsv.esc(what)}</span><span class="q-badge${item.label ? " done" : ""}">${fsv.esc(verdict)}</span>` +
    `<span class="q-where">${fsv.esc(item.camera_id || "")} · <time>${fsv.esc(fsv.time(item.start))}</time></span>`;
  b.onclick = () => openItem(i);
  li.appendChild(b);
  return li;
}

function renderQueue() {
  const ul = $("queue");
  ul.replaceChildren(...lab.items.map(itemLine));
  $("q-empty").hidden = lab.items.length > 0;
  $("lab-pos").textContent = lab.index >= 0 ? `${lab.index + 1} / ${lab.items.length}` : "";
}

async function classMap(site) {
  if (!lab.maps.has(site)) {
    const data = await fsv.api(`/api/v1/sites/${encodeURIComponent(site)}/class-map`);
    lab.maps.set(site, data.classes);
  }
  return lab.maps.get(site);
}

async function openItem(i) {
  if (i < 0 || i >= lab.items.length) return;
  const item = lab.items[i];
  lab.index = i;
  lab.classes = await classMap(item.site_id);
  const source = item.label ? item.label.boxes : item.detections || [];
  lab.boxes = source.filter((b) => lab.classes.includes(b.cls)).map(({ cls, x1, y1, x2, y2 }) => ({ cls, x1, y1, x2, y2 }));
  lab.verdict = item.label ? item.label.verdict : null;
  lab.selected = -1;
  lab.dirty = false;
  lab.cls = Math.min(lab.cls, lab.classes.length - 1);
  const img = $("lab-img");
  img.src = item.image;
  $("stage").hidden = false;
  $("lab-tools").hidden = false;
  $("lab-none").hidden = true;
  $("lab-annotated").hidden = !item.annotated;
  const what = item.kind === "sample" ? fsv.t("label.sample") : fsv.label("kind", item.alert_kind);
  $("lab-title").textContent = what;
  $("lab-where").textContent = [item.site_id, item.camera_id, fsv.time(item.start), item.model ? `${fsv.t("alert.model")} ${item.model}` : ""].filter(Boolean).join(" · ");
  if (item.kind === "alert") history.replaceState(null, "", `#alert=${encodeURIComponent(item.id)}`);
  status(item.label ? fsv.t("label.labelled_by", { who: item.label.username || "", when: fsv.time(item.label.labelled_at) }) : "");
  renderClasses();
  render();
  renderQueue();
}

// --- drawing ---------------------------------------------------------------------------------

function renderClasses() {
  const box = $("classes");
  box.replaceChildren(...lab.classes.map((name, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.setAttribute("role", "radio");
    b.setAttribute("aria-checked", String(i === lab.cls));
    b.className = `cls c${i % 10}` + (i === lab.cls ? " on" : "");
    b.dataset.cls = name;
    b.innerHTML = (i < 9 ? `<kbd>${i + 1}</kbd> ` : "") + fsv.esc(className(name));
    b.onclick = () => chooseClass(i);
    return b;
  }));
}

function chooseClass(i) {
  if (i < 0 || i >= lab.classes.length) return;
  lab.cls = i;
  if (lab.selected >= 0) {
    lab.boxes[lab.selected].cls = lab.classes[i];
    lab.dirty = true;
  }
  renderClasses();
  render();
}

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function render() {
  const svg = $("lab-svg");
  const size = svg.getBoundingClientRect();
  const hw = size.width ? 16 / size.width : 0.02;
  const hh = size.height ? 16 / size.height : 0.02;
  const parts = [];
  const tags = [];
  lab.boxes.forEach((b, i) => {
    const ci = Math.max(0, lab.classes.indexOf(b.cls)) % 10;
    parts.push(svgEl("rect", {
      x: b.x1, y: b.y1, width: b.x2 - b.x1, height: b.y2 - b.y1, "data-i": i,
      class: `box c${ci}` + (i === lab.selected ? " sel" : ""), "vector-effect": "non-scaling-stroke",
    }));
    const tag = document.createElement("span");
    tag.className = `tag c${ci}` + (i === lab.selected ? " sel" : "");
    tag.textContent = className(b.cls);
    tag.style.left = `${b.x1 * 100}%`; // CSSOM, which the CSP allows (no style attribute)
    tag.style.top = `${b.y1 * 100}%`;
    tags.push(tag);
  });
  if (lab.selected >= 0) {
    const b = lab.boxes[lab.selected];
    parts.push(svgEl("rect", { x: b.x2 - hw / 2, y: b.y2 - hh / 2, width: hw, height: hh, class: "handle", "data-i": lab.selected, "data-h": "1", "vector-effect": "non-scaling-stroke" }));
  }
  svg.replaceChildren(...parts);
  $("lab-tags").replaceChildren(...tags);
  renderList();
  $("v-true").checked = lab.verdict === "true";
  $("v-false").checked = lab.verdict === "false";
}

function renderList() {
  const ol = $("boxes");
  ol.replaceChildren(...lab.boxes.map((b, i) => {
    const li = document.createElement("li");
    li.className = i === lab.selected ? "sel" : "";
    const pick = document.createElement("button");
    pick.type = "button";
    pick.className = "secondary pick";
    pick.textContent = `#${i + 1}`;
    pick.setAttribute("aria-pressed", String(i === lab.selected));
    pick.onclick = () => select(i);
    const sel = document.createElement("select");
    sel.setAttribute("aria-label", fsv.t("label.class"));
    for (const name of lab.classes) {
      const o = document.createElement("option");
      o.value = name;
      o.textContent = className(name);
      o.selected = name === b.cls;
      sel.appendChild(o);
    }
    sel.onchange = () => { b.cls = sel.value; lab.dirty = true; render(); };
    const del = document.createElement("button");
    del.type = "button";
    del.className = "secondary del";
    del.textContent = fsv.t("label.delete");
    del.onclick = () => removeBox(i);
    li.append(pick, sel, del);
    return li;
  }));
  $("no-boxes").hidden = lab.boxes.length > 0;
}

function select(i) {
  lab.selected = i >= 0 && i < lab.boxes.length ? i : -1;
  if (lab.selected >= 0) {
    const ci = lab.classes.indexOf(lab.boxes[lab.selected].cls);
    if (ci >= 0) lab.cls = ci;
    renderClasses();
  }
  render();
}

function removeBox(i) {
  if (i < 0 || i >= lab.boxes.length) return;
  lab.boxes.splice(i, 1);
  lab.selected = -1;
  lab.dirty = true;
  render();
}

function point(e) {
  const r = $("lab-svg").getBoundingClientRect();
  return [clamp((e.clientX - r.left) / r.width), clamp((e.clientY - r.top) / r.height)];
}

function normalise(b) {
  return { cls: b.cls, x1: Math.min(b.x1, b.x2), y1: Math.min(b.y1, b.y2), x2: Math.max(b.x1, b.x2), y2: Math.max(b.y1, b.y2) };
}

function onDown(e) {
  if (lab.index < 0 || e.button > 0) return;
  e.preventDefault();
  const [x, y] = point(e);
  const t = e.target;
  const i = t.dataset && t.dataset.i != null ? Number(t.dataset.i) : -1;
  if (t.dataset && t.dataset.h) {
    lab.drag = { mode: "resize", i };
  } else if (i >= 0) {
    lab.selected = i;
    lab.drag = { mode: "move", i, x, y, from: { ...lab.boxes[i] } };
  } else {
    lab.boxes.push({ cls: lab.classes[lab.cls], x1: x, y1: y, x2: x, y2: y });
    lab.selected = lab.boxes.length - 1;
    lab.drag = { mode: "draw", i: lab.selected, x, y };
  }
  $("lab-svg").setPointerCapture(e.pointerId);
  render();
}

function onMove(e) {
  const d = lab.drag;
  if (!d) return;
  const [x, y] = point(e);
  const b = lab.boxes[d.i];
  if (d.mode === "draw") Object.assign(b, { x1: d.x, y1: d.y, x2: x, y2: y });
  else if (d.mode === "resize") Object.assign(b, { x2: Math.max(x, b.x1 + MIN_SIZE), y2: Math.max(y, b.y1 + MIN_SIZE) });
  else {
    const w = d.from.x2 - d.from.x1, h = d.from.y2 - d.from.y1;
    const x1 = Math.min(1 - w, Math.max(0, d.from.x1 + x - d.x));
    const y1 = Math.min(1 - h, Math.max(0, d.from.y1 + y - d.y));
    Object.assign(b, { x1, y1, x2: x1 + w, y2: y1 + h });
  }
  lab.dirty = true;
  render();
}

function onUp() {
  const d = lab.drag;
  if (!d) return;
  lab.drag = null;
  const b = normalise(lab.boxes[d.i]);
  if (d.mode === "draw" && (b.x2 - b.x1 < MIN_SIZE || b.y2 - b.y1 < MIN_SIZE)) {
    lab.boxes.splice(d.i, 1); // a click on the image: deselect, no box
    lab.selected = -1;
  } else {
    lab.boxes[d.i] = b;
    if (d.mode === "draw") lab.dirty = true;
  }
  render();
}

function nudge(dx, dy, grow) {
  const b = lab.boxes[lab.selected];
  if (!b) return;
  if (grow) {
    b.x2 = Math.min(1, Math.max(b.x1 + MIN_SIZE, b.x2 + dx));
    b.y2 = Math.min(1, Math.max(b.y1 + MIN_SIZE, b.y2 + dy));
  } else {
    const w = b.x2 - b.x1, h = b.y2 - b.y1;
    b.x1 = Math.min(1 - w, Math.max(0, b.x1 + dx));
    b.y1 = Math.min(1 - h, Math.max(0, b.y1 + dy));
    b.x2 = b.x1 + w;
    b.y2 = b.y1 + h;
  }
  lab.dirty = true;
  render();
}

// --- saving and moving on --------------------------------------------------------------------

function setVerdict(v) {
  lab.verdict = v;
  lab.dirty = true;
  render();
}

async function save() {
  const item = lab.items[lab.index];
  if (!item) return false;
  if (!lab.verdict) { status(fsv.t("label.need_verdict"), true); return false; }
  const boxes = lab.boxes.map((b) => ({ cls: b.cls, x1: round(b.x1), y1: round(b.y1), x2: round(b.x2), y2: round(b.y2) }))
    .filter((b) => b.x2 > b.x1 && b.y2 > b.y1);
  try {
    const data = await fsv.api(item.label_url, { method: "PUT", json: { verdict: lab.verdict, boxes } });
    item.label = data.label;
    lab.dirty = false;
    status(fsv.t("label.saved"));
    renderQueue();
    return true;
  } catch (e) {
    status(e.message, true);
    return false;
  }
}

async function step(delta) {
  const next = lab.index + delta;
  if (next < 0 || next >= lab.items.length) { status(fsv.t(delta > 0 ? "label.last" : "label.first")); return; }
  await openItem(next);
}

function onKey(e) {
  const tag = (e.target.tagName || "").toLowerCase();
  if (["input", "select", "textarea"].includes(tag) && e.target.type !== "radio") return;
  if (e.ctrlKey || e.metaKey || e.altKey || lab.index < 0) return;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const step01 = e.shiftKey ? 0.02 : 0.005;
  const moves = { ArrowLeft: [-step01, 0], ArrowRight: [step01, 0], ArrowUp: [0, -step01], ArrowDown: [0, step01] };
  if (/^[1-9]$/.test(key)) chooseClass(Number(key) - 1);
  else if (key === "Delete" || key === "Backspace") removeBox(lab.selected);
  else if (key === "Escape") select(-1);
  else if (key === "j") select(lab.boxes.length ? (lab.selected + 1) % lab.boxes.length : -1);
  else if (key === "k") select(lab.boxes.length ? (lab.selected - 1 + lab.boxes.length) % lab.boxes.length : -1);
  else if (key === "t") setVerdict("true");
  else if (key === "f") setVerdict("false");
  else if (key === "s") { save().then((ok) => ok && step(1)); }
  else if (key === "n") step(1);
  else if (key === "p") step(-1);
  else if (moves[key] && lab.selected >= 0) nudge(...moves[key], e.shiftKey && e.altKey);
  else return;
  e.preventDefault();
}

// --- sample frames asked of an edge -------------------------------------------------------------

async function loadCameras() {
  const cams = await fsv.api("/api/v1/cameras");
  const sel = $("s-camera");
  sel.replaceChildren(...cams.items.map((c) => {
    const o = document.createElement("option");
    o.value = `${c.site_id}/${c.camera_id}`;
    o.textContent = `${c.name || c.camera_id} · ${c.enterprise || c.site_id}`;
    return o;
  }));
  $("s-send").disabled = !cams.items.length;
}

async function requestSamples(e) {
  e.preventDefault();
  const [site, camera] = $("s-camera").value.split("/");
  const body = { camera, count: Number($("s-count").value), mode: $("s-mode").value };
  const out = $("s-status");
  out.classList.remove("error");
  try {
    await fsv.api(`/api/v1/sites/${encodeURIComponent(site)}/samples`, { method: "POST", json: body });
    out.textContent = fsv.t("label.sample_sent");
  } catch (err) {
    out.textContent = err.message;
    out.classList.add("error");
  }
}

async function openFromHash() {
  const m = location.hash.match(/alert=([\w-]+)/);
  if (!m) return false;
  let i = lab.items.findIndex((it) => it.kind === "alert" && it.id === m[1]);
  if (i < 0) {
    // An alert opened from the inbox that this queue page does not list (labelled already).
    const a = await fsv.api(`/api/v1/alerts/${encodeURIComponent(m[1])}`);
    const image = a.frame || a.snapshot;
    if (!image) { status(fsv.t("label.no_image"), true); return true; }
    const current = await fsv.api(`/api/v1/alerts/${encodeURIComponent(a.id)}/label`);
    lab.items.unshift({
      kind: "alert", id: a.id, site_id: a.site_id, camera_id: a.camera_id, alert_kind: a.kind,
      start: a.start, model: a.model, image: `/api/v1/alerts/${encodeURIComponent(a.id)}/media/${encodeURIComponent(image.name)}`,
      annotated: !a.frame, label_url: `/api/v1/alerts/${encodeURIComponent(a.id)}/label`, detections: [], label: current.label,
    });
    i = 0;
  }
  await openItem(i);
  return true;
}

fsv.ready.then(async () => {
  const svg = $("lab-svg");
  svg.addEventListener("pointerdown", onDown);
  svg.addEventListener("pointermove", onMove);
  svg.addEventListener("pointerup", onUp);
  svg.addEventListener("pointercancel", onUp);
  $("lab-img").addEventListener("load", render); // handles are sized from the shown image
  window.addEventListener("resize", render);
  document.addEventListener("keydown", onKey);
  $("v-true").onchange = () => setVerdict("true");
  $("v-false").onchange = () => setVerdict("false");
  $("save").onclick = () => save().then((ok) => ok && step(1));
  $("next").onclick = () => step(1);
  $("prev").onclick = () => step(-1);
  $("q-state").onchange = () => loadQueue().catch((e) => status(e.message, true));
  $("q-more").onclick = () => loadQueue(true).catch((e) => status(e.message, true));
  $("sample-form").addEventListener("submit", requestSamples);
  $("sample-box").addEventListener("toggle", () => { if ($("sample-box").open && !$("s-camera").options.length) loadCameras().catch((e) => { $("s-status").textContent = e.message; }); });
  try {
    await loadQueue();
    if (!(await openFromHash()) && lab.items.length) await openItem(0);
  } catch (e) {
    status(e.message, true);
  }
  document.body.dataset.ready = "1";
});
