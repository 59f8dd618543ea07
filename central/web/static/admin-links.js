// Public kitchen links: per canteen, which cameras the public sees, until when and by how many
// at once; revoke. A new link's address, QR code and poster are offered once, when it is made:
// central keeps only a digest of its token.
"use strict";
const linksPage = { canteens: {}, cameras: [], links: [], ready: false, loads: 0 };
window.fsvLinks = linksPage;

function cell(label, html, cls = "") {
  // One child beside the label on a phone, whatever the cell holds.
  return `<td data-label="${fsv.esc(label)}"${cls ? ` class="${cls}"` : ""}><div>${html}</div></td>`;
}

function linkState(l) {
  if (l.revoked_at) return ["off", fsv.t("links.revoked")];
  if (l.expires_at && l.expires_at * 1000 <= Date.now()) return ["wait", fsv.t("links.expired")];
  return ["on", fsv.t("links.active")];
}

function cameraName(ref) {
  const cam = linksPage.cameras.find((c) => `${c.site_id}/${c.camera_id}` === ref);
  return cam ? (cam.name || cam.camera_id) : ref;
}

function linkRow(l) {
  const tr = document.createElement("tr");
  tr.dataset.id = l.id;
  const [cls, text] = linkState(l);
  tr.dataset.state = cls;
  const canteen = linksPage.canteens[l.org_id];
  tr.innerHTML =
    cell(fsv.t("links.canteen"), fsv.esc(canteen ? canteen.name : l.org_id)) +
    cell(fsv.t("links.label"), l.label ? fsv.esc(l.label) : `<span class="muted">${fsv.esc(fsv.t("common.none"))}</span>`) +
    cell(fsv.t("links.cameras"), fsv.esc(l.cameras.map(cameraName).join("、"))) +
    cell(fsv.t("links.state"), `<span class="badge ${cls}">${fsv.esc(text)}</span><br><span class="muted">${fsv.esc(fsv.t("links.created", { time: fsv.time(l.created_at) }))}</span>`) +
    // A link ends at the midnight after its last day: the page names that last day.
    cell(fsv.t("links.expires"), l.expires_at ? `<time title="${fsv.esc(fsv.time(l.expires_at))}">${fsv.esc(fsv.date(l.expires_at - 1))}</time>` : fsv.esc(fsv.t("links.never"))) +
    cell(fsv.t("links.max_viewers"), l.max_viewers ? fsv.esc(String(l.max_viewers)) : `<span class="muted">${fsv.esc(fsv.t("common.none"))}</span>`) +
    cell(fsv.t("links.address"), `<span class="muted">${fsv.esc(fsv.t(cls === "on" ? "links.address_once" : "links.address_gone"))}</span>`, "url") +
    cell(fsv.t("webhook.actions"), '<div class="row-actions"></div>');
  const box = tr.querySelector(".row-actions");
  if (cls !== "on") return tr;
  const revoke = document.createElement("button");
  revoke.type = "button";
  revoke.className = "danger";
  revoke.dataset.action = "revoke";
  revoke.textContent = fsv.t("links.revoke");
  const result = document.createElement("span");
  result.className = "result bad";
  revoke.onclick = async () => {
    if (revoke.dataset.armed !== "1") { revoke.dataset.armed = "1"; revoke.textContent = fsv.t("links.revoke_confirm"); return; }
    try {
      await fsv.api(`/api/v1/public-links/${l.id}`, { method: "DELETE" });
      await load();
    } catch (e) { result.textContent = e.message; }
  };
  box.append(revoke, result);
  return tr;
}

function render() {
  const org = document.getElementById("f-org").value;
  const inactive = document.getElementById("f-inactive").checked;
  const shown = linksPage.links.filter((l) => (!org || String(l.org_id) === org) && (inactive || linkState(l)[0] === "on"));
  document.querySelector("#links tbody").replaceChildren(...shown.map(linkRow));
  document.getElementById("empty").hidden = shown.length > 0;
  document.getElementById("links").hidden = shown.length === 0;
}

async function load() {
  const error = document.getElementById("error");
  try {
    linksPage.links = (await fsv.api("/api/v1/public-links")).items.sort((a, b) => b.id - a.id);
    render();
    error.textContent = "";
  } catch (e) { error.textContent = e.message; }
  linksPage.loads += 1;
}

