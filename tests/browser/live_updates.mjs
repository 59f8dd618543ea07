// The inbox's update socket in headless Chromium: two county inspectors and the city monitor
// have their inboxes open; alerts are raised over MQTT; central is restarted under them.
// Usage: node live_updates.mjs '{"url": ..., "users": {name: password}, "shots": <folder>}'
// It prints {"waiting": "alert"|"restart"} and reads one JSON line back from stdin each time
// ({"id", "published"} for an alert, published in epoch ms); the result is the last line.
import { createInterface } from "node:readline";
import { SIZES, login, openBrowser } from "./pages.mjs";

const opts = JSON.parse(process.argv[2]);
const problems = [];
let restarting = false; // while central restarts, failed socket attempts are expected
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

async function ask(what) {
  console.log(JSON.stringify({ waiting: what }));
  const { value } = await lines.next();
  return JSON.parse(value);
}

// The live wall of the same inspector: its camera tile's badge, and how it got there.
async function wallBadge(wall) {
  return wall.evaluate(() => {
    const badge = document.querySelector("#wall .tile .badge");
    return { text: badge ? badge.textContent : null, hidden: badge ? badge.hidden : null, polls: window.fsvWall.polls || 0, up: window.fsvWall.updates.up };
  });
}

async function inbox(browser, who, viewport = SIZES.desktop) {
  const context = await browser.newContext({ viewport, locale: "zh-CN", timezoneId: "Asia/Shanghai" });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${who}: ${e}`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (restarting && /WebSocket|Failed to load resource|ERR_CONNECTION_REFUSED/.test(m.text())) return;
    if (m.location().url.includes("/api/v1/video/")) return; // no edge here: the tiles have no video
    problems.push(`${who} console: ${m.text()}`);
  });
  await login(page, opts.url, who, opts.users[who]);
  await page.waitForFunction(() => window.fsvInbox && window.fsvInbox.ready && window.fsvInbox.updates.up);
  // Note when each row enters the list (epoch ms), whatever brought it.
  await page.evaluate(() => {
    window.rowSeen = {};
    new MutationObserver((changes) => {
      const at = performance.timeOrigin + performance.now();
      for (const c of changes) for (const n of c.addedNodes) if (n.dataset && n.dataset.id && !window.rowSeen[n.dataset.id]) window.rowSeen[n.dataset.id] = at;
    }).observe(document.getElementById("alerts"), { childList: true });
  });
  return page;
}

// Raise an alert; how long from its publication until the open inbox shows it.
async function arrival(page, others) {
  const before = await page.evaluate(() => ({ polls: window.fsvInbox.polls, navigations: performance.getEntriesByType("navigation").length, opened: window.fsvInbox.updates.opened }));
  const raised = await ask("alert");
  await page.waitForSelector(`#alerts li[data-id="${raised.id}"]`, { timeout: 15000 });
  const seen = await page.evaluate((id) => {
    const li = document.querySelector(`#alerts li[data-id="${id}"]`);
    const u = window.fsvInbox.updates;
    return {
      at: window.rowSeen[id],
      first: document.querySelector("#alerts li").dataset.id === id,
      fresh: li.classList.contains("fresh"),
      severity: li.querySelector(".sev").textContent,
      viaSocket: u.log.some((m) => m.id === id && m.op === "created"),
      // When the socket carried it (epoch ms; null: not yet), how many times it opened.
      socketAt: (u.log.find((m) => m.id === id) || { at: null }).at,
      opened: u.opened, up: u.up,
      polls: window.fsvInbox.polls,
      navigations: performance.getEntriesByType("navigation").length,
    };
  }, raised.id);
  const heard = {};
  await page.waitForTimeout(300); // the others' sockets had the same chance to carry it
  for (const [who, other] of Object.entries(others)) {
    heard[who] = await other.evaluate((id) => ({
      up: window.fsvInbox.updates.up,
      carried: window.fsvInbox.updates.log.some((m) => m.id === id),
      listed: document.querySelector(`#alerts li[data-id="${id}"]`) !== null,
    }), raised.id);
  }
  const socketMs = seen.socketAt == null ? null : Math.round(seen.socketAt - raised.published);
  return { id: raised.id, ms: Math.round(seen.at - raised.published), socketMs, openedDuring: seen.opened - before.opened, ...seen, pollsDuring: seen.polls - before.polls, reloaded: seen.navigations - before.navigations, heard };
}

