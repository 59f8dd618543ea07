// Walks central's administration pages in headless Chromium as an administrator (users, the
// organisation tree, sites and their enrolment) and as people who may not use them, at wall,
// desktop and phone sizes; prints what they saw as one JSON line.
// Usage: node admin_pages.mjs '{"url": ..., "users": {name: password}, "shots": <folder>,
//   "newUser": {...}, "newSite": {...}}'
import { SIZES, downloadText, login as signIn, menu, openBrowser, settle } from "./pages.mjs";

const PHONE = SIZES.phone;
// Identifiers that must never reach a reader: roles, levels and types are shown in words.
const RAW_IDS = /\b(county_inspector|city_monitor|enterprise_staff|slaughterhouse|province|county|enterprise|online|offline|unknown)\b/g;
const opts = JSON.parse(process.argv[2]);
const problems = [];
let expected = null; // failed request URLs a step provokes on purpose
const audits = {};

async function open(browser, who, viewport = SIZES.desktop) {
  const context = await browser.newContext({ viewport, locale: "zh-CN", timezoneId: "Europe/Berlin", acceptDownloads: true });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${who}: ${e}`));
  page.on("console", (m) => {
    if (m.type() !== "error" && !m.text().includes("Content Security Policy")) return;
    const from = m.location().url || "";
    if (expected && m.text().startsWith("Failed to load resource") && expected.test(from)) return;
    problems.push(`${who} console: ${m.text()} @ ${from || page.url()}`);
  });
  page.on("dialog", async (d) => { problems.push(`${who}: ${d.type()} ${d.message()}`); await d.dismiss(); });
  return page;
}

// The page (or an open dialog) at each size: a screenshot, sideways overflow, the header's
// height, untranslated keys and raw identifiers in the visible text.
async function audit(page, who, name, sizes = ["wall", "desktop", "phone"]) {
  for (const size of sizes) {
    await page.setViewportSize(SIZES[size]);
    await settle(page); // charts and grids follow the new size
    await page.screenshot({ path: `${opts.shots}/${who}-${name}-${size}.png`, fullPage: size === "phone" });
    audits[`${who}/${name}/${size}`] = await page.evaluate((raw) => {
      const header = document.querySelector("header.top");
      const dialog = document.querySelector("dialog[open]");
      const text = (dialog || document.body).innerText;
      const box = dialog ? dialog.getBoundingClientRect() : null;
      return {
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        headerHeight: header ? header.getBoundingClientRect().height : 0,
        dialogInside: box ? box.left >= -1 && box.right <= window.innerWidth + 1 : null,
        missing: window.fsv ? [...window.fsv.missing] : [],
        placeholders: document.documentElement.innerHTML.includes("{{t:"),
        rawIds: [...new Set(text.match(new RegExp(raw, "g")) || [])],
        lang: document.documentElement.lang,
      };
    }, RAW_IDS.source);
  }
  await page.setViewportSize(SIZES.desktop);
}

const login = (page, username, password = opts.users[username]) =>
  signIn(page, opts.url, username, password, { named: true });

const fieldErrors = (page, form) => page.$$eval(`${form} [data-field]`, (ls) => Object.fromEntries(
  ls.filter((l) => l.querySelector(".field-error").textContent).map((l) => [l.dataset.field, l.querySelector(".field-error").textContent])));

async function chooseByText(page, selector, text) {
  const value = await page.$eval(selector, (s, t) => [...s.options].find((o) => o.textContent.includes(t))?.value ?? "", text);
  if (!value) throw new Error(`no option with "${text}" in ${selector}`);
  await page.selectOption(selector, value);
}

async function users(page) {
  await page.goto(`${opts.url}/admin`);
  await page.waitForURL("**/admin/users");
  await page.waitForFunction(() => window.fsvAdminUsers && window.fsvAdminUsers.ready);
  const seen = {
    menu: await menu(page),
    tabs: await page.$$eval(".admin-tabs a", (as) => as.map((a) => a.textContent)),
    roles: await page.$$eval("#f-role option", (os) => os.map((o) => o.textContent)),
    rows: await page.$$eval("#list tbody tr", (trs) => trs.map((tr) => [...tr.cells].slice(0, 5).map((c) => c.textContent))),
  };
  await audit(page, "admin", "users");
  // Search narrows the list.
  await page.fill("#q", "inspector");
  seen.searched = await page.$$eval("#list tbody tr td:first-child", (tds) => tds.map((t) => t.textContent));
  await page.fill("#q", "");
  // Create a user: first with a short password and no user name, then right.
  const u = opts.newUser;
  await page.click("#new");
  await page.waitForSelector("#editor[open]");
  await page.selectOption('#user-form [name="role"]', "county_inspector");
  seen.orgChoices = await page.$$eval('#user-form [name="org_id"] option', (os) => os.map((o) => o.textContent));
  await page.fill('#user-form [name="password"]', "short1");
  await page.click("#save");
  seen.pageChecks = await fieldErrors(page, "#user-form");
  await audit(page, "admin", "user-form", ["desktop", "phone"]);
  await page.fill('#user-form [name="username"]', u.username);
  await page.fill('#user-form [name="display_name"]', u.displayName);
  await chooseByText(page, '#user-form [name="org_id"]', u.county);
  // A password the page accepts but the server refuses (only letters): shown by its field.
  await page.fill('#user-form [name="password"]', "onlyletters");
  expected = /\/api\/v1\/users$/;
  await page.click("#save");
  await page.waitForFunction(() => document.querySelector('#user-form [data-field="password"] .field-error').textContent !== "");
  expected = null;
  seen.serverChecks = await fieldErrors(page, "#user-form");
  await page.fill('#user-form [name="password"]', u.password);
  await page.click("#save");
  await page.waitForFunction(() => !document.getElementById("editor").open);
  await page.waitForFunction((name) => [...document.querySelectorAll("#list tbody td:first-child")].some((td) => td.textContent === name), u.username);
  seen.created = await page.$eval(`#list tbody tr:has(td:text-is("${u.username}"))`, (tr) => [...tr.cells].slice(0, 5).map((c) => c.textContent));
  // The administrator's own row offers no disable button.
  seen.selfRow = await page.$eval('#list tbody tr:has(td:text-is("admin"))', (tr) => tr.querySelector(".row-actions").textContent);
  return seen;
}

