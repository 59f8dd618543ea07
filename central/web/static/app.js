// Shared by every page: messages in the chosen language (from /i18n.js), times in the site's
// time zone in one format, API calls with the CSRF token and translated errors, the header.
"use strict";
const I18N = window.FSV_I18N || { lang: "zh-CN", timezone: "Asia/Shanghai", messages: {} };
const LANG_COOKIE = "fsv_lang";

// Server messages worth a sentence of their own; everything else falls back to its status.
const ERROR_PATTERNS = [
  [/^cannot (\w+) an alert that is (\w+)/, (m) => fsv.t("err.transition", { action: fsv.label("action", m[1]), state: fsv.label("state", m[2]) })],
  [/^(\w+) needs a note/, (m) => fsv.t(m[1] === "close" ? "err.reason_required" : "err.note_required")],
  [/^(\w+) needs a deadline/, () => fsv.t("err.deadline_required")],
  [/deadline must lie in the future/, () => fsv.t("err.deadline_past")],
  [/at least one evidence photo/, () => fsv.t("err.photo_required")],
  [/evidence must be a JPEG/, () => fsv.t("err.photo_type")],
  [/^at most (\d+) photos/, (m) => fsv.t("err.photo_count", { n: m[1] })],
  [/^wrong user name or password/, () => fsv.t("err.login")],
  [/^account disabled/, () => fsv.t("err.disabled")],
  [/^(sign in first|not signed in)/, () => fsv.t("err.signin")],
  [/^a (\w+) may not /, (m) => fsv.t("err.forbidden", { role: fsv.label("role", m[1]) })],
  [/^the period must be positive/, () => fsv.t("err.period")],
  [/^(not a time|time .* needs a zone)/, () => fsv.t("err.time")],
  [/must be a finite number/, () => fsv.t("err.finite")],
  [/X-CSRF-Token/, () => fsv.t("err.csrf")],
  [/video quota: you already have \d+ .* \(at most (\d+) at once\)/, (m) => fsv.t("err.quota_viewers", { n: m[1] })],
  [/video quota: .*uplink already carries/, () => fsv.t("err.quota_site")],
  [/video quota: .*your share is (\d+)/, (m) => fsv.t("err.quota_share", { n: m[1] })],
  [/video quota: .*exports in the last hour \(at most (\d+)\)/, (m) => fsv.t("err.quota_exports", { n: m[1] })],
  [/uplink too thin: .* the (sub|main) stream needs/, (m) => fsv.t(m[1] === "main" ? "err.thin_line_main" : "err.thin_line")],
  [/viewers full: .* at most (\d+) viewers/, (m) => fsv.t("err.public_full", { n: m[1] })],
  [/must be public addresses/, () => fsv.t("err.endpoint_private")],
  [/endpoints? must use https|must be an https URL/, () => fsv.t("err.endpoint_https")],
  [/host name does not resolve/, () => fsv.t("err.endpoint_dns")],
  [/not a valid URL|must not carry a user name|url must be an http/, () => fsv.t("err.endpoint_url")],
  [/^generate_secret:/, () => fsv.t("err.generate_secret")],
  [/expires_at must lie in the future/, () => fsv.t("err.expiry_past")],
  [/^choose 1 to (\d+) cameras/, (m) => fsv.t("err.cameras_count", { n: m[1] })],
  [/only a canteen publishes/, () => fsv.t("err.canteen_only")],
  [/revoked or has expired: no poster/, () => fsv.t("err.link_inactive")],
  [/not found|does not exist/, () => fsv.t("err.not_found")],
];

