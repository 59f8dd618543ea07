// The public kitchen page: the chosen published camera's live sub stream in the shared player,
// one camera at a time, and in words why it stops (the link is full, revoked or expired, the
// camera is offline). A full link or a dropped connection is tried again by itself; a dead
// link is not. Nobody is signed in; the page reaches only its link's own video.
"use strict";

const PUBLIC_RETRY_S = { full: 15, closed: 5, offline: 20 };
const fsvPublic = { player: null, current: null, ended: false, ready: false, retries: 0, timer: null };
window.fsvPublic = fsvPublic;

function publicShow(text, key) {
  const state = document.getElementById("pub-state");
  state.textContent = text;
  state.dataset.key = key || "";
  const playing = key === "player.live" || key === "player.connecting";
  const msg = document.getElementById("pub-msg");
  msg.textContent = playing ? "" : text;
  msg.hidden = playing;
}

// Try the same camera again after `seconds` (a seat may free up, the network may return).
function publicRetry(seconds) {
  clearTimeout(fsvPublic.timer);
  const button = document.querySelector(".cams .cam.on");
  if (fsvPublic.ended || !button) return;
  fsvPublic.timer = setTimeout(() => { fsvPublic.retries += 1; publicPlay(button); }, seconds * 1000);
}

function publicState(text, key) {
  if (key === "player.refused") {
    const gap = fsv.lang === "en" ? " " : ""; // Chinese sentences run on without a space
    publicShow(`${text}${gap}${fsv.t("public.retrying")}`, key);
    publicRetry(PUBLIC_RETRY_S.full);
  } else {
    publicShow(text, key);
  }
}

function publicEnd(reason) {
  if (reason === "public_link_ended") {
    fsvPublic.ended = true;
    clearTimeout(fsvPublic.timer);
    if (fsvPublic.player) fsvPublic.player.stop();
    for (const b of document.querySelectorAll(".cams .cam")) b.disabled = true;
    publicShow(fsv.t("public.ended"), "public.ended");
  } else if (String(reason).startsWith("error")) {
    publicShow(fsv.t("public.offline"), "public.offline");
    publicRetry(PUBLIC_RETRY_S.offline);
  } else {
    publicShow(fsv.t("player.connection_closed"), "player.connection_closed");
    publicRetry(PUBLIC_RETRY_S.closed);
  }
}

function publicPlay(button) {
  if (fsvPublic.ended) return;
  clearTimeout(fsvPublic.timer);
  if (fsvPublic.player) fsvPublic.player.stop();
  for (const b of document.querySelectorAll(".cams .cam")) {
    const on = b === button;
    b.classList.toggle("on", on);
    b.setAttribute("aria-pressed", String(on));
  }
  const name = button.querySelector(".name").textContent;
  document.getElementById("pub-cam").textContent = [name, button.dataset.station].filter(Boolean).join(" · ");
  fsvPublic.current = button.dataset.ref;
  fsvPublic.player = new FsvPlayer(document.getElementById("pub-video"), button.dataset.src, {
    live: true,
    onState: publicState,
    onEnd: publicEnd,
  }).start();
}

fsv.ready.then(() => {
  const buttons = [...document.querySelectorAll(".cams .cam")];
  for (const b of buttons) b.addEventListener("click", () => publicPlay(b));
  if (buttons.length) publicPlay(buttons[0]);
  fsvPublic.ready = true;
});
