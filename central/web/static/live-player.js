// The video player shared by the live wall and replay: WebSocket fMP4 into Media Source
// Extensions, or native HLS where MSE is missing (older iPhones). No framework.
"use strict";

const FSV_HEADER = 24;
const FSV_INIT = 1;
const FSV_FRAGMENT = 2;

function fsvMediaSource() {
  if (window.ManagedMediaSource) return window.ManagedMediaSource; // iOS 17.1+
  return window.MediaSource || null;
}

class FsvPlayer {
  // video: a <video> element; url: the WebSocket path;
  // opts: {live, onState(text), onEnd(reason), onSource(name, stream), hls, startAt (UTC seconds to show first, replay)}
  constructor(video, url, opts = {}) {
    this.video = video;
    this.url = url;
    this.live = opts.live !== false;
    this.onState = opts.onState || (() => {});
    // replay: "archive" or "edge" and the stream ("main" or "sub"), as central says
    this.onSource = opts.onSource || (() => {});
    this.onEnd = opts.onEnd || (() => {});
    this.hlsUrl = opts.hls || null;
    this.startAt = opts.startAt == null ? null : opts.startAt;
    this.target = null; // media time to jump to once it is buffered
    this.ws = null;
    this.ms = null;
    this.sb = null;
    this.queue = [];
    this.hello = null;
    this.originWall = null; // UTC seconds at media time 0
    this.lastWall = null; // UTC seconds of the newest fragment received
    this.startedAt = 0;
    this.firstFrameMs = null; // click to first decoded frame, milliseconds
    this.fragments = 0;
    this.closed = false;
    this.error = null;
  }

  start() {
    this.startedAt = performance.now();
    const MS = fsvMediaSource();
    if (!MS && this.hlsUrl && this.video.canPlayType("application/vnd.apple.mpegurl")) {
      this.video.src = this.hlsUrl;
      this._watchFirstFrame();
      this.video.play().catch(() => {});
      return this;
    }
    if (!MS) { this._fail("player.no_mse"); return this; }
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    this.ws = new WebSocket(`${proto}//${location.host}${this.url}`);
    this.ws.binaryType = "arraybuffer";
    this.ws.onmessage = (ev) => this._message(ev.data);
    this.ws.onclose = () => { if (!this.closed && !this.error) this.onEnd(fsv.t("player.connection_closed")); };
    this._state("player.connecting");
    return this;
  }

  stop() {
    this.closed = true;
    if (this.ws) this.ws.close();
    this.ws = null;
    this._detach();
  }

  // UTC seconds of the frame on screen (replay timeline, latency on the wall).
  wallNow() {
    return this.originWall == null ? null : this.originWall + this.video.currentTime;
  }

  framesDecoded() {
    const q = this.video.getVideoPlaybackQuality ? this.video.getVideoPlaybackQuality() : null;
    return q ? q.totalVideoFrames : 0;
  }

  // onState gets the words to show and the message key they came from.
  _state(key, params) { this.onState(fsv.t(key, params), key); }

  // The server refused the stream (429: a video quota): its reason, in the page's language.
  _refused(msg) {
    this.error = "player.refused";
    this.onState(fsv.errorText(msg.status || 429, msg.message), "player.refused");
  }

  _fail(key, params) {
    this.error = key;
    this._state(key, params);
  }

  _detach() {
    if (this.video.src && this.video.src.startsWith("blob:")) URL.revokeObjectURL(this.video.src);
    this.video.removeAttribute("src");
    this.video.load();
    this.ms = null;
    this.sb = null;
    this.queue = [];
  }

  _message(data) {
    if (typeof data === "string") {
      const msg = JSON.parse(data);
      if (msg.type === "hello") this._hello(msg);
      else if (msg.type === "end") { this.closed = true; this.onEnd(msg.reason); }
      else if (msg.type === "source") this.onSource(msg.source, msg.stream || null);
      // A refusal (429: a video quota) ends the attempt with its message; no retry.
      else if (msg.type === "error") { this.closed = true; this._refused(msg); }
      return;
    }
    const view = new DataView(data);
    const kind = view.getUint8(0);
    const payload = new Uint8Array(data, FSV_HEADER);
    if (kind === FSV_FRAGMENT) {
      const wallMs = Number(view.getBigInt64(16));
      if (wallMs) this.lastWall = wallMs / 1000;
      this.fragments += 1;
    }
    if (kind === FSV_INIT || kind === FSV_FRAGMENT) this._append(payload);
  }

