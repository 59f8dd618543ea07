// Drives central's video pages in headless Chromium and prints what it saw as one JSON line.
// Usage: node video_pages.mjs '{"mode": "live"|"replay"|"scope", "url": ..., "username": ...,
//   "password": ..., "site": ..., "camera": ..., "at": <UTC seconds, replay>}'
//   or '{"mode": "public", "url": ..., "publicUrl": ..., "linkId": ..., "token": <bearer of
//   a user who may revoke it>, "shots": <screenshot folder>}'
import { login as signIn, openBrowser } from "./pages.mjs";

const opts = JSON.parse(process.argv[2]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const login = (page) => signIn(page, opts.url, opts.username, opts.password);

// The burned-in 12-bit frame counter of the test footage (testbed/footage.py), read from the
// picture on screen: white cells are ones, most significant bit left, top right of 1920x1080.
const READ_COUNTER = (video) => {
  const w = video.videoWidth;
  const h = video.videoHeight;
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, w, h);
  let value = 0;
  for (let bit = 0; bit < 12; bit++) {
    const x = Math.floor(((1416 + (11 - bit) * 40 + 20) * w) / 1920);
    const y = Math.floor(((24 + 20) * h) / 1080);
    const [r, g, b] = ctx.getImageData(x, y, 1, 1).data;
    if ((r + g + b) / 3 > 128) value |= 1 << bit;
  }
  return value;
};

async function live(page) {
  const started = Date.now();
  await page.goto(`${opts.url}/live?grid=1`);
  await page.waitForFunction(() => window.fsvWall && window.fsvWall.ready && window.fsvWall.tiles.length > 0);
  await page.waitForFunction(() => window.fsvWall.tiles[0].player.firstFrameMs != null, null, { timeout: 20000 });
  const video = await page.evaluateHandle(() => window.fsvWall.tiles[0].video);
  const sample = async () => ({
    counter: await page.evaluate(READ_COUNTER, video),
    ...(await page.evaluate(() => {
      const t = window.fsvWall.tiles[0];
      return { currentTime: t.video.currentTime, frames: t.player.framesDecoded(), paused: t.video.paused };
    })),
  });
  const first = await sample();
  await sleep(3000);
  const second = await sample();
  const info = await page.evaluate(() => {
    const t = window.fsvWall.tiles[0];
    return {
      firstFrameMs: t.player.firstFrameMs,
      caption: t.el.querySelector(".cap").textContent,
      online: t.el.classList.contains("online"),
      badge: t.el.querySelector(".badge").hidden ? null : t.el.querySelector(".badge").textContent,
      tiles: window.fsvWall.tiles.length,
      latencyS: Date.now() / 1000 - t.player.wallNow(),
      size: [t.video.videoWidth, t.video.videoHeight],
      badgeHref: t.el.querySelector(".badge").getAttribute("href"),
    };
  });
  // A click takes the tile full screen, on the main (HD) stream; a second click returns.
  await page.click("#wall .tile video");
  await page.waitForFunction(() => {
    const t = window.fsvWall.tiles[0];
    return document.fullscreenElement === t.el && t.stream === "main" && t.video.videoWidth === 1920;
  }, null, { timeout: 20000 });
  const full = await page.evaluate(() => [window.fsvWall.tiles[0].video.videoWidth, window.fsvWall.tiles[0].video.videoHeight]);
  await page.click("#wall .tile video");
  await page.waitForFunction(() => !document.fullscreenElement && window.fsvWall.tiles[0].stream === "sub" && window.fsvWall.tiles[0].video.videoWidth === 640, null, { timeout: 20000 });
  return { ...info, first, second, full, pageMs: Date.now() - started };
}

