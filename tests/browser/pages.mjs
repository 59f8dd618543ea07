// Shared by the Playwright scripts of this folder: the browser, page sizes and the sign-in.
import { chromium } from "playwright-core";

export const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  // Live and replay video start without a click (video_pages.mjs).
  "--autoplay-policy=no-user-gesture-required",
];
export const SIZES = { wall: { width: 1920, height: 1080 }, desktop: { width: 1440, height: 900 }, phone: { width: 390, height: 844 } };

// The suite's one Chromium (chromium_server.mjs) when FSV_CHROMIUM_WS names it, else a new one.
// Closing what this returns closes the contexts the script opened, not a shared browser.
export async function openBrowser() {
  const shared = process.env.FSV_CHROMIUM_WS;
  if (shared) return chromium.connect(shared);
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: ARGS });
}

// Signs `username` in on the login page and waits for `landing`; with `named`, also for the
// header to name the signed-in person.
export async function login(page, url, username, password, { landing = "**/inbox", named = false } = {}) {
  await page.goto(`${url}/login`);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL(landing), page.click("#login button")]);
  if (named) await page.waitForFunction(() => document.getElementById("who").textContent !== "");
}

// The hrefs of the main menu.
export const menu = (page) => page.$$eval("nav.menu a", (as) => as.map((a) => a.getAttribute("href")));

// The text of a finished download (read through the browser's connection: a shared browser
// keeps the file on its side).
export async function downloadText(download) {
  const chunks = [];
  for await (const chunk of await download.createReadStream()) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

// After setViewportSize: two animation frames, by which the page has run its resize handlers
// and ResizeObservers (charts, grids, the timeline) and laid itself out at the new size.
export async function settle(page) {
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
}
