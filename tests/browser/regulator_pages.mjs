// Walks central's regulator pages in headless Chromium as the people who use them, at wall,
// desktop and phone sizes, and prints what each of them saw as one JSON line.
// Usage: node regulator_pages.mjs '{"url": ..., "users": {name: password}, "alertId": ...,
//   "photo": <JPEG path>, "shots": <screenshot folder>, "publicUrl": ...}'
// Midway it prints {"waiting": "alert"} and reads the id of a newly raised alert from stdin,
// to time how long the open inbox takes to show it without a reload.
import { createInterface } from "node:readline";
import { SIZES, login as signIn, menu, openBrowser, settle } from "./pages.mjs";

const PHONE = SIZES.phone;
// Identifiers that must never reach a reader: enum values are shown in words.
const RAW_IDS = /\b(no_chef_hat|smoking|kitchen_prep|rectification_requested|rectification_submitted|acknowledged|reopened|county_inspector|city_monitor|enterprise_staff|request_rectification|submit_rectification|critical|warning)\b/g;
const opts = JSON.parse(process.argv[2]);
const problems = []; // page errors, console errors and dialogs: the test expects none
// API refusals a step provokes on purpose (wrong password, another county's alert): the
// browser logs each failed request as a console error; those are expected, nothing else.
let expected = null; // RegExp of the failed request URLs the current step expects
const audits = {}; // "who/page/size" → layout and language checks
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

async function open(browser, who, viewport = PHONE) {
  const context = await browser.newContext({ viewport, locale: "zh-CN", timezoneId: "Europe/Berlin" });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${who}: ${e}`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const from = m.location().url || "";
    if (expected && m.text().startsWith("Failed to load resource") && expected.test(from)) return;
    problems.push(`${who} console: ${m.text()} @ ${from || page.url()}`);
  });
  page.on("dialog", async (d) => { problems.push(`${who}: ${d.type()} ${d.message()}`); await d.dismiss(); });
  return page;
}

// The page at each size: a screenshot, sideways overflow, header rows, squeezed names, and
// text that is a message key or a raw identifier instead of words.
async function audit(page, who, name, sizes = ["wall", "desktop", "phone"]) {
  for (const size of sizes) {
    await page.setViewportSize(SIZES[size]);
    await settle(page); // charts and grids follow the new size
    await page.screenshot({ path: `${opts.shots}/${who}-${name}-${size}.png`, fullPage: size === "phone" });
    audits[`${who}/${name}/${size}`] = await page.evaluate((raw) => {
      const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
      const squeezed = [...document.querySelectorAll(".alert-item .kind, .alert-item .where, .node .name, nav.menu a, #who, .ranking .name, .ticker a, .figure .name, .kpi .name, th, td, h1, h2")]
        .filter((el) => visible(el) && el.textContent.trim().length > 3)
        .filter((el) => el.getBoundingClientRect().width < 2.5 * parseFloat(getComputedStyle(el).fontSize))
        .map((el) => el.textContent.trim().slice(0, 30));
      const header = document.querySelector("header.top");
      const text = document.body.innerText;
      return {
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        headerHeight: header ? header.getBoundingClientRect().height : 0,
        squeezed,
        missing: window.fsv ? [...window.fsv.missing] : [],
        placeholders: document.documentElement.innerHTML.includes("{{t:"),
        filters: document.getElementById("filter-box") ? document.getElementById("filter-box").open : null,
        rawIds: [...new Set(text.match(new RegExp(raw, "g")) || [])],
        lang: document.documentElement.lang,
      };
    }, RAW_IDS.source);
  }
  await page.setViewportSize(PHONE);
}

const login = (page, username, landing = "**/inbox") =>
  signIn(page, opts.url, username, opts.users[username], { landing, named: true });

async function wrongThenRightLogin(page) {
  await page.goto(`${opts.url}/login`);
  await audit(page, "anyone", "login");
  await page.fill('input[name="username"]', "inspector-a");
  await page.fill('input[name="password"]', "not-the-password");
  expected = /\/api\/v1\/auth\/login$/;
  await page.click("#login button");
  await page.waitForFunction(() => document.getElementById("error").textContent.trim() !== "");
  expected = null;
  const wrong = { error: await page.textContent("#error"), path: new URL(page.url()).pathname };
  await page.fill('input[name="password"]', opts.users["inspector-a"]);
  await Promise.all([page.waitForURL("**/inbox"), page.click("#login button")]);
  await page.waitForFunction(() => document.getElementById("who").textContent !== "");
  return { wrong, landed: new URL(page.url()).pathname, who: await page.getAttribute("#who", "title") };
}


// The inbox rows once the first page has loaded.
async function rows(page) {
  await page.waitForFunction(() => window.fsvInbox && window.fsvInbox.ready);
  return page.$$eval("#alerts li", (lis) => lis.map((li) => ({
    id: li.dataset.id, state: li.dataset.state, kind: li.querySelector(".kind").textContent,
    where: li.querySelector(".where").textContent, stateText: li.querySelector(".state").textContent,
    severity: li.querySelector(".sev").textContent, time: li.querySelector("time").textContent,
  })));
}

async function detail(page) {
  return page.evaluate(() => {
    const box = document.getElementById("detail");
    return {
      hidden: box.hidden,
      state: box.dataset.state,
      stateText: document.getElementById("detail-state")?.textContent ?? "",
      title: box.querySelector("h2")?.textContent ?? "",
      history: [...box.querySelectorAll("ol.history li")].map((li) => li.textContent),
      actions: [...box.querySelectorAll("#actions .action-bar button")].map((b) => b.dataset.action),
      evidence: [...box.querySelectorAll(".thumbs img")].map((img) => img.alt),
      replayLink: box.querySelector(".replay-link") !== null,
      text: box.textContent,
    };
  });
}

async function openAlert(page, id) {
  await page.click(`#alerts li[data-id="${id}"]`);
  await page.waitForFunction((i) => !document.getElementById("detail").hidden && document.querySelector(`#alerts li[data-id="${i}"]`).classList.contains("selected"), id);
}

