// One update socket per tab (/api/v1/updates): new and changed alerts and camera counters in
// the user's scope. While it is down the page keeps its own non-overlapping poll; when it
// comes back (after a drop, a restart or being too slow) the page re-syncs with one list
// request. A session that ended (logout, expiry) sends the page to the sign-in.
"use strict";

class FsvUpdates {
  // handlers: message(msg) for alert/camera messages, resync() after every (re)connect,
  // state(up) when the socket goes up or down.
  constructor(handlers) {
    this.handlers = handlers;
    this.ws = null;
    this.up = false;
    this.failures = 0; // connection attempts in a row that never opened
    this.opened = 0; // times the socket opened
    this.received = 0;
    this.hello = null; // the server's greeting of the current socket (its node, with several)
    this.log = []; // the last messages (type, op, id): tests read what the socket carried
    this.timer = null;
    this.stopped = false;
  }

  start() {
    if (!window.WebSocket) return this;
    this.connect();
    window.addEventListener("pagehide", () => this.stop());
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let ws;
    try { ws = new WebSocket(`${scheme}://${location.host}/api/v1/updates`); } catch (e) { this.retry(); return; }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.up = true;
      this.failures = 0;
      this.opened += 1;
      this.handlers.state && this.handlers.state(true);
      this.handlers.resync && this.handlers.resync(this.opened);
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "hello") { this.hello = msg; return; }
      this.received += 1;
      this.log.push({ type: msg.type, op: msg.op || "", id: msg.alert ? msg.alert.id : `${msg.site_id}/${msg.camera_id}`, at: Date.now() });
      if (this.log.length > 200) this.log.shift();
      this.handlers.message(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.hello = null;
      const wasUp = this.up;
      this.up = false;
      if (!opened) this.failures += 1;
      if (wasUp && this.handlers.state) this.handlers.state(false);
      if (ev.code === 4401) { location.href = "/login"; return; } // the session ended
      if (!this.stopped) this.retry();
    };
  }

  // A socket that was open (its node stopped or was lost) comes back after 0.3 s; while it
  // cannot connect, back off 0.5, 1, 2, 4, 5 s (±20 %; the page polls meanwhile).
  retry() {
    clearTimeout(this.timer);
    const delay = Math.min(5000, 250 * 2 ** Math.min(this.failures, 5)) * (0.8 + Math.random() * 0.4);
    this.timer = setTimeout(() => this.connect(), this.failures ? delay : 300);
  }
}
window.FsvUpdates = FsvUpdates;