async function orgs(page) {
  await page.goto(`${opts.url}/admin/orgs`);
  await page.waitForFunction(() => window.fsvAdminOrgs && window.fsvAdminOrgs.ready);
  await page.click('.tree-row:has-text("沙坡头区")');
  await page.waitForFunction(() => !document.getElementById("node").hidden);
  const read = () => page.evaluate(() => ({
    tree: [...document.querySelectorAll("#tree .tree-row")].map((r) => [r.querySelector(".name").textContent, r.querySelector(".level").textContent, r.querySelector(".sites")?.textContent ?? ""]),
    name: document.getElementById("node-name").textContent,
    level: document.getElementById("node-level").textContent,
    addChild: document.getElementById("add-child").textContent,
    sites: [...document.querySelectorAll("#node-sites tbody tr")].map((tr) => [...tr.cells].map((c) => c.textContent)),
  }));
  const county = await read();
  await audit(page, "admin", "orgs");
  // Add an enterprise under the county; the form asks for its type first.
  await page.click("#add-child");
  await page.waitForSelector("#org-editor[open]");
  await page.fill('#org-form [name="name"]', opts.newOrg);
  await page.click('#org-form button[type="submit"]');
  const orgChecks = await fieldErrors(page, "#org-form");
  await page.selectOption('#org-form [name="enterprise_type"]', "canteen");
  await page.click('#org-form button[type="submit"]');
  await page.waitForFunction(() => !document.getElementById("org-editor").open);
  await page.waitForFunction((n) => document.getElementById("node-name").textContent === n, opts.newOrg);
  const created = await read();
  // Move it to the other county.
  await page.click("#move");
  await page.waitForSelector("#mover[open]");
  const parents = await page.$$eval('#move-form [name="parent_id"] option', (os) => os.map((o) => o.textContent));
  await audit(page, "admin", "org-move", ["phone"]);
  await chooseByText(page, '#move-form [name="parent_id"]', "中宁县");
  const loads = await page.evaluate(() => window.fsvAdminOrgs.loads);
  await page.click('#move-form button[type="submit"]');
  await page.waitForFunction((n) => window.fsvAdminOrgs.loads > n, loads);
  const moved = await page.evaluate(() => document.getElementById("node-path").textContent);
  return { county, orgChecks, created, parents, moved };
}

