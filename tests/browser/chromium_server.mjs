// One Chromium for the whole browser suite: prints {"ws": endpoint} and serves the scripts
// that connect to it (pages.mjs) until its stdin closes.
import { chromium } from "playwright-core";
import { ARGS } from "./pages.mjs";

const server = await chromium.launchServer({ executablePath: "/usr/bin/chromium", args: ARGS });
console.log(JSON.stringify({ ws: server.wsEndpoint() }));
process.stdin.resume();
process.stdin.on("end", async () => {
  await server.close();
  process.exit(0);
});
