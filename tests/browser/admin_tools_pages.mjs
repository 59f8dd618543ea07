// Walks the admin tools in headless Chromium: the admin adds a webhook and tests it, a canteen
// manager publishes a camera and opens the QR poster, the admin filters the audit log and
// exports it. Each page is audited at wall, desktop and phone sizes; one JSON line results.
// Usage: node admin_tools_pages.mjs '{"url", "users": {name: password}, "hookUrl", "shots"}'
import { SIZES, login as signIn, menu, openBrowser, settle } from "./pages.mjs";

const RAW_IDS = /\b(webhook_create|webhook_test|webhook_update|public_link_create|login_failed|no_chef_hat|kitchen_prep|enterprise_staff|county_inspector)\b/g;
const opts = JSON.parse(process.argv[2]);
const problems = []; // page errors, console errors (CSP included) and dialogs: none expected
const audits = {};
// A refusal a step provokes on purpose logs its failed request; that one, nothing else.
let expected = null;

async function open(browser, who, viewport = SIZES.desktop) {
  const context = await browser.newContext({ viewport, locale: "zh-CN", timezoneId: "Europe/Berlin" });
  const watch = (page) => {
    page.on("pageerror", (e) => problems.push(`${who}: ${e}`));
    page.on("console", (m) => {
      if (m.type() !== "error") return;
      const from = m.location().url || "";
      if (expected && m.text().startsWith("Failed to load resource") && expected.test(from)) return;
      problems.push(`${who} console: ${m.text()} @ ${from || page.url()}`);
    });
    page.on("dialog", async (d) => { problems.push(`${who}: ${d.type()} ${d.message()}`); await d.dismiss(); });
  };
  context.on("page", watch);
  const page = await context.newPage();
  return page;
}

const login = (page, username) => signIn(page, opts.url, username, opts.users[username]);

// Screenshot and layout checks of the page at each size (the phone's full page).
async function audit(page, name) {
  for (const size of ["wall", "desktop", "phone"]) {
    await page.setViewportSize(SIZES[size]);
    await settle(page); // charts and grids follow the new size
    await page.screenshot({ path: `${opts.shots}/${name}-${size}.png`, fullPage: size === "phone" });
    audits[`${name}/${size}`] = await page.evaluate((raw) => {
      const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
      const squeezed = [...document.querySelectorAll("td, th, h1, h2, nav.menu a, label, .badge")]
        .filter((el) => visible(el) && el.textContent.trim().length > 3)
        .filter((el) => el.getBoundingClientRect().width < 2.5 * parseFloat(getComputedStyle(el).fontSize))
        .map((el) => el.textContent.trim().slice(0, 30));
      const header = document.querySelector("header.top");
      return {
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        headerHeight: header ? header.getBoundingClientRect().height : 0,
        squeezed,
        missing: window.fsv ? [...window.fsv.missing] : [],
        placeholders: document.documentElement.innerHTML.includes("{{t:"),
        rawIds: [...new Set(document.body.innerText.match(new RegExp(raw, "g")) || [])],
        // The open administration tab lies within its (sideways scrolling) bar.
        tabShown: (() => {
          const tab = document.querySelector("nav.admin-tabs a.active");
          if (!tab) return null;
          const a = tab.getBoundingClientRect(), b = tab.parentElement.getBoundingClientRect();
          return a.left >= b.left - 1 && a.right <= b.right + 1;
        })(),
        lang: document.documentElement.lang,
      };
    }, RAW_IDS.source);
  }
  await page.setViewportSize(SIZES.desktop);
}

const tabs = (page) => page.$$eval("nav.admin-tabs a", (as) => as.map((a) => a.getAttribute("href")));

