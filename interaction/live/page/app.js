// The live page: microphone in (an AudioWorklet at 16 kHz), the model's audio out, its transcript, and a
// scrolling timeline of both sides, over the server's Realtime-style WebSocket protocol.
"use strict";

const RATE = 16000;
const $ = (id) => document.getElementById(id);
let ws = null, ctx = null, mic = null, node = null, playAt = 0;
// One per tick: the microphone's peak since the last, the model's audio peak and text in this one, a mark.
// The page's browser test reads the timeline of a spoken question and the reply (window.liveTimeline).
const columns = window.liveTimeline = [];
let youLevel = 0;
// What has happened so far, for a person glancing at the console and for the page's browser test.
window.liveStats = {micChunks: 0, audioPieces: 0, transcriptChars: 0, heardTicks: 0, errors: 0, surfaces: 0,
                    refused: 0};

function log(text) {
  const line = document.createElement("div");
  line.textContent = text;
  $("log").prepend(line);
}

function toBase64(int16) {
  let s = "";
  const bytes = new Uint8Array(int16.buffer);
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(b64) {
  const s = atob(b64);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return new Int16Array(bytes.buffer);
}

const WORKLET = `
class Capture extends AudioWorkletProcessor {
  constructor() { super(); this.buf = []; this.n = 0; }
  process(inputs) {
    const ch = inputs[0][0];
    if (ch) { this.buf.push(new Float32Array(ch)); this.n += ch.length; }
    if (this.n >= ${RATE / 10}) {  // every 100 ms
      const out = new Float32Array(this.n);
      let o = 0;
      for (const b of this.buf) { out.set(b, o); o += b.length; }
      this.port.postMessage(out, [out.buffer]);
      this.buf = []; this.n = 0;
    }
    return true;
  }
}
registerProcessor("capture", Capture);`;

function send(event) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(event));
}

function play(int16) {
  const buffer = ctx.createBuffer(1, int16.length, RATE);
  const data = buffer.getChannelData(0);
  let peak = 0;
  for (let i = 0; i < int16.length; i++) { data[i] = int16[i] / 32768; peak = Math.max(peak, Math.abs(data[i])); }
  const source = ctx.createBufferSource();
  source.buffer = buffer;
  source.connect(ctx.destination);
  playAt = Math.max(playAt, ctx.currentTime + 0.05);
  source.start(playAt);
  playAt += buffer.duration;
  return peak;
}

function onEvent(e) {
  switch (e.type) {
    case "session.created":
      $("status").textContent = `connected: ${e.session.id}`;
      send({type: "session.update", session: {input_audio_format: {type: "audio/pcm", rate: RATE},
                                             output_audio_format: {type: "audio/pcm", rate: RATE}}});
      break;
    case "response.output_audio.delta":
      columns.push({you: youLevel, model: play(fromBase64(e.delta)), said: "", mark: null});
      window.liveStats.audioPieces++;
      youLevel = 0;
      draw();
      break;
    case "response.output_audio_transcript.delta":
      $("transcript").textContent += e.delta;
      if (columns.length) columns[columns.length - 1].said += e.delta;
      window.liveStats.transcriptChars += e.delta.length;
      break;
    case "response.function_call_arguments.done":
      if (e.name === "render_ui") {
        const refused = renderSurface(e.arguments);
        acked.add(e.call_id);
        send({type: "conversation.item.create",
              item: {type: "function_call_output", call_id: e.call_id, output: refused ? `refused: ${refused}` : "shown"}});
        break;
      }
      log(`delegated: ${JSON.parse(e.arguments).request}`);
      if (columns.length) columns[columns.length - 1].mark = "ask";
      break;
    case "conversation.item.created":
      if (e.item.type === "function_call_output" && acked.has(e.item.call_id)) {
        // our own acknowledgement of a surface, echoed
      } else if (e.item.type === "function_call_output") {
        log(`reasoner answered: ${e.item.output}`);
        if (columns.length) columns[columns.length - 1].mark = "answer";
      } else if (e.item.type === "message") {
        log(`you typed: ${e.item.content[0].text}`);
      }
      break;
    case "input_audio_buffer.timeline":
      $("status").textContent = `micro-turn ${e.microturn}${e.padded ? " (no audio from you: padded)" : ""}`;
      if (!e.padded) window.liveStats.heardTicks++;
      break;
    case "error":
      log(`error: ${e.error.message}`);
      window.liveStats.errors++;
      break;
  }
}

