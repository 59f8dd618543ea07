// Shared by every page: API calls with the CSRF token, who am I, sign out.
"use strict";
const fsv = {
  csrf: "",
  async api(path, options = {}) {
    const opts = { credentials: "same-origin", ...options, headers: { ...(options.headers || {}) } };
    if (opts.method && opts.method !== "GET") opts.headers["X-CSRF-Token"] = fsv.csrf;
    if (opts.json !== undefined) {
      opts.body = JSON.stringify(opts.json);
      opts.headers["Content-Type"] = "application/json";
    }
    const resp = await fetch(path, opts);
    if (resp.status === 401 && location.pathname !== "/login") location.href = "/login";
    const type = resp.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await resp.json() : await resp.text();
    if (!resp.ok) throw new Error((data.error && data.error.message) || resp.statusText);
    return data;
  },
  time(ts) { return ts ? new Date(ts * 1000).toLocaleString() : ""; },
  esc(s) { const d = document.createElement("div"); d.textContent = s == null ? "" : String(s); return d.innerHTML; },
  async init() {
    if (location.pathname === "/login") return null;
    const me = await fsv.api("/api/v1/auth/me");
    fsv.csrf = me.csrf_token;
    document.getElementById("who").textContent = `${me.user.display_name} (${me.user.role})`;
    const out = document.getElementById("logout");
    out.hidden = false;
    out.onclick = async () => { await fsv.api("/api/v1/auth/logout", { method: "POST" }); location.href = "/login"; };
    return me.user;
  },
};
fsv.ready = new Promise((resolve) => document.addEventListener("DOMContentLoaded", () => resolve(fsv.init())));
