// The public kitchen page: the chosen published camera's live sub stream in the shared player,
// one camera at a time, and in words why it stops (the link is full, revoked or expired, the
// camera is offline). Nobody is signed in; the page reaches only its link's own video.
"use strict";

const fsvPublic = { player: null, current: null, ended: false, ready: false };
window.fsvPublic = fsvPublic;

function publicShow(text, key) {
  const state = document.getElementById("pub-state");
  state.textContent = text;
  state.dataset.key = key || "";
}

function publicEnd(reason) {
  if (reason === "public_link_ended") {
    fsvPublic.ended = true;
    if (fsvPublic.player) fsvPublic.player.stop();
    for (const b of document.querySelectorAll(".cams .cam")) b.disabled = true;
    publicShow(fsv.t("public.ended"), "public.ended");
  } else if (String(reason).startsWith("error")) {
    publicShow(fsv.t("public.offline"), "public.offline");
  } else {
    publicShow(fsv.t("player.connection_closed"), "player.connection_closed");
  }
}

function publicPlay(button) {
  if (fsvPublic.ended) return;
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
    onState: publicShow,
    onEnd: publicEnd,
  }).start();
}

fsv.ready.then(() => {
  const buttons = [...document.querySelectorAll(".cams .cam")];
  for (const b of buttons) b.addEventListener("click", () => publicPlay(b));
  if (buttons.length) publicPlay(buttons[0]);
  fsvPublic.ready = true;
});