// Generative UI: surfaces (interaction/reasoner/surface.py) built from an allow-list of component types,
// as DOM nodes holding text only. Nothing the reasoner sends is parsed as HTML, no attribute is copied, and
// a link is made only for an http(s) address. Returns null when shown, else why it was refused.
const COMPONENTS = {
  Card: {title: "text", children: "children"}, Text: {text: "text", style: "style"}, List: {children: "children"},
  Table: {rows: "rows", header: "cells"}, Timer: {seconds: "seconds", label: "text"},
  Link: {text: "text", doc: "text", url: "url"},
};
const shown = new Map();  // surfaceId -> its element
const timers = new Map();  // surfaceId -> interval ids
const acked = new Set();  // render_ui call ids this page acknowledged (the server echoes each)

function checkSurface(s) {
  if (!s || typeof s !== "object" || typeof s.surfaceId !== "string" || !/^[A-Za-z0-9_-]{1,40}$/.test(s.surfaceId))
    return "no valid surfaceId";
  if (s.delete === true) return null;
  if (!Array.isArray(s.components) || s.components.length < 1 || s.components.length > 64) return "1 to 64 components";
  const byId = new Map();
  for (const c of s.components) {
    if (!c || typeof c.id !== "string" || !/^[A-Za-z0-9_-]{1,40}$/.test(c.id) || byId.has(c.id)) return "bad component id";
    const fields = COMPONENTS[c.component];
    if (!Object.hasOwn(COMPONENTS, c.component)) return `unknown component ${String(c.component).slice(0, 40)}`;
    for (const [k, v] of Object.entries(c)) {
      if (k === "id" || k === "component") continue;
      const kind = fields[k];
      const ok = kind === "text" || kind === "style" ? typeof v === "string" && v.length <= 500
        : kind === "children" ? Array.isArray(v) && v.every((x) => typeof x === "string")
        : kind === "rows" ? Array.isArray(v) && v.length <= 20 && v.every((r) => Array.isArray(r) && r.length <= 6 && r.every((x) => typeof x === "string"))
        : kind === "cells" ? Array.isArray(v) && v.length <= 6 && v.every((x) => typeof x === "string")
        : kind === "seconds" ? typeof v === "number" && v > 0 && v <= 86400
        : kind === "url" ? typeof v === "string" && /^https?:\/\//.test(v) : false;
      if (!ok) return `component ${c.id}: bad field ${k.slice(0, 40)}`;
    }
    byId.set(c.id, c);
  }
  const seen = new Set(), stack = [[s.root, 1]];
  while (stack.length) {
    const [id, depth] = stack.pop();
    if (!byId.has(id) || seen.has(id) || depth > 8) return "not a tree of at most 8 levels";
    seen.add(id);
    for (const child of byId.get(id).children || []) stack.push([child, depth + 1]);
  }
  return seen.size === byId.size ? null : "components off the tree";
}

function el(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}

function build(c, byId, intervals) {
  let node;
  switch (c.component) {
    case "Card":
      node = el("div"); node.className = "card";
      if (c.title) node.append(el("div", c.title));
      if (c.title) node.firstChild.className = "card-title";
      break;
    case "Text":
      node = el(c.style === "heading" ? "h4" : "p", c.text);
      break;
    case "List":
      node = el("ul");
      break;
    case "Table": {
      node = el("table");
      if (c.header) { const tr = el("tr"); c.header.forEach((x) => tr.append(el("th", x))); node.append(tr); }
      for (const row of c.rows) { const tr = el("tr"); row.forEach((x) => tr.append(el("td", x))); node.append(tr); }
      break;
    }
    case "Timer": {
      node = el("div"); node.className = "timer";
      const end = Date.now() + c.seconds * 1000, clock = el("span");
      const tick = () => {
        const left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
        clock.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
        node.dataset.left = String(left);
      };
      tick();
      intervals.push(setInterval(tick, 250));
      node.append(clock);
      if (c.label) node.append(el("span", ` ${c.label}`));
      break;
    }
    case "Link": {
      let url = null;
      try { url = c.url ? new URL(c.url) : null; } catch { url = null; }
      if (url && (url.protocol === "http:" || url.protocol === "https:")) {
        node = el("a", c.text); node.href = url.href; node.target = "_blank"; node.rel = "noopener noreferrer";
      } else {
        node = el("span", c.doc ? `${c.text} [${c.doc}]` : c.text); node.className = "doc";
      }
      break;
    }
  }
  for (const child of c.children || []) {
    const inner = build(byId.get(child), byId, intervals);
    node.append(c.component === "List" ? (() => { const li = el("li"); li.append(inner); return li; })() : inner);
  }
  return node;
}

