// Headless Chromium signed in as a regulator opens each media URL it is given and reports
// whether the uploaded script ran (it sets a marker title and a window.name).
import { chromium } from "../browser/node_modules/playwright-core/index.mjs";

const opts = JSON.parse(process.argv[2]);
const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ARGS });
try {
  // The regulator's session (signed in before the probes throttled any login).
  const context = await browser.newContext({
    extraHTTPHeaders: { Authorization: `Bearer ${opts.token}` },
  });
  const results = [];
  for (const url of opts.urls) {
    const page = await context.newPage();
    let status = 0;
    let headers = {};
    try {
      const resp = await page.goto(opts.base + url, { waitUntil: "load", timeout: 15000 });
      status = resp ? resp.status() : 0;
      headers = resp ? resp.headers() : {};
    } catch (e) {
      // A download (Content-Disposition: attachment) aborts navigation: nothing rendered.
      status = -1;
    }
    await page.waitForTimeout(1500);
    let title = "";
    let marker = "";
    try {
      title = await page.title();
      marker = await page.evaluate(() => window.name);
    } catch (e) {
      title = "";
    }
    results.push({ url, status, headers, executed: title.includes("PWNED") || marker.includes("PWNED") });
    await page.close();
  }
  console.log(JSON.stringify({ ok: true, results }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
