// Labels alert frames in the labelling page as an inspector does, with mouse and keys, at
// desktop, wall and phone sizes; prints what it saw as one JSON line.
// Usage: node label_pages.mjs '{"url": ..., "user": ..., "password": ..., "shots": <folder>,
//   "count": <frames to label>}'
import { SIZES, login, openBrowser } from "./pages.mjs";

const opts = JSON.parse(process.argv[2]);
const problems = [];
const audits = {};

async function audit(page, name) {
  for (const [size, viewport] of Object.entries(SIZES)) {
    await page.setViewportSize(viewport);
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${opts.shots}/label-${name}-${size}.png`, fullPage: size === "phone" });
    audits[`${name}/${size}`] = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      missing: [...window.fsv.missing],
      placeholders: document.documentElement.innerHTML.includes("{{t:"),
      lang: document.documentElement.lang,
      stage: document.getElementById("stage").getBoundingClientRect().width,
    }));
  }
  await page.setViewportSize(SIZES.desktop);
  await page.waitForTimeout(200);
}

// Drag on the image from (x1, y1) to (x2, y2), relative to the shown image.
async function drag(page, x1, y1, x2, y2) {
  await page.evaluate(() => document.getElementById("stage").scrollIntoView({ block: "end" }));
  const r = await page.locator("#lab-svg").boundingBox();
  await page.mouse.move(r.x + x1 * r.width, r.y + y1 * r.height);
  await page.mouse.down();
  await page.mouse.move(r.x + ((x1 + x2) / 2) * r.width, r.y + ((y1 + y2) / 2) * r.height, { steps: 3 });
  await page.mouse.move(r.x + x2 * r.width, r.y + y2 * r.height, { steps: 3 });
  await page.mouse.up();
}

const state = (page) => page.evaluate(() => ({
  index: window.lab.index, id: window.lab.items[window.lab.index]?.id, boxes: window.lab.boxes.map((b) => ({ ...b })),
  selected: window.lab.selected, verdict: window.lab.verdict, count: window.lab.items.length,
  status: document.getElementById("lab-status").textContent,
}));

async function main() {
  const browser = await openBrowser();
  const context = await browser.newContext({ viewport: SIZES.desktop, locale: "zh-CN", hasTouch: false });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${e}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("dialog", async (d) => { problems.push(`${d.type()} ${d.message()}`); await d.dismiss(); });
  await login(page, opts.url, opts.user, opts.password);
  if (opts.mode === "queue") return labelQueue(browser, page);
  // The alert detail links to the labelling page.
  await page.waitForSelector(".alert-item");
  await page.click(".alert-item");
  await page.waitForSelector("a.label-link");
  const linkText = await page.textContent("a.label-link");
  await Promise.all([page.waitForURL("**/label#alert=*"), page.click("a.label-link")]);
  await page.waitForSelector("body[data-ready='1']");
  await page.waitForFunction(() => document.getElementById("lab-img").complete);
  const first = await state(page);
  const fromLink = page.url();
  await audit(page, "first");

  const seen = { linkText, fromLink, first, steps: [] };
  // Frame 1: the edge's box stays, one more drawn with class 2, moved, then one drawn by
  // mistake and deleted with the key; true.
  await page.keyboard.press("2");
  await drag(page, 0.1, 0.1, 0.3, 0.5);
  const drawn = await state(page);
  await drag(page, 0.2, 0.3, 0.25, 0.35); // inside the new box: moves it by (0.05, 0.05)
  const moved = await state(page);
  await drag(page, 0.8, 0.05, 0.95, 0.15);
  await page.keyboard.press("Delete");
  const deleted = await state(page);
  await page.keyboard.press("t");
  await page.keyboard.press("s");
  await page.waitForFunction((i) => window.lab.index !== i, first.index);
  seen.steps.push({ drawn, moved, deleted });
  await page.waitForTimeout(200);
  // The rest: alternately a false alarm without boxes (detections deleted with J and Delete)
  // and a true one with a box drawn on a phone-sized screen.
  for (let n = 1; n < opts.count; n += 1) {
    const before = await state(page);
    if (n % 2 === 1) {
      while ((await state(page)).boxes.length) {
        await page.keyboard.press("j");
        await page.keyboard.press("Delete");
      }
      await page.keyboard.press("f");
    } else {
      await page.keyboard.press("1");
      await drag(page, 0.4, 0.2, 0.6, 0.9);
      await page.keyboard.press("Escape");
      await page.keyboard.press("t");
    }
    const ready = await state(page);
    await page.click("#save");
    await page.waitForFunction((i) => window.lab.index !== i || document.getElementById("lab-status").textContent !== "", before.index);
    seen.steps.push({ id: before.id, boxes: ready.boxes, verdict: ready.verdict });
    if (n === 2) await page.setViewportSize(SIZES.phone);
    if (n === 3) await page.setViewportSize(SIZES.desktop);
  }
  // Saving without a verdict is refused with a message, on the last frame reopened.
  await page.selectOption("#q-state", "labelled");
  await page.waitForFunction(() => window.lab.items.length > 0 && document.querySelector(".q-item"));
  await page.click(".q-item");
  await page.waitForFunction(() => window.lab.index === 0);
  await audit(page, "labelled");
  seen.last = await state(page);
  seen.audits = audits;
  seen.problems = problems;
  seen.ok = true;
  await browser.close();
  console.log(JSON.stringify(seen));
}

// Label the first `count` frames of the queue (alerts' frames and sample frames alike):
// one person box each, drawn with the mouse, true, saved with the key.
async function labelQueue(browser, page) {
  await page.goto(`${opts.url}/label`);
  await page.waitForSelector("body[data-ready='1']");
  const labelled = [];
  for (let n = 0; n < opts.count; n += 1) {
    await page.waitForFunction(() => window.lab.index >= 0 && document.getElementById("lab-img").complete);
    const before = await state(page);
    await page.keyboard.press("1");
    while ((await state(page)).boxes.length) { // the edge's own boxes are redrawn by hand
      await page.keyboard.press("j");
      await page.keyboard.press("Delete");
    }
    const [x1, y1, x2, y2] = opts.box;
    await drag(page, x1, y1, x2, y2);
    await page.keyboard.press("Escape");
    await page.keyboard.press("t");
    await page.keyboard.press("s");
    await page.waitForFunction((i) => window.lab.items[i].label && (window.lab.index !== i || i === window.lab.items.length - 1), before.index);
    labelled.push({ id: before.id, kind: await page.evaluate((i) => window.lab.items[i].kind, before.index) });
  }
  await browser.close();
  console.log(JSON.stringify({ ok: true, labelled, problems }));
}

main().catch((e) => {
  console.log(JSON.stringify({ ok: false, error: String(e.stack || e), problems }));
  process.exit(1);
});