function renderSurface(json) {
  let s;
  try { s = typeof json === "string" ? JSON.parse(json) : json; } catch { return "not JSON"; }
  const problem = checkSurface(s);
  if (problem) { window.liveStats.refused++; log(`UI surface refused: ${problem}`); return problem; }
  (timers.get(s.surfaceId) || []).forEach(clearInterval);
  timers.delete(s.surfaceId);
  const old = shown.get(s.surfaceId);
  if (s.delete) { if (old) old.remove(); shown.delete(s.surfaceId); return null; }
  const byId = new Map(s.components.map((c) => [c.id, c])), intervals = [];
  const node = build(byId.get(s.root), byId, intervals);
  node.classList.add("surface");
  node.dataset.surface = s.surfaceId;
  if (old) old.replaceWith(node); else $("surfaces").append(node);
  shown.set(s.surfaceId, node);
  timers.set(s.surfaceId, intervals);
  window.liveStats.surfaces++;
  return null;
}
window.renderSurface = renderSurface;

function draw() {
  const canvas = $("timeline"), g = canvas.getContext("2d");
  const w = 6, n = Math.floor(canvas.width / w), mid = canvas.height / 2;
  g.clearRect(0, 0, canvas.width, canvas.height);
  columns.slice(-n).forEach((c, i) => {
    const x = i * w;
    g.fillStyle = "#3a7bd5";
    g.fillRect(x, mid - Math.min(mid, c.you * mid * 2), w - 1, Math.min(mid, c.you * mid * 2));
    g.fillStyle = "#e67e22";
    g.fillRect(x, mid, w - 1, Math.min(mid, c.model * mid * 2));
    if (c.mark) { g.fillStyle = "#2e9e44"; g.fillRect(x, 0, w - 1, 6); }
  });
}

async function start() {
  ctx = new AudioContext({sampleRate: RATE});
  await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([WORKLET], {type: "application/javascript"})));
  mic = await navigator.mediaDevices.getUserMedia({audio: {channelCount: 1, echoCancellation: true}});
  node = new AudioWorkletNode(ctx, "capture");
  ctx.createMediaStreamSource(mic).connect(node);
  ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/realtime`);
  ws.onmessage = (m) => onEvent(JSON.parse(m.data));
  ws.onclose = () => { $("status").textContent = "disconnected"; stop(); };
  node.port.onmessage = (m) => {
    const f = m.data, pcm = new Int16Array(f.length);
    let peak = 0;
    for (let i = 0; i < f.length; i++) {
      pcm[i] = Math.max(-32768, Math.min(32767, Math.round(f[i] * 32767)));
      peak = Math.max(peak, Math.abs(f[i]));
    }
    youLevel = Math.max(youLevel, peak);
    window.liveStats.micChunks++;
    send({type: "input_audio_buffer.append", audio: toBase64(pcm)});
  };
  $("start").disabled = true; $("stop").disabled = false; $("typed").disabled = false;
}

function stop() {
  if (ws) { ws.onclose = null; ws.close(); ws = null; }
  if (mic) { mic.getTracks().forEach((t) => t.stop()); mic = null; }
  if (ctx) { ctx.close(); ctx = null; }
  $("start").disabled = false; $("stop").disabled = true; $("typed").disabled = true;
}

$("start").onclick = () => start().catch((err) => { log(`could not start: ${err}`); stop(); });
$("stop").onclick = stop;
$("typed").addEventListener("keydown", (k) => {
  if (k.key === "Enter" && k.target.value.trim()) {
    send({type: "conversation.item.create",
          item: {type: "message", role: "user", content: [{type: "input_text", text: k.target.value}]}});
    k.target.value = "";
  }
});