async function waitState(page, state) {
  await page.waitForFunction((s) => document.getElementById("detail").dataset.state === s, state);
}

async function act(page, action, note, extra = async () => {}) {
  await page.click(`#actions button[data-action="${action}"]`);
  await page.waitForSelector(`#actions form[data-action="${action}"]`);
  if (note != null) await page.fill(`#actions form[data-action="${action}"] textarea`, note);
  await extra();
  await page.click(`#actions form[data-action="${action}"] button:not(.cancel)`);
}

async function snapshot(page) {
  const img = page.locator("#detail img.snapshot");
  await img.waitFor();
  await page.waitForFunction(() => document.querySelector("#detail img.snapshot").complete);
  return img.evaluate((el) => ({ width: el.naturalWidth, height: el.naturalHeight, shown: el.getBoundingClientRect().width }));
}

async function inspectorRequests(page) {
  const signIn = await wrongThenRightLogin(page);
  const list = await rows(page);
  const menuLinks = await menu(page);
  await openAlert(page, opts.alertId);
  const image = await snapshot(page);
  const before = await detail(page);
  // The detail comes first on a phone, and its actions are on screen without scrolling.
  const phone = await page.evaluate(() => ({
    detailTop: document.getElementById("detail").getBoundingClientRect().top,
    listTop: document.querySelector(".inbox .list").getBoundingClientRect().top,
    actionsBottom: document.getElementById("actions").getBoundingClientRect().bottom,
    height: window.innerHeight,
  }));
  await audit(page, "inspector", "inbox");
  await page.click('#actions button[data-action="acknowledge"]');
  await waitState(page, "acknowledged");
  await act(page, "request_rectification", opts.requestNote);
  await waitState(page, "rectification_requested");
  return { signIn, list, menuLinks, image, before, phone, requested: await detail(page) };
}