const fsv = {
  csrf: "",
  user: null,
  lang: I18N.lang,
  timezone: I18N.timezone,
  missing: new Set(), // message keys asked for but absent from the catalogue (tests read it)

  t(key, params = {}) {
    const text = I18N.messages[key];
    if (text == null) { fsv.missing.add(key); return key; }
    return text.replace(/\{(\w+)\}/g, (whole, name) => (params[name] == null ? whole : String(params[name])));
  },
  // An enum value (kind, station, state, action, role, level, severity...) in words; a value
  // newer than the catalogue (a new detector's kind) shows as it is rather than as a key.
  label(group, value) {
    if (value == null || value === "") return "";
    const text = I18N.messages[`${group}.${value}`];
    if (text == null) { fsv.missing.add(`${group}.${value}`); return String(value); }
    return text;
  },
  has(key) { return I18N.messages[key] != null; },

  errorText(status, message) {
    const text = String(message || "");
    for (const [re, make] of ERROR_PATTERNS) {
      const m = text.match(re);
      if (m) return make(m);
    }
    const key = `err.status.${status}`;
    return fsv.has(key) ? fsv.t(key) : fsv.t("err.status.other", { status });
  },

  async api(path, options = {}) {
    const opts = { credentials: "same-origin", ...options, headers: { ...(options.headers || {}) } };
    if (opts.method && opts.method !== "GET") opts.headers["X-CSRF-Token"] = fsv.csrf;
    if (opts.json !== undefined) {
      opts.body = JSON.stringify(opts.json);
      opts.headers["Content-Type"] = "application/json";
    }
    let resp;
    try { resp = await fetch(path, opts); } catch (e) { throw fsv.error(0, fsv.t("err.network")); }
    if (resp.status === 401 && location.pathname !== "/login") location.href = "/login";
    const type = resp.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await resp.json() : await resp.text();
    if (!resp.ok) throw fsv.error(resp.status, fsv.errorText(resp.status, (data.error && data.error.message) || resp.statusText), data);
    return data;
  },
  error(status, text, data) { const e = new Error(text); e.status = status; e.data = data; return e; },

  // Times: epoch seconds → the site's wall clock, "2026-12-02 15:04:05" in both languages.
  _fmt: new Intl.DateTimeFormat("en-GB", {
    timeZone: I18N.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  }),
  parts(ts) {
    const out = {};
    for (const p of fsv._fmt.formatToParts(new Date(ts * 1000))) out[p.type] = p.value;
    return out;
  },
  time(ts) { if (!ts) return ""; const p = fsv.parts(ts); return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`; },
  date(ts) { if (!ts) return ""; const p = fsv.parts(ts); return `${p.year}-${p.month}-${p.day}`; },
  clock(ts) { const p = fsv.parts(ts); return `${p.hour}:${p.minute}:${p.second}`; },
  // Seconds the site's zone is ahead of UTC at `ts`.
  offset(ts) {
    const p = fsv.parts(ts);
    return (Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ts) * 1000) / 1000;
  },
  // "YYYY-MM-DD" (and optional "HH:MM[:SS]") in the site's zone → epoch seconds.
  zoned(day, clock = "00:00:00") {
    const [y, m, d] = day.split("-").map(Number);
    const [hh, mm, ss] = clock.split(":").map(Number);
    const naive = Date.UTC(y, m - 1, d, hh || 0, mm || 0, ss || 0) / 1000;
    return naive - fsv.offset(naive - fsv.offset(naive));
  },
  today() { return fsv.date(Date.now() / 1000); },
  duration(s) {
    if (s == null) return "—";
    if (s < 60) return fsv.t("unit.seconds", { n: Math.round(s) });
    if (s < 3600) return fsv.t("unit.minutes", { n: (s / 60).toFixed(1) });
    if (s < 86400) return fsv.t("unit.hours", { n: (s / 3600).toFixed(1) });
    return fsv.t("unit.days", { n: (s / 86400).toFixed(1) });
  },
  pct(x) { return x == null ? "—" : `${(x * 100).toFixed(1)}%`; },
  esc(s) { const d = document.createElement("div"); d.textContent = s == null ? "" : String(s); return d.innerHTML; },

  setLang(lang) {
    document.cookie = `${LANG_COOKIE}=${lang}; path=/; max-age=31536000; samesite=lax`;
    try { localStorage.setItem(LANG_COOKIE, lang); } catch (e) { /* private mode: the cookie is enough */ }
    location.reload();
  },

  async init() {
    const button = document.getElementById("lang");
    if (button) button.onclick = () => fsv.setLang(button.dataset.lang);
    // A language chosen on this device before the cookie expired or was cleared.
    let stored = null;
    try { stored = localStorage.getItem(LANG_COOKIE); } catch (e) { stored = null; }
    if (stored && stored !== fsv.lang && !document.cookie.includes(`${LANG_COOKIE}=`)) fsv.setLang(stored);
    // The sign-in form and the public kitchen page have nobody signed in to ask about.
    if (location.pathname === "/login" || document.body.classList.contains("public")) return null;
    const me = await fsv.api("/api/v1/auth/me");
    fsv.csrf = me.csrf_token;
    fsv.user = me.user;
    const who = document.getElementById("who");
    who.textContent = me.user.display_name;
    who.title = `${me.user.display_name} · ${fsv.label("role", me.user.role)}`;
    who.dataset.role = me.user.role;
    const out = document.getElementById("logout");
    out.hidden = false;
    out.onclick = async () => { await fsv.api("/api/v1/auth/logout", { method: "POST" }); location.href = "/login"; };
    return me.user;
  },
};
window.fsv = fsv;
fsv.ready = new Promise((resolve, reject) => document.addEventListener("DOMContentLoaded", () => fsv.init().then(resolve, reject)));
