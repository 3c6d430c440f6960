// The live page: microphone in (an AudioWorklet at 16 kHz), the model's audio out, its transcript, and a
// scrolling timeline of both sides, over the server's Realtime-style WebSocket protocol.
"use strict";

const RATE = 16000;
const $ = (id) => document.getElementById(id);
let ws = null, ctx = null, mic = null, node = null, playAt = 0;
const columns = [];  // one per tick: {you, model, mark}
let youLevel = 0;
// What has happened so far, for a person glancing at the console and for the page's browser test.
window.liveStats = {micChunks: 0, audioPieces: 0, transcriptChars: 0, heardTicks: 0, errors: 0};

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
      columns.push({you: youLevel, model: play(fromBase64(e.delta)), mark: null});
      window.liveStats.audioPieces++;
      youLevel = 0;
      draw();
      break;
    case "response.output_audio_transcript.delta":
      $("transcript").textContent += e.delta;
      window.liveStats.transcriptChars += e.delta.length;
      break;
    case "response.function_call_arguments.done":
      log(`delegated: ${JSON.parse(e.arguments).request}`);
      if (columns.length) columns[columns.length - 1].mark = "ask";
      break;
    case "conversation.item.created":
      if (e.item.type === "function_call_output") {
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