// The inbox is open; a new alert is raised; how long until its row is on screen?
async function liveUpdate(page) {
  await page.goto(`${opts.url}/inbox`);
  await rows(page);
  const polls = await page.evaluate(() => window.fsvInbox.polls);
  console.log(JSON.stringify({ waiting: "alert" }));
  const { value } = await lines.next();
  const newId = value.trim();
  const t0 = Date.now();
  await page.waitForSelector(`#alerts li[data-id="${newId}"]`, { timeout: 15000 });
  const ms = Date.now() - t0;
  const first = await page.$eval("#alerts li", (li) => ({ id: li.dataset.id, severity: li.querySelector(".sev").textContent, fresh: li.classList.contains("fresh") }));
  const reloaded = await page.evaluate(() => performance.getEntriesByType("navigation").length);
  // Tick the new alert and acknowledge it in bulk.
  await page.click(`#alerts li[data-id="${newId}"] .pick`);
  const bulkLabel = await page.textContent("#bulk-ack");
  await page.click("#bulk-ack");
  await page.waitForFunction((id) => document.querySelector(`#alerts li[data-id="${id}"]`).dataset.state === "acknowledged", newId);
  const bulkHidden = await page.evaluate(() => document.getElementById("bulk-ack").hidden);
  return { id: newId, ms, first, pollsBefore: polls, reloaded, bulkLabel, bulkHidden };
}

async function staffSubmits(page) {
  await login(page, "staff-canteen-a");
  const menuLinks = await menu(page);
  const list = await rows(page);
  await openAlert(page, opts.alertId);
  await waitState(page, "rectification_requested");
  const before = await detail(page);
  await audit(page, "staff", "inbox", ["desktop", "phone"]);
  await act(page, "submit_rectification", opts.submitNote, () => page.setInputFiles('#actions form input[name="photos"]', opts.photo));
  await waitState(page, "rectification_submitted");
  const after = await detail(page);
  expected = /\/api\/v1\/reports\?/;
  await page.goto(`${opts.url}/reports`);
  await page.waitForFunction(() => document.getElementById("error").textContent.trim() !== "");
  const reportsRefused = await page.textContent("#error");
  expected = null;
  return { menuLinks, list, before, after, reportsRefused };
}

async function inspectorCloses(page) {
  await page.goto(`${opts.url}/inbox`);
  await rows(page);
  await openAlert(page, opts.alertId);
  await waitState(page, "rectification_submitted");
  const before = await detail(page);
  const photo = await page.evaluate(async () => {
    const src = document.querySelector("#detail .thumbs img").getAttribute("src");
    const resp = await fetch(src);
    return { status: resp.status, type: resp.headers.get("Content-Type"), bytes: (await resp.arrayBuffer()).byteLength };
  });
  await page.click("#detail .thumb");
  const viewerOpen = await page.evaluate(() => document.getElementById("viewer").open);
  await page.keyboard.press("Escape");
  // Close without a reason: the form refuses, nothing changes.
  await act(page, "close", "");
  await page.waitForTimeout(500);
  const refusedEmpty = await page.evaluate(() => document.getElementById("detail").dataset.state);
  await page.fill('#actions form[data-action="close"] textarea', opts.closeReason);
  await page.click('#actions form[data-action="close"] button:not(.cancel)');
  await waitState(page, "closed");
  const after = await detail(page);
  await page.waitForFunction((id) => document.querySelector(`#alerts li[data-id="${id}"]`).dataset.state === "closed", opts.alertId);
  return { before, photo, viewerOpen, refusedEmpty, after, list: await rows(page) };
}

async function otherCounty(page) {
  await login(page, "inspector-b");
  const list = await rows(page);
  const empty = await page.isVisible("#empty");
  expected = new RegExp(`/api/v1/(alerts/${opts.alertId}|dashboard\\?)`);
  await page.goto(`${opts.url}/inbox#alert=${opts.alertId}`); // the link a push opens
  await page.reload();
  await rows(page);
  await page.waitForFunction(() => !document.getElementById("detail").hidden);
  const detailText = await page.textContent("#detail");
  const direct = await page.evaluate(async (id) => (await fetch(`/api/v1/alerts/${id}`)).status, opts.alertId);
  const media = await page.evaluate(async (id) => (await fetch(`/api/v1/alerts/${id}/media/snapshot.jpg`)).status, opts.alertId);
  const dashboard = await page.evaluate(async (id) => (await fetch(`/api/v1/dashboard?org_id=${id}`)).status, opts.countyA);
  expected = null;
  return { list, empty, detailText, direct, media, dashboard };
}

// A live tile's badge links to its camera's alerts: the inbox filters on that camera.
async function cameraFilter(page) {
  const seen = {};
  for (const camera of ["cam1", "cam9"]) {
    await page.goto(`${opts.url}/inbox#site=demo-canteen-a&camera=${camera}`);
    await page.reload();
    await rows(page);
    seen[camera] = { rows: (await rows(page)).length, chip: await page.textContent("#camera-chip") };
  }
  await page.click("#camera-chip");
  await page.waitForFunction(() => document.querySelectorAll("#alerts li").length === 2);
  seen.cleared = await page.evaluate(() => ({ chip: document.getElementById("camera-chip").hidden, hash: location.hash }));
  return seen;
}