const browser = await openBrowser();
try {
  const a = await inbox(browser, "inspector-a");
  const b = await inbox(browser, "inspector-b");
  const city = await inbox(browser, "city-monitor");
  const first = await arrival(a, { "inspector-b": b, "city-monitor": city });
  for (const [name, size] of Object.entries(SIZES)) {
    await a.setViewportSize(size);
    await a.waitForTimeout(300);
    await a.screenshot({ path: `${opts.shots}/inbox-live-${name}.png`, fullPage: name === "phone" });
  }
  // The city monitor narrows by county (the enterprise list follows) and by station.
  const filters = {};
  const listed = () => city.$$eval("#alerts li", (lis) => lis.map((li) => li.dataset.id));
  const choose = async (sel, value) => {
    await city.evaluate(() => { document.getElementById("alerts").dataset.loaded = ""; });
    await city.selectOption(sel, value);
    await city.waitForFunction(() => document.getElementById("alerts").dataset.loaded === "1");
  };
  await choose("#f-county", { label: "中宁县 Zhongning" });
  filters.otherCounty = { rows: await listed(), enterprises: await city.$$eval("#f-org option", (os) => os.filter((o) => o.value && !o.hidden).map((o) => o.textContent)) };
  await choose("#f-county", { label: "沙坡头区 Shapotou" });
  await choose("#f-station", "storage");
  filters.otherStation = await listed();
  await choose("#f-station", "kitchen_prep");
  filters.station = await listed();
  await city.screenshot({ path: `${opts.shots}/inbox-city-filters-desktop.png` });
  const layout = await a.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, missing: [...window.fsv.missing] }));
  await a.setViewportSize(SIZES.desktop);
  // Central restarts: the socket drops, the page polls meanwhile, reconnects and re-syncs.
  const opened = await a.evaluate(() => ({ opened: window.fsvInbox.updates.opened, resyncs: window.fsvInbox.resyncs }));
  restarting = true;
  const down = Date.now();
  await ask("restart");
  const restartedMs = Date.now() - down;
  await a.waitForFunction((n) => window.fsvInbox.updates.up && window.fsvInbox.updates.opened > n, opened.opened, { timeout: 60000 });
  await b.waitForFunction(() => window.fsvInbox.updates.up, null, { timeout: 60000 });
  restarting = false;
  const backMs = Date.now() - down;
  const reconnected = await a.evaluate(() => ({ opened: window.fsvInbox.updates.opened, resyncs: window.fsvInbox.resyncs }));
  // The wall, opened after the first alert, shows its badge; the next alert raises it by the
  // socket alone (no wall request in between). It opens after the restart: a tile's video
  // socket waiting for an absent edge holds central's shutdown up to its 20 s kill.
  const wall = await a.context().newPage();
  wall.on("pageerror", (e) => problems.push(`wall: ${e}`));
  await wall.goto(`${opts.url}/live`);
  await wall.waitForFunction(() => window.fsvWall && window.fsvWall.ready && window.fsvWall.updates.up && document.querySelector("#wall .tile .badge"));
  const badges = { before: await wallBadge(wall) };
  const wallRequests = [];
  wall.on("request", (r) => { if (r.url().includes("/api/v1/video/wall")) wallRequests.push(r.url()); });
  const second = await arrival(a, { "inspector-b": b });
  await wall.waitForFunction((t) => document.querySelector("#wall .tile .badge").textContent !== t, badges.before.text, { timeout: 5000 });
  badges.after = { ...(await wallBadge(wall)), requests: wallRequests.length };
  console.log(JSON.stringify({ ok: true, first, second, before: opened, reconnected: { ...reconnected, restartedMs, backMs }, layout, filters, badges, problems }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e), problems }));
  process.exitCode = 1;
} finally {
  await browser.close();
  stdin.close();
}