async function glass(page) {
  await page.goto(`${opts.url}/live?grid=1`);
  await page.waitForFunction(() => window.fsvWall && window.fsvWall.ready && window.fsvWall.tiles.length > 0);
  await page.waitForFunction(() => window.fsvWall.tiles[0].player.firstFrameMs != null, null, { timeout: 20000 });
  const firstFrameMs = await page.evaluate(() => window.fsvWall.tiles[0].player.firstFrameMs);
  const video = await page.evaluateHandle(() => window.fsvWall.tiles[0].video);
  await sleep(3000);
  const samples = [];
  for (let i = 0; i < 40; i++) {
    const counter = await page.evaluate(READ_COUNTER, video);
    samples.push({ at: Date.now(), counter });
    await sleep(100);
  }
  return { firstFrameMs, samples };
}

async function replay(page) {
  const hash = new URLSearchParams({ site: opts.site, camera: opts.camera, t: String(opts.at) });
  await page.goto(`${opts.url}/replay#${hash}`);
  await page.waitForFunction(() => window.fsvReplay && window.fsvReplay.ready);
  await page.waitForFunction(() => {
    const p = window.fsvReplay.player;
    return p && p.originWall != null && p.target == null && p.video.readyState >= 2;
  }, null, { timeout: 20000 });
  const seekMs = await page.evaluate(() => window.fsvReplay.player.firstFrameMs);
  const shown = await page.evaluate(async ({ at }) => {
    const p = window.fsvReplay.player;
    const v = p.video;
    const within = (ms, promise) => Promise.race([promise, new Promise((r) => setTimeout(r, ms))]);
    v.pause();
    const seeked = new Promise((r) => v.addEventListener("seeked", r, { once: true }));
    v.currentTime = at - p.originWall;
    const didSeek = await within(5000, seeked.then(() => true));
    const didPaint = await within(1000, new Promise((r) => v.requestVideoFrameCallback((_n, m) => r(m.mediaTime))));
    const buffered = [];
    for (let i = 0; i < v.buffered.length; i++) buffered.push([v.buffered.start(i), v.buffered.end(i)]);
    return { originWall: p.originWall, currentTime: v.currentTime, size: [v.videoWidth, v.videoHeight],
      buffered, readyState: v.readyState, state: document.getElementById("state").textContent,
      target: at - p.originWall, didSeek: didSeek === true, paintedMediaTime: didPaint ?? null };
  }, { at: opts.at });
  shown.counter = await page.evaluate(READ_COUNTER, await page.evaluateHandle(() => window.fsvReplay.player.video));
  const drawn = await page.evaluate(() => ({
    ranges: document.querySelectorAll("#timeline .rec").length,
    gaps: document.querySelectorAll("#timeline .gap").length,
    clock: document.getElementById("clock").textContent,
  }));
  return { ...shown, ...drawn, seekMs };
}