async function reports(page) {
  await page.goto(`${opts.url}/reports`);
  await page.waitForFunction(() => document.querySelectorAll("#figures .figure").length > 0);
  const figures = await page.$$eval("#figures .figure", (fs) => Object.fromEntries(fs.map((f) => [f.querySelector(".name").textContent, f.querySelector(".value").textContent])));
  const table = await page.$$eval("#summary tr", (trs) => Object.fromEntries(trs.map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent])));
  const charts = await page.$$eval("#charts canvas", (cs) => cs.length);
  const period = await page.textContent("#period");
  const csv = await page.getAttribute("#csv", "href");
  const xlsx = await page.getAttribute("#xlsx", "href");
  await audit(page, "inspector", "reports");
  return { figures, table, charts, period, csv, xlsx };
}

async function videoPages(page) {
  const seen = {};
  for (const name of ["live", "replay"]) {
    await page.goto(`${opts.url}/${name}`);
    await page.waitForFunction(() => document.getElementById("who").textContent !== "");
    await page.waitForTimeout(1500);
    await audit(page, "inspector", name);
    seen[name] = await page.evaluate(() => document.body.innerText.slice(0, 400));
  }
  return seen;
}

async function english(page) {
  await page.goto(`${opts.url}/inbox`);
  await rows(page);
  await Promise.all([page.waitForEvent("load"), page.click("#lang")]);
  await rows(page);
  const seen = await page.evaluate(() => ({
    lang: document.documentElement.lang, nav: [...document.querySelectorAll("nav.menu a")].map((a) => a.textContent),
    states: [...document.querySelectorAll("#alerts .state")].map((s) => s.textContent),
    missing: [...window.fsv.missing],
  }));
  await audit(page, "inspector", "inbox-en", ["desktop", "phone"]);
  await Promise.all([page.waitForEvent("load"), page.click("#lang")]);
  await rows(page);
  seen.back = await page.evaluate(() => document.documentElement.lang);
  return seen;
}

async function dashboard(browser) {
  const page = await open(browser, "city-monitor", SIZES.wall);
  await login(page, "city-monitor");
  await page.goto(`${opts.url}/dashboard`);
  await page.waitForFunction(() => window.fsvDashboard && window.fsvDashboard.ready);
  await page.waitForFunction(() => document.querySelector("#strip .strip-tile, #strip .empty"));
  const read = () => page.evaluate(() => ({
    crumbs: [...document.querySelectorAll("#crumbs a, #crumbs span")].map((x) => x.textContent),
    title: document.getElementById("dash-title").textContent,
    kpis: Object.fromEntries([...document.querySelectorAll(".kpi")].map((k) => [k.querySelector(".name").textContent, k.querySelector(".value").textContent])),
    nodes: [...document.querySelectorAll("#tree .node")].map((n) => n.querySelector(".name").textContent),
    ranking: [...document.querySelectorAll("#ranking li")].map((li) => li.textContent),
    ticker: [...document.querySelectorAll("#ticker li")].map((li) => li.textContent),
    canvases: document.querySelectorAll(".dash canvas").length,
    strip: [...document.querySelectorAll("#strip .strip-tile .cap")].map((c) => c.textContent),
    // Each camera's sub lane: its words, and whether it lies inside its node (not cut off).
    subs: [...document.querySelectorAll("#tree .node .sub")].map((x) => {
      const r = x.getBoundingClientRect(), node = x.closest(".node").getBoundingClientRect();
      return { text: x.textContent, title: x.title, inside: r.left >= node.left - 1 && r.right <= node.right + 1 && r.width > 0 };
    }),
    fits: document.documentElement.scrollHeight <= window.innerHeight + 1,
    // Each chart's canvas lies inside its panel (nothing cut off at the bottom).
    chartsInside: [...document.querySelectorAll(".dash .chart")].map((c) => {
      const canvas = c.querySelector("canvas").getBoundingClientRect();
      const panel = c.closest(".panel").getBoundingClientRect();
      return { canvasBottom: Math.round(canvas.bottom), panelBottom: Math.round(panel.bottom), chart: Math.round(c.getBoundingClientRect().height), canvas: Math.round(canvas.height) };
    }),
  }));
  const city = await read();
  await audit(page, "city", "dashboard");
  await page.setViewportSize(SIZES.wall);
  const loads = await page.evaluate(() => window.fsvDashboard.loads);
  await page.click("#tree .node:has-text('沙坡头')");
  await page.waitForFunction((n) => window.fsvDashboard.loads > n && document.querySelectorAll("#crumbs a, #crumbs span").length === 2, loads);
  const county = await read();
  const loads2 = await page.evaluate(() => window.fsvDashboard.loads);
  await page.click("#tree .node:has-text('第一小学')");
  await page.waitForFunction((n) => window.fsvDashboard.loads > n && document.querySelectorAll("#crumbs a, #crumbs span").length === 3, loads2);
  const enterprise = await read();
  await audit(page, "city", "dashboard-enterprise", ["wall", "desktop", "phone"]);
  enterprise.phone = await read(); // audit leaves the phone's size
  // The same cameras in English, then back to Chinese (the language is kept per browser).
  await Promise.all([page.waitForEvent("load"), page.click("#lang")]);
  await page.waitForFunction(() => window.fsvDashboard && window.fsvDashboard.ready && document.querySelector("#tree .node"));
  enterprise.en = await read();
  enterprise.en.missing = await page.evaluate(() => [...window.fsv.missing]);
  await audit(page, "city", "dashboard-enterprise-en", ["desktop", "phone"]);
  await Promise.all([page.waitForEvent("load"), page.click("#lang")]);
  await page.context().close();
  return { city, county, enterprise };
}

