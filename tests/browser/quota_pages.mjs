// The replay page as one enterprise user whose video quotas are used up: a second replay and
// an export are refused, and the page says so in its language.
import { openBrowser } from "./pages.mjs";

const opts = JSON.parse(process.argv[2]);
const problems = [];

async function replayPage(context, t) {
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`${opts.base}/replay#site=${opts.site}&camera=${opts.camera}&t=${t}`);
  await page.waitForFunction(() => window.fsvReplay && window.fsvReplay.ready, null, { timeout: 90000 });
  return page;
}

const browser = await openBrowser();
try {
  const context = await browser.newContext();
  const login = await context.request.post(`${opts.base}/api/v1/auth/login`, {
    data: { username: opts.username, password: opts.password, kind: "cookie" },
  });
  if (login.status() !== 200) throw new Error(`login ${login.status()}`);
  const t = Math.floor(Date.now() / 1000) - 600;
  // The first replay takes the user's only replay slot (it waits for the edge).
  const first = await replayPage(context, t);
  const second = await replayPage(context, t);
  await second.waitForFunction((text) => document.getElementById("state").textContent.includes(text),
    opts.viewersText, { timeout: 30000 });
  const replayState = await second.evaluate(() => document.getElementById("state").textContent);
  await second.click("#export");
  await second.waitForFunction((text) => document.getElementById("export-state").textContent.includes(text),
    opts.exportsText, { timeout: 30000 });
  const exportState = await second.evaluate(() => document.getElementById("export-state").textContent);
  const firstState = await first.evaluate(() => document.getElementById("state").textContent);
  console.log(JSON.stringify({ ok: true, replayState, exportState, firstState, problems }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e), problems }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