// The timeline: zoom from the day to one minute around a recorded time, then a time before
// the first recording (a gap): the page says so and offers the next recording, which plays.
// The zoom keeps the playing time where it is on the bar, which is where the time of day puts
// it on the day's bar: in the site's last hour of the day that is the bar's last few percent,
// and at 1 minute a playing cursor walks off the window's end a second or two later (a loaded
// box takes that between two clicks). So the replay is first seen playing from the asked time
// (no seek of the player's own still to come), then paused with Space: the playing time
// stands still while the zoom is checked.
async function timeline(page) {
  const hash = new URLSearchParams({ site: opts.site, camera: opts.camera, t: String(opts.at) });
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.goto(`${opts.url}/replay#${hash}`);
  await page.waitForFunction(() => window.fsvReplay && window.fsvReplay.ready);
  await page.waitForFunction(() => {
    const p = window.fsvReplay.player;
    return p && p.originWall != null && p.target == null && p.video.readyState >= 2 && !p.video.paused;
  }, null, { timeout: 60000 });
  await page.keyboard.press(" ");
  await page.waitForFunction(() => window.fsvReplay.player.video.paused, null, { timeout: 15000 });
  const read = () => page.evaluate(() => ({
    span: window.fsvReplay.view.span, window: document.getElementById("window").textContent,
    ticks: [...document.querySelectorAll("#hours span")].map((s) => s.textContent),
    recs: document.querySelectorAll("#timeline .rec").length,
    cursorShown: !document.getElementById("cursor").hidden,
    // Where the playing time is along the bar (0..1, null outside the window).
    at: fsvTimeline.frac(window.fsvReplay.view, window.fsvReplay.position()),
    norec: !document.getElementById("norec").hidden,
  }));
  const day = await read();
  for (let i = 0; i < 5; i++) await page.click("#zoom-in");
  const minute = await read();
  // Clicking the middle of a 1-minute bar lands within a second of the time under the pointer.
  const box = await page.locator("#timeline").boundingBox();
  const under = await page.evaluate(() => fsvTimeline.timeAt(window.fsvReplay.view, 0.5));
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  const clicked = await page.evaluate(() => window.fsvReplay.seekedTo);
  await page.click("#zoom-out");
  const gapAt = await page.evaluate(() => Math.min(...window.fsvReplay.data.ranges.map((r) => r.start)) - 120);
  await page.evaluate((ts) => window.fsvReplay.seek(ts), gapAt);
  await page.waitForFunction(() => !document.getElementById("norec").hidden);
  const gap = await page.evaluate(() => ({
    text: document.getElementById("norec-text").textContent,
    next: document.getElementById("norec-next").hidden ? null : document.getElementById("norec-next").textContent,
    player: window.fsvReplay.player !== null,
  }));
  await page.screenshot({ path: `${opts.shots}/replay-no-recording-desktop.png` });
  await page.click("#norec-next");
  await page.waitForFunction(() => {
    const p = window.fsvReplay.player;
    return p && p.originWall != null && p.video.readyState >= 2 && document.getElementById("norec").hidden;
  }, null, { timeout: 20000 });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const phone = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
  await page.screenshot({ path: `${opts.shots}/replay-phone.png`, fullPage: true });
  return { day, minute, under, clicked, gapAt, gap, phone, missing: await page.evaluate(() => [...window.fsv.missing]) };
}

