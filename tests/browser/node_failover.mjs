// The live wall and inboxes through HAProxy in headless Chromium while the node serving the
// camera is killed: how long until video frames are decoded again (through the other node)
// and until the pages' update sockets are up again.
// Usage: node node_failover.mjs '{"url": ..., "username": ..., "password": ..., "inboxes": N,
//   "victim": the node that will be killed}'
// Each inbox's update socket is opened again until it is on the victim. It prints
// {"waiting": {"kill": {"sockets": [node, ...]}}} and reads back one JSON line
// {"node": killed node, "at": epoch ms of the SIGKILL}; the result is the last line.
import { createInterface } from "node:readline";
import { SIZES, login, openBrowser } from "./pages.mjs";

const opts = JSON.parse(process.argv[2]);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const problems = [];
let killing = false; // after the kill, failed socket and video requests are expected

async function ask(what) {
  console.log(JSON.stringify({ waiting: what }));
  const { value } = await lines.next();
  return JSON.parse(value);
}

async function open(browser, path, ready) {
  const context = await browser.newContext({ viewport: SIZES.wall, locale: "zh-CN", timezoneId: "Asia/Shanghai" });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${path}: ${e}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !(killing && /WebSocket|Failed to load resource|50[23]/.test(m.text()))) problems.push(`${path} console: ${m.text()}`);
  });
  await login(page, opts.url, opts.username, opts.password);
  await page.goto(`${opts.url}${path}`);
  await page.waitForFunction(ready, null, { timeout: 30000 });
  return page;
}

// Each page notes, every 20 ms, when its update socket goes down and when it is up again
// and greeted by a node (epoch ms).
const WATCH_SOCKET = (name) => {
  const updates = window[name].updates;
  window.socketLog = [];
  const state = () => (updates.up && updates.hello ? updates.hello.node : null);
  let last = state();
  setInterval(() => {
    const now = state();
    if (now !== last) {
      last = now;
      window.socketLog.push({ up: now !== null, at: performance.timeOrigin + performance.now(), node: now });
    }
  }, 20);
};

// The wall's tile notes when a new player (an attempt after the kill) first presents a
// frame (the player's own first-frame time, epoch ms), and how many attempts it took.
const WATCH_TILE = () => {
  const tile = window.fsvWall.tiles[0];
  // Every attempt after this: when it started, and when and how it ended (epoch ms).
  window.attempts = [];
  const now = () => Math.round(performance.timeOrigin + performance.now());
  const start = FsvPlayer.prototype.start;
  FsvPlayer.prototype.start = function () {
    const entry = { start: now() };
    window.attempts.push(entry);
    const onEnd = this.onEnd;
    this.onEnd = (reason) => { entry.end = now(); entry.reason = String(reason); entry.fragments = this.fragments; onEnd(reason); };
    const out = start.call(this);
    if (this.ws) this.ws.addEventListener("open", () => { entry.open = now(); });
    return out;
  };
  window.tileLog = { before: tile.player, frameAt: null, retries: tile.retries || 0 };
  const timer = setInterval(() => {
    const p = tile.player;
    if (p !== window.tileLog.before && p.firstFrameMs != null) {
      window.tileLog.frameAt = performance.timeOrigin + p.startedAt + p.firstFrameMs;
      window.tileLog.retries = (tile.retries || 0) - window.tileLog.retries;
      clearInterval(timer);
    }
  }, 20);
};

const browser = await openBrowser();
let result;
try {
  const wall = await open(browser, "/live?grid=1", () =>
    window.fsvWall && window.fsvWall.ready && window.fsvWall.tiles.length > 0 && window.fsvWall.updates.hello &&
    window.fsvWall.tiles[0].player.framesDecoded() > 0);
  const inboxes = [];
  for (let i = 0; i < opts.inboxes; i++) {
    const inbox = await open(browser, "/inbox", () => window.fsvInbox && window.fsvInbox.ready && window.fsvInbox.updates.hello);
    // The API goes round-robin: reconnect until the socket is on the node to be killed.
    for (let tries = 0; tries < 20; tries++) {
      if (await inbox.evaluate((v) => window.fsvInbox.updates.hello.node === v, opts.victim)) break;
      const opened = await inbox.evaluate(() => { const u = window.fsvInbox.updates; u.ws.close(1000); return u.opened; });
      await inbox.waitForFunction((n) => window.fsvInbox.updates.hello && window.fsvInbox.updates.opened > n, opened, { timeout: 10000 });
    }
    inboxes.push(inbox);
  }
  const pages = [[wall, "fsvWall"], ...inboxes.map((p) => [p, "fsvInbox"])];
  const sockets = [];
  for (const [page, name] of pages) {
    await page.evaluate(WATCH_SOCKET, name);
    sockets.push(await page.evaluate((n) => window[n].updates.hello.node, name));
  }
  await wall.evaluate(WATCH_TILE);
  killing = true;
  const killed = await ask({ kill: { sockets } });
  await wall.waitForFunction(() => window.tileLog.frameAt != null, null, { timeout: 20000, polling: 20 });
  const tile = await wall.evaluate(() => ({ frameAt: window.tileLog.frameAt, retries: window.tileLog.retries, attempts: window.attempts }));
  // Frames keep coming on the new stream: 3 s later, on the same player, and more of them.
  const sample = () => wall.evaluate(() => {
    const t = window.fsvWall.tiles[0];
    if (!t.player.sampleId) t.player.sampleId = Math.random();
    return { id: t.player.sampleId, frames: t.player.framesDecoded(), fragments: t.player.fragments, retries: t.retries || 0, msg: t.el.querySelector(".msg").textContent };
  });
  const after = [await sample()];
  await new Promise((r) => setTimeout(r, 3000));
  after.push(await sample());
  const socketsBack = [];
  for (const [i, [page]] of pages.entries()) {
    if (sockets[i] !== killed.node) continue;
    await page.waitForFunction(() => window.socketLog.some((e) => e.up), null, { timeout: 20000 });
    const back = await page.evaluate(() => window.socketLog.find((e) => e.up));
    socketsBack.push({ page: i, backMs: Math.round(back.at - killed.at), node: back.node });
  }
  result = {
    ok: problems.length === 0,
    problems,
    sockets,
    videoBackMs: Math.round(tile.frameAt - killed.at),
    tileRetries: tile.retries,
    attempts: tile.attempts.map((a) => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, ["start", "open", "end"].includes(k) ? Math.round(v - killed.at) : v]))),
    after,
    socketsBack,
  };
} catch (e) {
  result = { ok: false, error: String(e && e.stack ? e.stack : e), problems };
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(0); // stdin stays open

