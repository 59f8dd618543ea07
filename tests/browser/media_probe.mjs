// Opens hostile "media" in headless Chromium as a signed-in regulator and reports whether any
// script ran: each file's script would set the title to PWNED and fetch /api/v1/auth/me.
// Usage: node media_probe.mjs '{"url": ..., "username": ..., "password": ..., "paths": [...]}'
import { openBrowser } from "./pages.mjs";

const opts = JSON.parse(process.argv[2]);

async function visit(context, path) {
  const page = await context.newPage();
  const stolen = [];
  const violations = [];
  page.on("request", (r) => { if (r.url().includes("/api/v1/auth/me")) stolen.push(r.url()); });
  page.on("console", (m) => { if (m.text().includes("Content Security Policy")) violations.push(m.text()); });
  const download = page.waitForEvent("download", { timeout: 5000 }).then((d) => d.suggestedFilename()).catch(() => null);
  let status = null, headers = {}, error = null;
  try {
    const resp = await page.goto(`${opts.url}${path}`, { waitUntil: "load" });
    status = resp ? resp.status() : null;
    headers = resp ? resp.headers() : {};
  } catch (e) {
    error = String(e).split("\n")[0]; // an attachment aborts the navigation: it downloads
  }
  await page.waitForTimeout(1500); // room for any script (and its fetch) to run
  const title = await page.title().catch(() => "");
  const inFrame = await framed(context, path);
  const seen = { path, status, headers, error, title, stolen, violations, download: await download, inFrame };
  await page.close();
  return seen;
}

// The same file inside a frame of a central page: framing is refused, nothing runs.
async function framed(context, path) {
  const page = await context.newPage();
  const stolen = [];
  page.on("request", (r) => {
    if (r.url().includes("/api/v1/auth/me") && r.frame() !== page.mainFrame()) stolen.push(r.url());
  });
  await page.goto(`${opts.url}/login`);
  await page.evaluate((src) => new Promise((done) => {
    const f = document.createElement("iframe");
    f.src = src; f.onload = done; f.onerror = done; document.body.appendChild(f); setTimeout(done, 3000);
  }), `${opts.url}${path}`).catch(() => {});
  await page.waitForTimeout(1000);
  const frameTitles = await Promise.all(page.frames().slice(1).map((f) => f.title().catch(() => "")));
  await page.close();
  return { stolen, frameTitles };
}

const browser = await openBrowser();
try {
  const context = await browser.newContext({ acceptDownloads: true });
  const login = await context.request.post(`${opts.url}/api/v1/auth/login`, {
    data: { username: opts.username, password: opts.password },
  });
  const me = await context.request.get(`${opts.url}/api/v1/auth/me`);
  // Each file on its own pages, all at once: the waits for a script or a download overlap.
  const visits = await Promise.all(opts.paths.map((path) => visit(context, path)));
  console.log(JSON.stringify({ ok: true, login: login.status(), me: me.status(), visits }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
