// Open-loop load for the saturation run (item 10): requests start at a fixed
// rate whatever happens to the earlier ones, as independent callers would send
// them, so a gateway that slows down is not offered less (wrk, closed-loop,
// would wait). Each request carries a key picked at random. Answers are timed
// per class: admitted (2xx) and shed (anything else the gateway answered).
import { Pool } from "undici";

const percentile = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);
const stats = (xs) => {
  const s = Float64Array.from(xs).sort();
  return { count: s.length, p50Ms: percentile(s, 50), p99Ms: percentile(s, 99), maxMs: s.length ? s[s.length - 1] : NaN };
};

/**
 * Sends `rate` requests a second for `seconds` to `url` (bounded: at most
 * rate × seconds requests, at most `maxInFlight` outstanding; a start that
 * would pass it is counted as `notSent`). Resolves when every answer is in.
 */
export async function openLoop(url, { rate, seconds, keys, model, maxInFlight = 1024, timeoutMs = 30_000 }) {
  const pool = new Pool(url, { connections: maxInFlight, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const body = JSON.stringify({ model, messages: [{ role: "user", content: "Say hello." }], max_tokens: 16 });
  const total = Math.round(rate * seconds);
  const admitted = [];
  const shed = [];
  const statuses = Object.create(null);
  let failed = 0;
  let notSent = 0;
  let inFlight = 0;
  const pending = [];
  const one = async () => {
    inFlight++;
    const t0 = process.hrtime.bigint();
    try {
      const r = await pool.request({ method: "POST", path: "/v1/chat/completions", headers: { "content-type": "application/json", authorization: `Bearer ${keys(Math.floor(Math.random() * 1e9))}` }, body });
      await r.body.arrayBuffer();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      statuses[r.statusCode] = (statuses[r.statusCode] ?? 0) + 1;
      (r.statusCode < 300 ? admitted : shed).push(ms);
    } catch {
      failed++;
    } finally {
      inFlight--;
    }
  };
  const started = performance.now();
  let sent = 0;
  await new Promise((done) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
      for (; sent < due; sent++) {
        if (inFlight >= maxInFlight) notSent++;
        else pending.push(one());
      }
      if (sent >= total) {
        clearInterval(timer);
        done();
      }
    }, 1);
  });
  await Promise.all(pending);
  await pool.close();
  return { rate, seconds, offered: total, statuses, failed, notSent, admitted: stats(admitted), shed: stats(shed) };
}
