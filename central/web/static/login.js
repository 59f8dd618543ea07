"use strict";
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    await fsv.api("/api/v1/auth/login", { method: "POST", json: { username: f.get("username"), password: f.get("password") } });
    location.href = "/inbox";
  } catch (e) { document.getElementById("error").textContent = e.message; }
});