// The administrator's big screen starts above the provinces.
async function adminDashboard(browser) {
  const page = await open(browser, "admin", SIZES.wall);
  await login(page, "admin");
  await page.goto(`${opts.url}/dashboard`);
  await page.waitForFunction(() => window.fsvDashboard && window.fsvDashboard.ready);
  const seen = await page.evaluate(() => ({
    crumbs: [...document.querySelectorAll("#crumbs a, #crumbs span")].map((x) => x.textContent),
    nodes: [...document.querySelectorAll("#tree .node .name")].map((n) => n.textContent),
    menu: [...document.querySelectorAll("nav.menu a")].map((a) => a.getAttribute("href")),
  }));
  await audit(page, "admin", "dashboard");
  await page.context().close();
  return seen;
}

async function publicView(browser) {
  const context = await browser.newContext({ viewport: PHONE });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`public: ${e}`));
  page.on("console", (m) => { if (m.text().includes("Content Security Policy")) problems.push(`public: ${m.text()}`); });
  const resp = await page.goto(opts.publicUrl);
  const seen = await page.evaluate(() => ({
    title: document.querySelector("h1")?.textContent ?? "",
    info: document.querySelector(".info")?.textContent ?? "",
    cameras: [...document.querySelectorAll(".cams .cam")].map((f) => f.textContent),
    text: document.body.textContent,
    inboxParts: document.querySelectorAll("#alerts, #detail, nav, #logout, img").length,
  }));
  const api = await page.evaluate(async () => (await fetch("/api/v1/alerts")).status);
  await context.close();
  return { status: resp.status(), ...seen, api };
}

const browser = await openBrowser();
try {
  const started = Date.now();
  const inspector = await open(browser, "inspector-a");
  const requested = await inspectorRequests(inspector);
  const live = await liveUpdate(inspector);
  const staff = await staffSubmits(await open(browser, "staff-canteen-a"));
  const closed = await inspectorCloses(inspector);
  const other = await otherCounty(await open(browser, "inspector-b"));
  const cameraOnly = await cameraFilter(inspector);
  const report = await reports(inspector);
  const video = await videoPages(inspector);
  const en = await english(inspector);
  const dash = await dashboard(browser);
  const admin = await adminDashboard(browser);
  const pub = await publicView(browser);
  console.log(JSON.stringify({ ok: true, requested, live, cameraOnly, staff, closed, other, report, video, en, dash, admin, pub, audits, problems, ms: Date.now() - started }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e), problems, audits }));
  process.exitCode = 1;
} finally {
  await browser.close();
  stdin.close();
}
