// Headless Chromium (Debian's, or $CHROMIUM) whose fake microphone plays `wav` in a loop.
import { chromium } from "playwright-core";

export function launch(wav) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
           `--use-file-for-fake-audio-capture=${wav}`, "--autoplay-policy=no-user-gesture-required"],
  });
}

// The live page at `url` with its session started: {browser, page, problems} (the page's uncaught errors
// collect in `problems`). The caller closes the browser.
export async function startPage(url, wav) {
  const browser = await launch(wav);
  try {
    const page = await browser.newPage();
    const problems = [];
    page.on("pageerror", (err) => problems.push(String(err)));
    await page.goto(url);
    await page.click("#start");
    return {browser, page, problems};
  } catch (err) {
    await browser.close();
    throw err;
  }
}