async function webhooks(page) {
  await login(page, "admin");
  await page.goto(`${opts.url}/admin/webhooks`);
  await page.waitForFunction(() => window.fsvWebhooks && window.fsvWebhooks.ready);
  const empty = await page.isVisible("#empty");
  await audit(page, "admin-webhooks-empty");
  const orgOptions = await page.$$eval("#w-org option", (os) => os.map((o) => o.textContent.trim()));
  await page.selectOption("#w-org", { label: orgOptions.find((o) => o.startsWith("中卫市")) });
  await page.selectOption("#w-format", "json");
  const generateShown = await page.isVisible("#w-generate");
  const secretShown = await page.isVisible("#w-secret");
  // A private address the admin's allow-list does not name is refused, in words.
  await page.fill("#w-url", "https://10.1.2.3/hook");
  expected = /\/api\/v1\/webhooks$/;
  await page.click("#w-submit");
  await page.waitForFunction(() => document.getElementById("add-error").textContent.trim() !== "");
  expected = null;
  const refused = await page.textContent("#add-error");
  await page.fill("#w-url", opts.hookUrl);
  await page.check('#w-kinds input[value="no_chef_hat"]');
  await page.check('#w-kinds input[value="smoking"]');
  await page.selectOption("#w-severity", "warning");
  await page.click("#w-submit");
  await page.waitForSelector("#secret-once:not([hidden])");
  const secret = (await page.textContent("#secret-value")).trim();
  await page.waitForSelector("#hooks tbody tr");
  await page.click('#hooks tbody tr button[data-action="test"]');
  await page.waitForFunction(() => /送达|失败/.test(document.querySelector("#hooks .result").textContent));
  const testResult = await page.textContent("#hooks .result");
  await audit(page, "admin-webhooks");
  await page.click("#secret-done");
  const secretGone = await page.evaluate(() => document.getElementById("secret-once").hidden && document.getElementById("secret-value").textContent === "");
  const row = await page.$eval("#hooks tbody tr", (tr) => ({ cells: [...tr.cells].map((c) => c.innerText.trim()) }));
  const loads = await page.evaluate(() => window.fsvWebhooks.loads);
  await page.click('#hooks tbody tr button[data-action="pause"]');
  await page.waitForFunction((n) => window.fsvWebhooks.loads > n, loads);
  const paused = await page.$eval("#hooks tbody tr .badge", (b) => b.textContent);
  // After a reload the key is nowhere on the page.
  await page.reload();
  await page.waitForFunction(() => window.fsvWebhooks && window.fsvWebhooks.ready);
  const secretAfterReload = (await page.content()).includes(secret);
  return { empty, orgOptions, generateShown, secretShown, refused, secret, testResult, secretGone, row, paused, secretAfterReload, menu: await menu(page), tabs: await tabs(page) };
}

async function links(browser) {
  const page = await open(browser, "staff-canteen-a");
  await login(page, "staff-canteen-a");
  await page.goto(`${opts.url}/admin/links`);
  await page.waitForFunction(() => window.fsvLinks && window.fsvLinks.ready);
  const canteens = await page.$$eval("#l-org option", (os) => os.map((o) => o.textContent));
  const cameras = await page.$$eval("#l-cameras label", (ls) => ls.map((l) => l.textContent.trim()));
  await audit(page, "staff-links-empty");
  // Nothing ticked: refused in words, nothing sent.
  await page.click("#l-submit");
  const noCamera = await page.textContent("#add-error");
  await page.check("#l-cameras input");
  await page.fill("#l-label", "校门口海报");
  const expiry = await page.evaluate(() => fsv.date(Date.now() / 1000 + 30 * 86400));
  await page.fill("#l-expires", expiry);
  await page.fill("#l-viewers", "50");
  await page.click("#l-submit");
  await page.waitForSelector("#links tbody tr");
  await page.waitForSelector("#link-once:not([hidden])");
  // The address, its QR code and poster are offered once, beside the form; the row keeps none.
  const row = await page.$eval("#links tbody tr", (tr) => ({ cells: [...tr.cells].map((c) => c.innerText.trim()), rowUrl: tr.querySelector("a.public-url") !== null, rowPoster: tr.querySelector('[data-action="poster"]') !== null, url: document.getElementById("once-url").href, once: document.getElementById("link-once").innerText }));
  await audit(page, "staff-links");
  const [poster] = await Promise.all([page.context().waitForEvent("page"), page.click('#link-once [data-action="poster"]')]);
  await poster.waitForLoadState("load");
  await poster.waitForFunction(() => window.fsv && window.fsv.user);
  const sheet = await poster.evaluate(() => ({
    name: document.getElementById("poster-name").textContent,
    call: document.querySelector(".sheet .call").textContent,
    url: document.getElementById("poster-url").textContent,
    svg: document.querySelectorAll("#qr svg path").length,
    qrWidth: Math.round(document.querySelector("#qr svg").getBoundingClientRect().width),
    // The code fills its box: the drawn modules span all but the quiet zone.
    qrFill: document.querySelector("#qr svg path").getBoundingClientRect().width / document.querySelector("#qr svg").getBoundingClientRect().width,
    text: document.getElementById("sheet").innerText,
  }));
  await audit(poster, "staff-poster");
  // Printed: the sheet alone (no header, no buttons), on one A4 page.
  await poster.emulateMedia({ media: "print" });
  await poster.setViewportSize({ width: 794, height: 1123 });
  await poster.screenshot({ path: `${opts.shots}/staff-poster-print.png` });
  const printed = await poster.evaluate(() => ({
    header: getComputedStyle(document.querySelector("header.top")).display,
    tools: getComputedStyle(document.querySelector(".poster-tools")).display,
    sheetWidth: Math.round(document.getElementById("sheet").getBoundingClientRect().width),
  }));
  const pdf = await poster.pdf({ format: "A4", printBackground: true, preferCSSPageSize: true });
  printed.pages = (pdf.toString("latin1").match(/\/Type\s*\/Page[^s]/g) || []).length;
  await poster.emulateMedia({ media: "screen" });
  await poster.close();
  // Done: the address leaves the page, and a reload brings it back nowhere.
  await page.click("#once-done");
  row.onceHidden = await page.$eval("#link-once", (box) => box.hidden && !box.innerHTML.includes("/p/"));
  await page.reload();
  await page.waitForFunction(() => window.fsvLinks && window.fsvLinks.ready);
  row.urlAfterReload = (await page.content()).includes(row.url);
  const staffMenu = await menu(page);
  const staffTabs = await tabs(page);
  await page.context().close();
  return { canteens, cameras, noCamera, expiry, row, sheet, printed, menu: staffMenu, tabs: staffTabs };
}

