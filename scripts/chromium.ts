/**
 * Headless Chromium for checking and photographing the web pages, driven with
 * puppeteer-core (npm) through the DevTools protocol: load a page, wait for
 * what it should show, read its DOM, take PNG screenshots. Uses the Debian
 * `chromium` package (`apt-get install -y chromium`; .ci/run installs it);
 * puppeteer-core never downloads a browser.
 *
 * @module
 */

import puppeteer, { type Browser } from "puppeteer-core";

/** Executable names tried, in order. */
const CANDIDATES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];

/** The absolute path of the Chromium executable on PATH, or undefined when there is none. */
export async function findChromium(): Promise<string | undefined> {
  const dirs = (Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin").split(":");
  for (const name of CANDIDATES) {
    for (const dir of dirs) {
      if (dir === "") continue;
      const path = `${dir}/${name}`;
      try {
        const info = await Deno.stat(path);
        if (info.isFile && (info.mode ?? 0) & 0o111) return path;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/** Starts headless Chromium at `executable` with a fresh profile; close it when done. */
export async function launchBrowser(
  executable: string,
  viewport = { width: 1280, height: 900 },
): Promise<Browser> {
  return await puppeteer.launch({
    executablePath: executable,
    headless: true,
    defaultViewport: viewport,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
      "--hide-scrollbars",
    ],
    // Bounded: a browser that does not start fails the caller instead of hanging it.
    timeout: 30_000,
    protocolTimeout: 30_000,
  });
}