function showCameras() {
  const org = linksPage.canteens[document.getElementById("l-org").value];
  const box = document.getElementById("l-cameras");
  const cams = org ? linksPage.cameras.filter((c) => c.org_path === org.org_path) : [];
  box.replaceChildren(...cams.map((c) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox"; input.name = "cameras"; input.value = `${c.site_id}/${c.camera_id}`;
    const station = c.station ? ` · ${fsv.label("station", c.station)}` : "";
    label.append(input, ` ${c.name || c.camera_id}${station}`);
    return label;
  }));
  document.getElementById("l-no-cameras").hidden = cams.length > 0;
}

function showOnce(link) {
  // The answer to the creation is the only place the token appears: offer it now.
  const token = encodeURIComponent(link.token);
  const url = document.getElementById("once-url");
  url.href = link.url;
  url.textContent = link.url;
  document.getElementById("once-poster").href = `/api/v1/public-links/${link.id}/poster?token=${token}`;
  const qr = document.getElementById("once-qr");
  qr.href = `/api/v1/public-links/${link.id}/qr.svg?token=${token}`;
  qr.download = `qr-${link.id}.svg`;
  document.getElementById("link-once").hidden = false;
}

function hideOnce() {
  for (const id of ["once-url", "once-poster", "once-qr"]) document.getElementById(id).removeAttribute("href");
  document.getElementById("once-url").textContent = "";
  document.getElementById("link-once").hidden = true;
}

async function createLink(ev) {
  ev.preventDefault();
  const form = ev.target;
  const error = document.getElementById("add-error");
  error.textContent = "";
  const f = new FormData(form);
  const cameras = f.getAll("cameras");
  if (!cameras.length) { error.textContent = fsv.t("links.cameras_required"); return; }
  const body = { org_id: Number(f.get("org_id")), cameras, label: String(f.get("label") || "").trim() };
  // The chosen day is the last one the link works: it ends at the next midnight, site time.
  if (f.get("expires")) body.expires_at = fsv.zoned(f.get("expires")) + 86400;
  if (f.get("max_viewers")) {
    const n = Number(f.get("max_viewers"));
    if (!Number.isInteger(n) || n < 1 || n > 500) { error.textContent = fsv.t("links.max_viewers_range"); return; }
    body.max_viewers = n;
  }
  const submit = document.getElementById("l-submit");
  submit.disabled = true;
  try {
    showOnce(await fsv.api("/api/v1/public-links", { method: "POST", json: body }));
    form.elements.label.value = "";
    for (const box of form.querySelectorAll('input[name="cameras"]')) box.checked = false;
    await load();
  } catch (e) { error.textContent = e.message; }
  submit.disabled = false;
}

fsv.ready.then(async () => {
  const [orgs, cams] = await Promise.all([fsv.api("/api/v1/orgs?level=enterprise"), fsv.api("/api/v1/cameras")]);
  linksPage.cameras = cams.items;
  const canteens = orgs.items.filter((o) => o.enterprise_type === "canteen").sort((a, b) => a.name.localeCompare(b.name, "zh-CN"));
  const pick = document.getElementById("l-org");
  const filter = document.getElementById("f-org");
  for (const o of canteens) {
    linksPage.canteens[o.id] = o;
    pick.append(new Option(o.name, o.id));
    filter.append(new Option(o.name, o.id));
  }
  if (!canteens.length) {
    document.getElementById("add-link").hidden = true;
    document.getElementById("error").textContent = fsv.t("links.no_canteens");
  }
  const today = fsv.today();
  document.getElementById("l-expires").min = today;
  pick.onchange = showCameras;
  showCameras();
  document.getElementById("add-link").onsubmit = createLink;
  document.getElementById("once-done").onclick = hideOnce;
  document.getElementById("f-org").onchange = render;
  document.getElementById("f-inactive").onchange = render;
  if (window.matchMedia("(max-width: 480px)").matches) document.getElementById("add-box").open = false;
  await load();
  linksPage.ready = true;
}).catch((e) => { document.getElementById("error").textContent = e.message; });