async function auditLog(page) {
  await page.goto(`${opts.url}/admin/audit`);
  await page.waitForFunction(() => window.fsvAudit && window.fsvAudit.ready);
  const first = await page.$$eval("#log tbody tr", (trs) => trs.map((tr) => tr.dataset.action));
  await audit(page, "admin-audit");
  // Filter: the canteen manager's link, by user and words.
  await page.fill("#a-actor", "staff-canteen-a");
  await page.fill("#a-text", "cam1");
  let loads = await page.evaluate(() => window.fsvAudit.loads);
  await page.click("#a-apply");
  await page.waitForFunction((n) => window.fsvAudit.loads > n, loads);
  const byActor = await page.$$eval("#log tbody tr", (trs) => trs.map((tr) => ({ action: tr.dataset.action, cells: [...tr.cells].map((c) => c.innerText.trim()) })));
  // Filter: the webhook's history, by action, today only (site days).
  await page.fill("#a-actor", "");
  await page.fill("#a-text", "");
  await page.selectOption("#a-action", "webhook_test");
  loads = await page.evaluate(() => window.fsvAudit.loads);
  await page.click("#a-apply");
  await page.waitForFunction((n) => window.fsvAudit.loads > n, loads);
  const byAction = await page.$$eval("#log tbody tr", (trs) => trs.map((tr) => tr.dataset.action));
  const csvHref = await page.getAttribute("#csv", "href");
  const csv = await page.evaluate(async (href) => { const r = await fetch(href); return { status: r.status, type: r.headers.get("Content-Type"), text: await r.text() }; }, csvHref);
  await audit(page, "admin-audit-filtered");
  // A day with nothing in it: the empty state.
  await page.fill("#a-from", "2020-01-01");
  await page.fill("#a-to", "2020-01-02");
  loads = await page.evaluate(() => window.fsvAudit.loads);
  await page.click("#a-apply");
  await page.waitForFunction((n) => window.fsvAudit.loads > n, loads);
  const emptyShown = await page.isVisible("#empty");
  // English on request, and back.
  await Promise.all([page.waitForEvent("load"), page.click("#lang")]);
  await page.waitForFunction(() => window.fsvAudit && window.fsvAudit.ready);
  const en = await page.evaluate(() => ({ lang: document.documentElement.lang, title: document.querySelector("h1").textContent, options: [...document.querySelectorAll("#a-action option")].slice(1, 4).map((o) => o.textContent), missing: [...window.fsv.missing] }));
  await audit(page, "admin-audit-en");
  await Promise.all([page.waitForEvent("load"), page.click("#lang")]);
  return { first, byActor, byAction, csvHref, csv, emptyShown, en };
}

const browser = await openBrowser();
try {
  const admin = await open(browser, "admin");
  const hooks = await webhooks(admin);
  const link = await links(browser);
  const log = await auditLog(admin);
  console.log(JSON.stringify({ ok: true, hooks, link, log, audits, problems }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e), problems, audits }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