async function sites(page) {
  await page.goto(`${opts.url}/admin/sites`);
  await page.waitForFunction(() => window.fsvAdminSites && window.fsvAdminSites.ready);
  const seen = {
    rows: await page.$$eval("#list tbody tr", (trs) => trs.map((tr) => [...tr.cells].slice(0, 4).map((c) => c.textContent))),
    count: await page.textContent("#count"),
  };
  await audit(page, "admin", "sites");
  const s = opts.newSite;
  await page.click("#new");
  await page.waitForSelector("#editor[open]");
  await chooseByText(page, '#site-form [name="org_id"]', s.enterprise);
  await page.fill('#site-form [name="site_id"]', "Bad Site");
  await page.click('#site-form button[type="submit"]');
  seen.pageChecks = await fieldErrors(page, "#site-form");
  // A site id already taken: the server's refusal lands next to the field.
  await page.fill('#site-form [name="site_id"]', "demo-canteen-b");
  expected = /\/api\/v1\/sites$/;
  await page.click('#site-form button[type="submit"]');
  await page.waitForFunction(() => document.querySelector('#site-form [data-field="site_id"] .field-error').textContent !== "");
  expected = null;
  seen.serverChecks = await fieldErrors(page, "#site-form");
  await page.fill('#site-form [name="site_id"]', s.id);
  await page.fill('#site-form [name="name"]', s.name);
  await page.click('#site-form button[type="submit"]');
  await page.waitForSelector("#bundle[open]");
  seen.bundle = await page.evaluate(() => ({
    title: document.getElementById("bundle-title").textContent,
    user: document.getElementById("b-user").textContent,
    password: document.getElementById("b-password").textContent,
    files: [...document.querySelectorAll("#b-files button")].map((b) => b.dataset.file),
  }));
  const [download] = await Promise.all([page.waitForEvent("download"), page.click(`#b-files button[data-file="${s.id}.credentials.yaml"]`)]);
  seen.downloaded = { name: download.suggestedFilename(), text: await downloadText(download) };
  await audit(page, "admin", "site-bundle", ["desktop", "phone"]);
  await page.click('#bundle button[value="done"]');
  await page.waitForFunction(() => !document.getElementById("bundle").open);
  seen.secretGone = await page.evaluate((pw) => !document.body.innerHTML.includes(pw), seen.bundle.password);
  seen.created = await page.$eval(`#list tbody tr[data-id="${s.id}"]`, (tr) => [...tr.cells].slice(0, 4).map((c) => c.textContent));
  // New credentials for the new site, through the page's own confirm dialog.
  await page.click(`#list tbody tr[data-id="${s.id}"] button[data-act="rotate"]`);
  await page.waitForSelector("#confirm[open]");
  seen.rotateQuestion = await page.textContent("#confirm-text");
  await page.click("#confirm-ok");
  await page.waitForSelector("#bundle[open]");
  seen.rotated = await page.textContent("#b-password");
  await page.click('#bundle button[value="done"]');
  // The organisation filter (from the tree's "manage sites" link) shows one county.
  await page.goto(`${opts.url}/admin/sites#org=${opts.countyB}`);
  await page.reload();
  await page.waitForFunction(() => window.fsvAdminSites && window.fsvAdminSites.ready);
  seen.countyB = await page.$$eval("#list tbody tr", (trs) => trs.map((tr) => tr.dataset.id));
  return seen;
}

