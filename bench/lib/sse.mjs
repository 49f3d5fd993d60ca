// SSE timing client: opens streams against .../v1/chat/completions and times
// every chunk with process.hrtime.bigint(). The bench mock stamps each chunk
// with its own hrtime at write; both are CLOCK_MONOTONIC, so for every chunk
// we know its one-way delay (arrival − write) as well as the gap since the
// previous one.
import { Agent, request } from "node:http";

const NS_PER_MS = 1e6;
const EVENT_RE = /"bench":\{"i":(\d+),"t":"(\d+)"\}/;

/**
 * One stream. Resolves with its timings; never rejects (failures are data).
 * `timeoutMs` bounds the whole stream.
 */
function oneStream(url, agent, headers, body, timeoutMs) {
  return new Promise((resolve) => {
    const out = { ok: false, status: 0, ttfcMs: NaN, events: [], done: false, reads: 0, coalesced: 0, error: null };
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(out);
    };
    const timer = setTimeout(() => {
      out.error = `timed out after ${timeoutMs} ms`;
      req.destroy();
      settle();
    }, timeoutMs);
    const t0 = process.hrtime.bigint();
    const req = request(url, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers } }, (res) => {
      out.status = res.statusCode;
      res.setEncoding("utf8");
      let buf = "";
      res.on("data", (text) => {
        const now = process.hrtime.bigint();
        out.reads++;
        buf += text;
        let cut;
        let inThisRead = 0;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const event = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          if (event === "data: [DONE]") {
            out.done = true;
            continue;
          }
          const m = EVENT_RE.exec(event);
          if (m === null) continue;
          if (out.events.length === 0) out.ttfcMs = Number(now - t0) / NS_PER_MS;
          out.events.push({ i: Number(m[1]), sent: BigInt(m[2]), recv: now });
          if (++inThisRead > 1) out.coalesced++;
        }
      });
      res.on("end", () => {
        out.ok = res.statusCode === 200;
        settle();
      });
      res.on("error", (e) => {
        out.error = e.message;
        settle();
      });
    });
    req.on("error", (e) => {
      out.error = e.message;
      settle();
    });
    req.end(body);
  });
}

/**
 * `waves` waves of `concurrency` streams each; within a wave the streams start
 * staggerMs apart so their first requests do not queue behind one another.
 */
export async function runSse(base, { concurrency, waves, staggerMs, chunks, headers = {}, timeoutMs = 15_000 }) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const url = `${base}/v1/chat/completions`;
  const body = JSON.stringify({ model: "gpt-4o", stream: true, messages: [{ role: "user", content: "Count to 64." }] });
  const streams = [];
  try {
    for (let w = 0; w < waves; w++) {
      const wave = [];
      for (let s = 0; s < concurrency; s++) {
        wave.push(oneStream(url, agent, headers, body, timeoutMs));
        if (staggerMs > 0 && s < concurrency - 1) await new Promise((ok) => setTimeout(ok, staggerMs));
      }
      streams.push(...(await Promise.all(wave)));
    }
  } finally {
    agent.destroy();
  }
  return summarize(streams, chunks);
}

function summarize(streams, chunks) {
  const ttfc = [];
  const gaps = []; // arrival_k − arrival_{k−1}
  const stretch = []; // (arrival_k − write_k) − (arrival_{k−1} − write_{k−1}): what the path added to the gap
  const oneWay = []; // arrival_k − write_k
  let complete = 0;
  let lost = 0;
  let outOfOrder = 0;
  let coalesced = 0;
  const errors = [];
  for (const s of streams) {
    if (s.error !== null) errors.push(s.error);
    else if (!s.ok) errors.push(`status ${s.status}`);
    coalesced += s.coalesced;
    const ev = s.events;
    if (Number.isFinite(s.ttfcMs)) ttfc.push(s.ttfcMs);
    lost += Math.max(0, chunks - ev.length);
    for (let k = 0; k < ev.length; k++) {
      if (ev[k].i !== k) outOfOrder++;
      oneWay.push(Number(ev[k].recv - ev[k].sent) / NS_PER_MS);
      if (k > 0) {
        gaps.push(Number(ev[k].recv - ev[k - 1].recv) / NS_PER_MS);
        stretch.push(Number(ev[k].recv - ev[k].sent - (ev[k - 1].recv - ev[k - 1].sent)) / NS_PER_MS);
      }
    }
    if (s.ok && s.done && ev.length === chunks) complete++;
  }
  return {
    streams: streams.length,
    complete,
    chunksExpected: streams.length * chunks,
    chunksReceived: streams.reduce((n, s) => n + s.events.length, 0),
    lost,
    outOfOrder,
    coalesced,
    errors: errors.slice(0, 5),
    ttfcMs: pct(ttfc, [50, 99]),
    gapMs: pct(gaps, [50, 99]),
    stretchMs: pct(stretch, [50, 99]),
    oneWayMs: pct(oneWay, [50, 99, 100]),
  };
}

/** Nearest-rank percentiles of a list of numbers. */
export function pct(xs, ps) {
  const s = Float64Array.from(xs).sort();
  const out = { n: s.length };
  for (const p of ps) out[`p${p}`] = s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  return out;
}