  _hello(msg) {
    const MS = fsvMediaSource();
    if (!MS.isTypeSupported(msg.mime)) {
      const hevc = msg.codec === "hevc";
      if (hevc) this._fail("player.no_hevc");
      else this._fail("player.no_codec", { mime: msg.mime });
      if (this.ws) this.ws.close();
      return;
    }
    this._detach(); // a new hello is a new timeline
    this.hello = msg;
    this.originWall = msg.origin_wall;
    // The stream starts at the keyframe before the asked time: show that time once buffered.
    if (this.startAt != null && msg.origin_wall != null) this.target = Math.max(0, this.startAt - msg.origin_wall);
    const ms = new MS();
    this.ms = ms;
    this.video.disableRemotePlayback = true;
    this.video.src = URL.createObjectURL(ms);
    ms.addEventListener("sourceopen", () => {
      if (this.ms !== ms) return;
      // An open-ended stream: otherwise the duration follows the first bytes appended and a
      // seek beyond it is clamped to it.
      ms.duration = Infinity;
      this.sb = ms.addSourceBuffer(msg.mime);
      this.sb.mode = "segments";
      this.sb.addEventListener("updateend", () => this._updated());
      this._pump();
    }, { once: true });
    this._watchFirstFrame();
    this._state(this.live ? "player.live" : "player.replay");
  }

  _append(bytes) {
    this.queue.push(bytes);
    this._pump();
  }

  _pump() {
    const sb = this.sb;
    if (!sb || sb.updating || !this.queue.length || !this.ms || this.ms.readyState !== "open") return;
    try {
      sb.appendBuffer(this.queue.shift());
    } catch (e) {
      if (e.name === "QuotaExceededError") this._trim(true);
      else this._fail("player.error", { detail: e.message });
    }
  }

  _updated() {
    const v = this.video;
    const b = v.buffered;
    if (b.length && this.target != null && b.end(b.length - 1) >= this.target + 0.1) {
      v.currentTime = this.target; // a seek past the buffered end would be cut short
      this.target = null;
    }
    if (b.length) {
      if (!this.playing) {
        this.playing = true;
        if (v.currentTime < b.start(0) || v.currentTime > b.end(b.length - 1)) v.currentTime = b.start(0);
        v.play().catch(() => {});
      } else if (this.live) {
        this._keepUp(b.end(b.length - 1) - v.currentTime);
      } else if (v.readyState < 3) {
        this._skipHole(b);
      }
    }
    this._trim(false);
    this._pump();
  }

  // Live: stay close to the newest frame. The start shows the cached GOP's keyframe at once,
  // then jumps to the live edge; a small lag is caught up by playing a little faster.
  _keepUp(lag) {
    const v = this.video;
    if (lag > 1.0) v.currentTime = v.buffered.end(v.buffered.length - 1) - 0.2;
    else v.playbackRate = lag > 0.4 ? 1.15 : 1.0;
  }

  // Replay across an outage: jump to the next buffered range instead of waiting in the hole.
  _skipHole(b) {
    const t = this.video.currentTime;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) > t + 0.05 && (i === 0 || b.end(i - 1) <= t + 0.1)) {
        this.video.currentTime = b.start(i);
        return;
      }
    }
  }

  _trim(force) {
    const sb = this.sb;
    const t = this.video.currentTime;
    if (!sb || sb.updating || !sb.buffered.length) return;
    const keep = force ? 2 : 20;
    if (t - sb.buffered.start(0) > keep + 10) {
      try { sb.remove(sb.buffered.start(0), t - keep); } catch (e) { /* retried at the next update */ }
    }
  }

  _watchFirstFrame() {
    const v = this.video;
    const done = () => {
      if (this.firstFrameMs == null) this.firstFrameMs = performance.now() - this.startedAt;
    };
    if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(done);
    else v.addEventListener("loadeddata", done, { once: true });
  }
}

window.FsvPlayer = FsvPlayer;
