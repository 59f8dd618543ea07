// Walks central's regulator pages in headless Chromium as the people who use them, and prints
// what each of them saw as one JSON line.
// Usage: node regulator_pages.mjs '{"url": ..., "users": {name: password}, "alertId": ...,
//   "photo": <JPEG path>, "shots": <screenshot folder>, "publicUrl": ...}'
import { chromium } from "playwright-core";

const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const opts = JSON.parse(process.argv[2]);
const problems = []; // page errors and alert() boxes: the test expects none

async function open(browser, who) {
  const context = await browser.newContext({ viewport: PHONE });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${who}: ${e}`));
  page.on("console", (m) => { if (m.text().includes("Content Security Policy")) problems.push(`${who}: ${m.text()}`); });
  page.on("dialog", async (d) => {
    if (d.type() !== "prompt") { problems.push(`${who}: ${d.type()} ${d.message()}`); return d.dismiss(); }
    // The workflow asks for a note, then the deadline in days.
    return d.accept(d.message().includes("Deadline") ? "3" : opts.requestNote);
  });
  return page;
}

async function login(page, username, password) {
  await page.goto(`${opts.url}/login`);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL("**/inbox"), page.click("#login button")]);
}

async function wrongThenRightLogin(page) {
  await page.goto(`${opts.url}/login`);
  await page.fill('input[name="username"]', "inspector-a");
  await page.fill('input[name="password"]', "not-the-password");
  await page.click("#login button");
  await page.waitForFunction(() => document.getElementById("error").textContent.trim() !== "");
  const wrong = { error: await page.textContent("#error"), path: new URL(page.url()).pathname };
  await page.fill('input[name="password"]', opts.users["inspector-a"]);
  await Promise.all([page.waitForURL("**/inbox"), page.click("#login button")]);
  await page.waitForFunction(() => document.getElementById("who").textContent !== "");
  return { wrong, landed: new URL(page.url()).pathname, who: await page.textContent("#who") };
}

// The inbox rows once the list has loaded ("More" hides when every alert is shown).
async function rows(page) {
  await page.waitForFunction(() => document.getElementById("more").hidden);
  return page.$$eval("#alerts tbody tr", (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
}

async function detail(page) {
  return page.evaluate(() => {
    const box = document.getElementById("detail");
    return {
      hidden: box.hidden,
      title: box.querySelector("h2")?.textContent ?? "",
      state: box.querySelector("p b")?.textContent ?? "",
      history: [...box.querySelectorAll("ol li")].map((li) => li.textContent),
      buttons: [...box.querySelectorAll("#act > button")].map((b) => b.textContent),
      evidence: [...box.querySelectorAll('a[href*="/evidence/"]')].map((a) => a.textContent),
      submitForm: box.querySelector("#act form") !== null,
    };
  });
}

async function waitState(page, state) {
  await page.waitForFunction((s) => document.querySelector("#detail p b")?.textContent === s, state);
}

async function snapshot(page) {
  const img = page.locator('#detail img[alt="snapshot"]');
  await img.waitFor();
  await page.waitForFunction(() => document.querySelector('#detail img[alt="snapshot"]').complete);
  return img.evaluate((el) => ({ width: el.naturalWidth, height: el.naturalHeight, shown: el.getBoundingClientRect().width }));
}

async function screenshots(page) {
  const layout = async () => page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
  }));
  await page.screenshot({ path: `${opts.shots}/inbox-phone.png`, fullPage: true });
  const phone = await layout();
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: `${opts.shots}/inbox-desktop.png`, fullPage: true });
  const desktop = await layout();
  await page.setViewportSize(PHONE);
  return { phone, desktop };
}

async function inspectorRequests(page) {
  const signIn = await wrongThenRightLogin(page);
  const list = await rows(page);
  await page.click("#alerts tbody tr");
  const image = await snapshot(page);
  const layout = await screenshots(page);
  await page.click("#act >> text=Acknowledge");
  await waitState(page, "acknowledged");
  await page.click("#act >> text=Request rectification");
  await waitState(page, "rectification_requested");
  return { signIn, list, image, layout, requested: await detail(page) };
}

async function staffSubmits(page) {
  await login(page, "staff-canteen-a", opts.users["staff-canteen-a"]);
  const list = await rows(page);
  await page.click("#alerts tbody tr");
  await waitState(page, "rectification_requested");
  const before = await detail(page);
  await page.fill('#act form textarea[name="note"]', opts.submitNote);
  await page.setInputFiles('#act form input[name="photos"]', opts.photo);
  await page.click("#act form button");
  await waitState(page, "rectification_submitted");
  return { list, before, after: await detail(page) };
}

async function inspectorCloses(page) {
  await page.reload();
  await rows(page);
  await page.click("#alerts tbody tr");
  await waitState(page, "rectification_submitted");
  const before = await detail(page);
  const photo = await page.evaluate(async () => {
    const href = document.querySelector('#detail a[href*="/evidence/"]').getAttribute("href");
    const resp = await fetch(href);
    return { status: resp.status, type: resp.headers.get("Content-Type"), bytes: (await resp.arrayBuffer()).byteLength };
  });
  await page.click("#act >> text=Close");
  await waitState(page, "closed");
  await page.waitForFunction(() => document.querySelector("#alerts tbody .state")?.textContent === "closed");
  return { before, photo, after: await detail(page), list: await rows(page) };
}

async function otherCounty(page) {
  await login(page, "inspector-b", opts.users["inspector-b"]);
  const list = await rows(page);
  await page.goto(`${opts.url}/inbox#alert=${opts.alertId}`); // the link a push opens
  await page.reload(); // a new hash alone does not load the page again
  await rows(page);
  await page.waitForFunction(() => !document.getElementById("detail").hidden);
  const detailText = await page.textContent("#detail");
  const direct = await page.evaluate(async (id) => (await fetch(`/api/v1/alerts/${id}`)).status, opts.alertId);
  const media = await page.evaluate(async (id) => (await fetch(`/api/v1/alerts/${id}/media/snapshot.jpg`)).status, opts.alertId);
  return { list, detailText, direct, media };
}

async function reports(page) {
  await page.goto(`${opts.url}/reports`);
  await page.waitForFunction(() => document.getElementById("who").textContent !== "");
  const today = new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10); // +08:00 date
  await page.fill('input[name="from"]', today);
  await page.fill('input[name="to"]', today);
  await page.click("#report button");
  await page.waitForFunction(() => document.querySelectorAll("#summary tr").length > 0);
  const figures = await page.$$eval("#summary tr", (trs) => Object.fromEntries(trs.map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent])));
  const csv = await page.getAttribute("#csv", "href");
  return { figures, caption: await page.textContent("#summary caption"), csv };
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
    cameras: [...document.querySelectorAll(".cams figure")].map((f) => f.textContent),
    text: document.body.textContent,
    inboxParts: document.querySelectorAll("#alerts, #detail, nav, #logout, img").length,
  }));
  const api = await page.evaluate(async () => (await fetch("/api/v1/alerts")).status);
  await context.close();
  return { status: resp.status(), ...seen, api };
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ARGS });
try {
  const started = Date.now();
  const inspector = await open(browser, "inspector-a");
  const requested = await inspectorRequests(inspector);
  const staff = await staffSubmits(await open(browser, "staff-canteen-a"));
  const closed = await inspectorCloses(inspector);
  const other = await otherCounty(await open(browser, "inspector-b"));
  const report = await reports(inspector);
  const pub = await publicView(browser);
  console.log(JSON.stringify({ ok: true, requested, staff, closed, other, report, pub, problems, ms: Date.now() - started }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e), problems }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
