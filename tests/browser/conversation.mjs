// Opens the live page in headless Chromium with a fake microphone playing a WAV file in a loop, presses
// Start, listens for SECONDS and prints the page's timeline (per tick: microphone peak, the model's audio
// peak and text) as JSON.
// Usage: node conversation.mjs URL WAV SECONDS
import { startPage } from "./chromium.mjs";

const [url, wav, seconds] = process.argv.slice(2);
const {browser, page, problems} = await startPage(url, wav);
try {
  await page.waitForTimeout(Number(seconds) * 1000);
  const timeline = await page.evaluate(() => window.liveTimeline);
  const stats = await page.evaluate(() => window.liveStats);
  console.log(JSON.stringify({timeline, stats, problems}));
} finally {
  await browser.close();
}
