// Opens the live page in headless Chromium with a fake microphone playing a WAV file, presses Start,
// and waits until audio has come back and the transcript has grown. Prints the page's stats as JSON.
// Usage: node live_page.mjs URL WAV SCREENSHOT
import { startPage } from "./chromium.mjs";

const [url, wav, screenshot] = process.argv.slice(2);
const {browser, page, problems} = await startPage(url, wav);
try {
  await page.waitForFunction(
    () => window.liveStats.audioPieces >= 10 && window.liveStats.transcriptChars > 0 && window.liveStats.heardTicks >= 5,
    null, {timeout: 60000});
  await page.fill("#typed", "what is six times seven");
  await page.press("#typed", "Enter");
  await page.waitForFunction(() => document.getElementById("log").textContent.includes("you typed"), null, {timeout: 10000});
  const stats = await page.evaluate(() => ({...window.liveStats, transcript: document.getElementById("transcript").textContent}));
  await page.screenshot({path: screenshot});
  console.log(JSON.stringify({...stats, problems}));
} finally {
  await browser.close();
}
