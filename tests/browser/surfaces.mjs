// Opens the live page in headless Chromium with a fake microphone asking for a timer and a unit conversion,
// waits until a countdown and a table are shown beside the transcript, then hands the page's renderer
// hostile surfaces directly and checks each is refused or inert while the session carries on.
// Usage: node surfaces.mjs URL WAV SCREENSHOT. Prints what it saw as JSON.
import { startPage } from "./chromium.mjs";

const [url, wav, screenshot] = process.argv.slice(2);
const {browser, page, problems} = await startPage(url, wav);
try {
  const dialogs = [];
  page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
  await page.waitForSelector("#surfaces .timer", {timeout: 90000});
  await page.waitForSelector("#surfaces table", {timeout: 90000});
  const left0 = Number(await page.getAttribute("#surfaces .timer", "data-left"));
  await page.waitForTimeout(2100);
  const left1 = Number(await page.getAttribute("#surfaces .timer", "data-left"));
  const table = await page.$$eval("#surfaces table td", (cells) => cells.map((c) => c.textContent));
  await page.waitForFunction(() => window.liveStats.errors > 0, null, {timeout: 90000});  // the server refused one
  const card = (id, extra) => ({surfaceId: id, root: "r", components: [
    {id: "r", component: "Card", title: "t", children: ["x"]}, {id: "x", ...extra}]});
  const deep = {surfaceId: "deep", root: "n0", components: Array.from({length: 12}, (_, i) =>
    i < 11 ? {id: `n${i}`, component: "Card", children: [`n${i + 1}`]} : {id: `n${i}`, component: "Text", text: "x"})};
  const hostile = {
    scriptText: card("h1", {component: "Text", text: "<script>window.pwned = 1</script><img src=x onerror=alert(1)>"}),
    onerror: card("h2", {component: "Text", text: "x", onerror: "alert(1)"}),
    javascriptLink: card("h3", {component: "Link", text: "click", url: "javascript:alert(1)"}),
    scriptType: card("h4", {component: "Script", text: "alert(1)"}),
    many: {surfaceId: "h5", root: "c0", components: Array.from({length: 10000}, (_, i) => ({id: `c${i}`, component: "Text", text: "x"}))},
    deep,
    malformed: "{\"surfaceId\": \"h7\", \"components\": [",
    protoType: card("h8", {component: "__proto__", text: "x"}),
  };
  const verdicts = {};
  for (const [name, s] of Object.entries(hostile)) {
    verdicts[name] = await page.evaluate((s) => window.renderSurface(s), typeof s === "string" ? s : JSON.stringify(s));
  }
  const inert = await page.evaluate(() => ({
    pwned: window.pwned === undefined ? null : window.pwned,
    scripts: document.querySelectorAll("#surfaces script").length,
    images: document.querySelectorAll("#surfaces img").length,
    handlers: [...document.querySelectorAll("#surfaces *")].filter((e) => [...e.attributes].some((a) => a.name.startsWith("on"))).length,
    jsLinks: [...document.querySelectorAll("#surfaces a")].filter((a) => !/^https?:/.test(a.href)).length,
    shownText: document.getElementById("surfaces").textContent,
  }));
  const before = await page.evaluate(() => window.liveStats.audioPieces);
  await page.waitForFunction((n) => window.liveStats.audioPieces >= n + 5, before, {timeout: 20000});  // still live
  const stats = await page.evaluate(() => ({...window.liveStats}));
  await page.screenshot({path: screenshot});
  console.log(JSON.stringify({left0, left1, table, verdicts, inert, stats, problems, dialogs}));
} finally {
  await browser.close();
}