async function english(page) {
  await page.goto(`${opts.url}/admin/users`);
  await page.waitForFunction(() => window.fsvAdminUsers && window.fsvAdminUsers.ready);
  await Promise.all([page.waitForEvent("load"), page.click("#lang")]);
  await page.waitForFunction(() => window.fsvAdminUsers && window.fsvAdminUsers.ready);
  const seen = await page.evaluate(() => ({
    lang: document.documentElement.lang,
    tabs: [...document.querySelectorAll(".admin-tabs a")].map((a) => a.textContent),
    missing: [...window.fsv.missing],
  }));
  for (const tab of ["users", "orgs", "sites"]) {
    await page.goto(`${opts.url}/admin/${tab}`);
    await page.waitForFunction(() => (window.fsvAdminUsers || window.fsvAdminOrgs || window.fsvAdminSites || {}).ready);
    await audit(page, "admin", `${tab}-en`, ["desktop", "phone"]);
  }
  await Promise.all([page.waitForEvent("load"), page.click("#lang")]);
  seen.back = await page.evaluate(() => document.documentElement.lang);
  return seen;
}

// People without the right: no menu entry, the page says so, the API refuses.
async function refused(browser, username) {
  const page = await open(browser, username);
  await login(page, username);
  const links = await menu(page);
  expected = /\/admin\/users$|\/api\/v1\/users$|\/credentials$/;
  const resp = await page.goto(`${opts.url}/admin/users`);
  await page.waitForFunction(() => document.getElementById("who").textContent !== "");
  const seen = {
    menu: links,
    status: resp.status(),
    text: await page.textContent("main"),
    api: await page.evaluate(async () => (await fetch("/api/v1/users")).status),
    sites: await page.evaluate(async () => (await fetch("/api/v1/sites/demo-canteen-a/credentials", { method: "POST", headers: { "X-CSRF-Token": window.fsv.csrf } })).status),
  };
  expected = null;
  await audit(page, username, "admin-refused", ["phone"]);
  await page.context().close();
  return seen;
}

// The new user signs in with the password the administrator gave; the administrator then
// disables the account through the page, and the new user's open session ends.
async function newUserSignsIn(browser, admin) {
  const page = await open(browser, opts.newUser.username, PHONE);
  await login(page, opts.newUser.username, opts.newUser.password);
  const seen = { who: await page.getAttribute("#who", "title"), menu: await menu(page) };
  await admin.goto(`${opts.url}/admin/users`);
  await admin.waitForFunction(() => window.fsvAdminUsers && window.fsvAdminUsers.ready);
  const row = `#list tbody tr:has(td:text-is("${opts.newUser.username}"))`;
  await admin.click(`${row} button[data-act="toggle"]`);
  await admin.waitForSelector("#confirm[open]");
  seen.question = await admin.textContent("#confirm-text");
  await admin.click("#confirm-ok");
  await admin.waitForSelector(`${row}.off`);
  seen.row = await admin.$eval(row, (tr) => [tr.cells[4].textContent, tr.querySelector('[data-act="toggle"]').textContent]);
  expected = /\/api\/v1\/auth\/me$/;
  seen.after = await page.evaluate(async () => (await fetch("/api/v1/auth/me")).status);
  // The page's update socket is closed with 4401 and the page goes to the login form; the
  // context is closed once it is there, never in the middle of that navigation.
  await page.waitForURL("**/login");
  seen.landed = new URL(page.url()).pathname;
  expected = null;
  await page.context().close();
  return seen;
}

const browser = await openBrowser();
try {
  const started = Date.now();
  const admin = await open(browser, "admin");
  await login(admin, "admin");
  const u = await users(admin);
  const o = await orgs(admin);
  const s = await sites(admin);
  const en = await english(admin);
  const fresh = await newUserSignsIn(browser, admin);
  const inspector = await refused(browser, "inspector-a");
  const staff = await refused(browser, "staff-canteen-a");
  console.log(JSON.stringify({ ok: true, users: u, orgs: o, sites: s, en, fresh, inspector, staff, audits, problems, ms: Date.now() - started }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e), problems, audits }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