// Sources, previews, keys and export from a selection: `at` is archived, `edgeAt` only on the
// edge. Nothing plays until the bar is clicked, so the edge's preview (class bulk, which waits
// while a video of the site is watched) is asked while the line is free.
async function scrub(page) {
  const thumbs = [];
  page.on("response", (r) => {
    if (r.url().includes("/api/v1/video/thumbnail/")) thumbs.push({ url: r.url().slice(opts.url.length), status: r.status(), source: r.headers()["x-thumbnail-source"] || null });
  });
  await page.setViewportSize({ width: 1440, height: 900 });
  const hash = new URLSearchParams({ site: opts.site, camera: opts.camera });
  await page.goto(`${opts.url}/replay#${hash}`);
  await page.waitForFunction(() => window.fsvReplay && window.fsvReplay.ready && window.fsvReplay.data);
  // The bar's box is read again at each move: the page's layout may still settle (a scrollbar
  // appearing narrows the bar, and a time taken from the old box lands seconds away).
  const pointAt = async (ts, dx = 0) => {
    const box = await page.locator("#timeline").boundingBox();
    const x = await page.evaluate(({ ts, x, w }) => {
      const v = window.fsvReplay.view;
      return x + ((ts - v.start) / v.span) * w;
    }, { ts, x: box.x, w: box.width });
    return [x + dx, box.y + box.height / 2];
  };
  // The wheel zooms where the pointer is: from the day down to 5 minutes; then the window is
  // centred between the two times (where the wheel left them depends on the time of day).
  const mid = (opts.at + opts.edgeAt) / 2;
  for (let i = 0; i < 4; i++) {
    await page.mouse.move(...(await pointAt(mid)));
    await page.mouse.wheel(0, -100);
    await page.waitForTimeout(50);
  }
  await page.evaluate((mid) => {
    const v = window.fsvReplay.view;
    v.start = mid - v.span / 2;
    fsvTimeline.clamp(v);
    window.fsvReplay.draw();
  }, mid);
  const drawn = await page.evaluate(() => ({
    span: window.fsvReplay.view.span,
    archive: document.querySelectorAll("#timeline .src.archive").length,
    edge: document.querySelectorAll("#timeline .src.edge").length,
    legend: document.querySelector(".legend").textContent,
    titles: [...document.querySelectorAll("#timeline .src")].map((el) => [el.className, el.title]),
  }));
  const previewAt = async (ts) => {
    await page.mouse.move(...(await pointAt(ts, -2)));
    await page.mouse.move(...(await pointAt(ts)));
    // Read the preview in the same check that saw it loaded: a later request may be under way.
    const shown = await page.waitForFunction(() => {
      const img = document.getElementById("preview-img");
      const ok = !document.getElementById("preview").hidden && !img.hidden && img.dataset.loaded === img.dataset.url && img.naturalWidth > 0;
      return ok && { url: img.dataset.loaded, width: img.naturalWidth, time: document.getElementById("preview-time").textContent };
    }, null, { timeout: 60000 });
    return shown.jsonValue();
  };
  const archived = await previewAt(opts.at);
  await page.screenshot({ path: `${opts.shots}/replay-preview-1440.png` });
  const edgeView = await page.evaluate((ts) => fsvTimeline.frac(window.fsvReplay.view, ts) != null, opts.edgeAt);
  if (!edgeView) throw new Error("the edge-only time is outside the 5-minute window");
  const edge = await previewAt(opts.edgeAt);
  // Every text the source tag shows (the archive's part is short: the edge takes over).
  await page.evaluate(() => {
    const tag = document.getElementById("source");
    window.sourceTags = [];
    new MutationObserver(() => window.sourceTags.push([tag.textContent, tag.className, tag.dataset.stream]))
      .observe(tag, { childList: true, characterData: true, subtree: true });
  });
  // Click to play, then step with the keys: the playhead moves by the zoom's step.
  await page.mouse.click(...(await pointAt(opts.at)));
  const playing = async () => {
    try {
      await page.waitForFunction(() => {
        const p = window.fsvReplay.player;
        return p && p.originWall != null && p.video.readyState >= 2 && !p.video.paused && p.wallNow() != null;
      }, null, { timeout: 60000 });
    } catch (e) {
      const why = await page.evaluate(() => ({
        state: document.getElementById("state").textContent, title: document.getElementById("state").title,
        norec: document.getElementById("norec").hidden ? null : document.getElementById("norec-text").textContent,
        seekedTo: window.fsvReplay.seekedTo, player: !!window.fsvReplay.player,
        ranges: window.fsvReplay.data.ranges, sources: window.fsvReplay.data.sources,
      }));
      throw new Error(`not playing: ${JSON.stringify(why)}`);
    }
  };
  await playing(); // from the keyframe at or before the click: the position settles there
  // Space pauses and goes on; paused again, the steps below start from a still position.
  // (Each state is waited for briefly: a loaded box may deliver the key late.)
  const becomes = (wantPaused) => page.waitForFunction(
    (want) => { const p = window.fsvReplay.player; return !!p && p.video.paused === want; }, wantPaused, { timeout: 15000 },
  ).then(() => true, () => false);
  await page.keyboard.press(" ");
  const paused = await becomes(true);
  await page.keyboard.press(" ");
  const resumed = await becomes(false);
  await page.keyboard.press(" ");
  await becomes(true);
  // Each step goes from where playback is at the key press: [position read before the press,
  // the step's own from and to].
  const stepped = async (key) => {
    const before = await page.evaluate(() => window.fsvReplay.position());
    await page.keyboard.press(key);
    return [before, ...(await page.evaluate(() => window.fsvReplay.lastStep))];
  };
  const back = await stepped("Shift+ArrowLeft");
  const clockAfter = await page.evaluate(() => document.getElementById("clock").textContent);
  const forth = await stepped("Shift+ArrowRight");
  const right = await stepped("ArrowRight");
  // Drag a stretch of the edge's recording; export it; the link appears when it is done.
  const a = opts.edgeAt - 4;
  const b = opts.edgeAt + 1;
  await page.mouse.move(...(await pointAt(a)));
  await page.mouse.down();
  await page.mouse.move(...(await pointAt((a + b) / 2)), { steps: 4 });
  await page.mouse.move(...(await pointAt(b)), { steps: 4 });
  await page.mouse.up();
  const selection = await page.evaluate(() => ({
    range: window.fsvReplay.selection, bar: !document.getElementById("sel-bar").hidden,
    text: document.getElementById("sel-text").textContent, shown: !document.getElementById("selection").hidden,
  }));
  await page.click("#sel-export");
  await page.waitForFunction(() => document.getElementById("export-state").dataset.finished === "1", null, { timeout: 120000 });
  const exported = await page.evaluate(() => ({
    href: document.getElementById("export-link").hidden ? null : document.getElementById("export-link").getAttribute("href"),
    progress: document.getElementById("export-progress").value,
    state: document.getElementById("export-state").textContent,
    why: document.getElementById("export-state").title,
  }));
  const sizes = {};
  for (const [w, h] of [[1920, 1080], [1440, 900], [390, 844]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.waitForTimeout(300);
    const bar = await page.locator("#timeline").boundingBox();
    await page.mouse.move(bar.x + bar.width * 0.5 - 3, bar.y + bar.height / 2);
    await page.mouse.move(bar.x + bar.width * 0.5, bar.y + bar.height / 2);
    await page.waitForTimeout(400);
    sizes[`${w}x${h}`] = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
    await page.screenshot({ path: `${opts.shots}/replay-scrub-${w}x${h}.png`, fullPage: w === 390 });
  }
  const playingFrom = await page.evaluate(() => window.sourceTags);
  return { drawn, playingFrom, archived, edge, thumbs, back, forth, right, clockAfter, paused, resumed, selection, exported, sizes,
    missing: await page.evaluate(() => [...window.fsv.missing]) };
}

async function scope(page) {
  await page.goto(`${opts.url}/live`);
  await page.waitForFunction(() => window.fsvWall && window.fsvWall.ready);
  const tiles = await page.evaluate(() => window.fsvWall.tiles.length);
  const ws = await page.evaluate(({ site, camera }) => new Promise((resolve) => {
    const sock = new WebSocket(`ws://${location.host}/api/v1/video/live/${site}/${camera}`);
    let messages = 0;
    sock.onmessage = () => { messages += 1; };
    sock.onopen = () => resolve({ opened: true, messages });
    sock.onerror = () => resolve({ opened: false, messages });
  }), { site: opts.site, camera: opts.camera });
  return { tiles, ws };
}

// The public kitchen page, no login: a phone plays the published camera (frames advance, the
// video fills the width, its caption sits under it), a desk plays it too, a third viewer is
// refused in words (the link's cap is 2), then the link is revoked and the phone's video ends.
async function publicKitchen(browser, errors) {
  const opened = async (viewport) => {
    const context = await browser.newContext({ viewport, locale: "zh-CN" });
    const page = await context.newPage();
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.text().includes("Content Security Policy")) errors.push(m.text()); });
    const resp = await page.goto(opts.publicUrl);
    await page.waitForFunction(() => window.fsvPublic && window.fsvPublic.ready);
    return { page, context, status: resp.status() };
  };
  const playing = (page) => page.waitForFunction(() => window.fsvPublic.player && window.fsvPublic.player.firstFrameMs != null, null, { timeout: 20000 });
  const phone = await opened({ width: 390, height: 844 });
  await playing(phone.page);
  const sample = () => phone.page.evaluate(() => new Promise((resolve) => {
    const v = document.getElementById("pub-video");
    // One painted frame's media time, from the compositor: proof the picture advances.
    v.requestVideoFrameCallback((_now, meta) => resolve({ currentTime: v.currentTime, mediaTime: meta.mediaTime, frames: window.fsvPublic.player.framesDecoded() }));
  }));
  const first = await sample();
  await sleep(3000);
  const second = await sample();
  const layout = await phone.page.evaluate(() => {
    const box = (sel) => { const r = document.querySelector(sel).getBoundingClientRect(); return { top: r.top, bottom: r.bottom, left: r.left, width: r.width }; };
    const v = document.getElementById("pub-video");
    return {
      video: box("#pub-video"), caption: box(".caption"), size: [v.videoWidth, v.videoHeight],
      scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
      title: document.querySelector("h1").textContent, info: document.querySelector(".info").textContent,
      state: document.getElementById("pub-state").dataset.key, camera: document.getElementById("pub-cam").textContent,
      cameras: [...document.querySelectorAll(".cams .cam")].map((b) => b.dataset.ref),
      lang: document.documentElement.lang, missing: [...window.fsv.missing],
      msgHidden: document.getElementById("pub-msg").hidden,
      api: null,
    };
  });
  layout.api = await phone.page.evaluate(async () => (await fetch("/api/v1/alerts")).status);
  await phone.page.screenshot({ path: `${opts.shots}/public-phone.png`, fullPage: true });
  const desk = await opened({ width: 1440, height: 900 });
  await playing(desk.page);
  await sleep(500);
  await desk.page.screenshot({ path: `${opts.shots}/public-desktop.png` });
  const third = await opened({ width: 390, height: 844 });
  await third.page.waitForFunction(() => document.getElementById("pub-state").dataset.key === "player.refused", null, { timeout: 15000 });
  const full = await third.page.evaluate(() => ({ text: document.getElementById("pub-state").textContent, frame: document.getElementById("pub-msg").hidden ? null : document.getElementById("pub-msg").textContent, scrollWidth: document.documentElement.scrollWidth }));
  await third.page.screenshot({ path: `${opts.shots}/public-full-phone.png`, fullPage: true });
  // A seat frees up: the refused page tries again by itself and plays.
  await desk.context.close();
  const retryStarted = Date.now();
  await third.page.waitForFunction(() => window.fsvPublic.retries > 0 && window.fsvPublic.player.firstFrameMs != null, null, { timeout: 40000 });
  full.retriedAfterMs = Date.now() - retryStarted;
  full.msgHiddenAfter = await third.page.evaluate(() => document.getElementById("pub-msg").hidden);
  await third.context.close();
  // Revoked while the phone watches: the video ends mid-stream and the page says why.
  const revoked = await fetch(`${opts.url}/api/v1/public-links/${opts.linkId}`, { method: "DELETE", headers: { Authorization: `Bearer ${opts.token}` } });
  await phone.page.waitForFunction(() => window.fsvPublic.ended, null, { timeout: 10000 });
  const ended = await phone.page.evaluate(() => ({ key: document.getElementById("pub-state").dataset.key, text: document.getElementById("pub-state").textContent, src: document.getElementById("pub-video").getAttribute("src"), disabled: [...document.querySelectorAll(".cams .cam")].every((b) => b.disabled) }));
  await phone.page.screenshot({ path: `${opts.shots}/public-revoked-phone.png`, fullPage: true });
  const after = (await phone.page.reload()).status();
  await phone.context.close();
  return { status: phone.status, first, second, layout, full, revokedStatus: revoked.status, ended, after };
}

const browser = await openBrowser();
try {
  const errors = [];
  if (opts.mode === "public") {
    const result = await publicKitchen(browser, errors);
    console.log(JSON.stringify({ ok: true, ...result, errors }));
  } else {
    const page = await browser.newPage();
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.text().includes("Content Security Policy")) errors.push(m.text()); });
    const consoleErrors = [];
    page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
    await login(page);
    const modes = { live, replay, scope, glass, timeline, scrub };
    const result = await modes[opts.mode](page);
    console.log(JSON.stringify({ ok: true, ...result, errors, consoleErrors }));
  }
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
