// Budget leasing, simulated (issue #16): at 100 instances and 50k requests/s
// on one budget, one Redis round trip per reserve and per settle is 100k
// scripts/s on ONE key (one slot, one Redis core). Leasing hands each instance
// a slice of the budget's headroom that it spends locally; this simulation
// measures what that saves and what it can cost, deterministically (seeded),
// against the per-request store gwc ships.
//
//   node bench/lease-sim.mjs            the table below, ~20 s
//   node bench/lease-sim.mjs --json     the same as JSON
//
// Model (time in µs, one budget, every request pays into it):
//   - requests arrive as a Poisson stream at RATE/s, each at a random instance;
//     each reserves its upper bound U and, after a random duration, costs a
//     random actual ≤ U (the provider bills it even if its instance dies).
//   - Redis: a script reaches it after RTT/2, waits for Redis (one script at a
//     time, SERVICE µs each: a single-threaded server), answers after RTT/2.
//   - per-request: reserve U before, settle after (2 scripts a request).
//   - leasing: an instance holds a slice L_i reserved in Redis; requests take U
//     from the slice locally; a request that finds too little asks Redis for a
//     new slice of min(MAX_SLICE, headroom / (2·N)) (never under U) and waits;
//     finished requests return U − actual to the slice; every FLUSH µs an
//     instance with new spend sends it (spent += s, reserved −= s), and gives
//     back a slice it has not touched for IDLE µs.
//   - crashes: CRASHES instances die at random times; the provider still bills
//     their in-flight requests; their Redis lease (per-request reservations,
//     or the slice) returns after TTL. They do not come back.
// Reported per scenario, over SEEDS seeds (the worst of them): Redis scripts
// per request, how busy that makes Redis's one core, the p99 wait at Redis,
// how much of the cap ends up recorded as spent (leasing strands fragments of
// slices near the cap), and the worst overspend (true spend − cap) in requests
// and of the cap, beside what the crashed instances held in Redis when they
// died, the bound the overspend must stay within.

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const JSON_OUT = process.argv.includes("--json");

// The slice sizing the runtime ships (runtime/lease-slice.ts), compiled on the fly: the simulation measures that code, not a copy.
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const built = await esbuild.build({ entryPoints: [join(root, "runtime", "lease-slice.ts")], bundle: true, write: false, format: "esm", platform: "node" });
const { sliceSize, grantOf, nearCap, NEAR_CAP_REQUESTS } = await import(`data:text/javascript;base64,${Buffer.from(built.outputFiles[0].text).toString("base64")}`);

function rng(seed) {
  // xorshift32: deterministic, enough for a simulation.
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** A binary heap of [time, seq, fn]: events run in time order, ties in scheduling order. */
class Events {
  heap = [];
  seq = 0;
  push(t, fn) {
    const h = this.heap;
    h.push([t, this.seq++, fn]);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (less(h[i], h[p])) [h[i], h[p]] = [h[p], h[i]], (i = p);
      else break;
    }
  }
  pop() {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l], h[m])) m = l;
        if (r < h.length && less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
const less = (a, b) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

function simulate(p, seed) {
  const rand = rng(seed);
  const ev = new Events();
  const U = p.U;
  // Redis, the truth: spent and reserved of the one budget line.
  const redis = { spent: 0, reserved: 0, busyUntil: 0, scripts: 0, waits: [] };
  let trueSpend = 0;
  let heldAtCrashes = 0;
  let requests = 0;
  let refused = 0;
  // `seen`: the headroom this instance last saw in an answer from Redis (what the runtime sizes its asks on).
  const inst = Array.from({ length: p.N }, () => ({ alive: true, slice: 0, free: 0, unflushed: 0, inflight: new Set(), waiting: [], asking: false, nearCap: false, lastUse: 0, perRequestHeld: 0, seen: p.CAP }));

  /** A script: runs atomically at Redis (queued behind others), its answer arrives RTT/2 later. */
  function script(now, run, answer) {
    redis.scripts++;
    const arrive = now + p.RTT / 2;
    const start = Math.max(arrive, redis.busyUntil);
    redis.busyUntil = start + p.SERVICE;
    redis.waits.push(start - arrive);
    ev.push(redis.busyUntil, () => {
      const result = run();
      if (answer) ev.push(redis.busyUntil + p.RTT / 2, () => answer(result));
    });
  }

  const addFree = (me, d) => (me.free += d);

  function finish(i, req, now) {
    const me = inst[i];
    me.inflight.delete(req);
    if (!me.alive) return; // billed (counted at start), never reported
    if (p.mode === "per-request") {
      script(now, () => {
        redis.reserved -= U;
        redis.spent += req.actual;
      });
    } else {
      addFree(me, U - req.actual);
      me.unflushed += req.actual;
      drain(i, now);
      // Near the cap a slice is one request: what is left goes back at once, as per-request would.
      if (me.nearCap && me.waiting.length === 0) flush(i, now, true);
    }
  }

  function serve(i, req, now) {
    trueSpend += req.actual; // the provider bills it whatever happens next
    inst[i].inflight.add(req);
    ev.push(now + req.duration, () => finish(i, req, now + req.duration));
  }

  /** Leasing: serve waiting requests from the slice; ask for more when it is short. */
  function drain(i, now) {
    const me = inst[i];
    while (me.waiting.length > 0 && me.free >= U) {
      const req = me.waiting.shift();
      addFree(me, -U);
      me.lastUse = now;
      serve(i, req, now);
    }
    if (me.waiting.length === 0 || me.asking) return;
    me.asking = true;
    // A slice: a share of the headroom last seen (smaller as the cap nears), never less than what
    // the next waiting request lacks; Redis grants it, or just the need, or nothing.
    const need = Math.max(0, U - me.free);
    const want = sliceSize(me.seen, need, p.N, p.MAX_SLICE);
    script(
      now,
      () => {
        const headroom = p.CAP - redis.spent - redis.reserved;
        const grant = grantOf(headroom, want, need);
        redis.reserved += grant;
        return { grant, headroom: headroom - grant };
      },
      ({ grant, headroom }) => {
        me.asking = false;
        me.seen = headroom;
        me.nearCap = nearCap(headroom, U, p.N);
        if (!me.alive) return;
        me.slice += grant;
        addFree(me, grant);
        if (grant === 0) {
          // No slice to be had: what waits is refused.
          refused += me.waiting.splice(0).length;
          return;
        }
        drain(i, now + p.RTT);
      },
    );
  }

  // Arrivals.
  let t = 0;
  while (t < p.DURATION) {
    t += -Math.log(1 - rand()) * (1e6 / p.RATE);
    const i = Math.floor(rand() * p.N);
    const req = { actual: Math.ceil(U * (0.1 + 0.9 * rand())), duration: p.MIN_MS * 1000 + rand() * (p.MAX_MS - p.MIN_MS) * 1000 };
    const at = t;
    ev.push(at, () => {
      const me = inst[i];
      if (!me.alive) return; // the load balancer has noticed
      requests++;
      if (p.mode === "per-request") {
        script(
          at,
          () => {
            if (redis.spent + redis.reserved + U > p.CAP) return false;
            redis.reserved += U;
            return true;
          },
          (ok) => {
            if (!me.alive) return;
            if (ok) serve(i, req, at + p.RTT);
            else refused++;
          },
        );
      } else {
        me.waiting.push(req);
        drain(i, at);
      }
    });
  }
  /** Reports an instance's spend since the last report, and gives back its free slice when told to (idle, or near the cap). */
  function flush(i, now, giveBack) {
    const me = inst[i];
    const spend = me.unflushed;
    const give = giveBack ? me.free : 0;
    if (spend === 0 && give === 0) return;
    me.unflushed = 0;
    me.slice -= spend + give;
    addFree(me, -give);
    script(
      now,
      () => {
        redis.spent += spend;
        redis.reserved -= spend + give;
        return p.CAP - redis.spent - redis.reserved;
      },
      (headroom) => {
        me.seen = headroom;
        me.nearCap = nearCap(headroom, U, p.N);
      },
    );
  }
  // Leasing: every FLUSH, report spend; give back a slice unused for IDLE, or any free slice near the cap
  // (so no instance sits on money another is refusing requests for).
  if (p.mode === "leasing") {
    for (let i = 0; i < p.N; i++) {
      const tick = (now) => {
        const me = inst[i];
        if (!me.alive || now > p.DURATION + 10e6) return;
        const idle = me.inflight.size === 0 && me.waiting.length === 0 && now - me.lastUse > p.IDLE;
        flush(i, now, idle || me.nearCap);
        ev.push(now + p.FLUSH, () => tick(now + p.FLUSH));
      };
      ev.push(p.FLUSH * (1 + i / p.N), () => tick(p.FLUSH * (1 + i / p.N)));
    }
  }
  // Crashes: the instance stops; its lease lapses TTL later.
  for (let c = 0; c < p.CRASHES; c++) {
    const i = Math.floor(rand() * p.N);
    const at = rand() * p.DURATION;
    ev.push(at, () => {
      const me = inst[i];
      if (!me.alive) return;
      me.alive = false;
      // What Redis holds for it: per-request, its in-flight reservations; leasing, its slices not yet flushed.
      const held = p.mode === "per-request" ? me.inflight.size * U : me.slice;
      heldAtCrashes += held;
      ev.push(at + p.TTL, () => script(at + p.TTL, () => (redis.reserved -= held)));
    });
  }
  let worst = 0;
  while (ev.heap.length > 0) {
    const [now, , fn] = ev.pop();
    fn(now);
    worst = Math.max(worst, trueSpend - p.CAP);
  }
  redis.waits.sort((a, b) => a - b);
  return {
    requests,
    scriptsPerRequest: redis.scripts / Math.max(1, requests),
    redisP99WaitUs: redis.waits[Math.floor(redis.waits.length * 0.99)] ?? 0,
    refused,
    capUsed: redis.spent / p.CAP,
    redisBusy: (redis.scripts * p.SERVICE) / p.DURATION,
    overspend: Math.max(0, worst),
    heldAtCrashes,
    trueSpend,
  };
}

const BASE = {
  RATE: 50_000, // requests per second on the budget
  DURATION: 2e6, // µs of arrivals
  U: 10_000, // a request's reservation (its upper bound), in any money unit
  RTT: 500, // µs to Redis and back
  SERVICE: 8, // µs of Redis CPU per script (≈ 125k scripts/s on one core)
  MIN_MS: 50, // request durations, uniform (streams included)
  MAX_MS: 1000,
  TTL: 500_000, // short, so a crashed instance's lease returns while the budget is still being spent
  FLUSH: 100_000, // leasing: report spend every 100 ms
  IDLE: 1e6,
  NEAR_CAP: NEAR_CAP_REQUESTS, // leasing: "near the cap" is headroom under this many requests per instance (runtime/lease-slice.ts)
  MAX_SLICE: 100 * 10_000, // leasing: at most 100 requests' worth per slice
};
const SEEDS = 3;
const DEMAND = BASE.RATE * (BASE.DURATION / 1e6) * 0.55 * BASE.U;
const scenarios = [];
// "roomy": the cap is twice the demand (the common case: a budget far from its end);
// "runs out": a quarter of it, so the near-cap behaviour and crashed instances' leases are exercised.
for (const [capName, capShare] of [["roomy", 2], ["runs out", 0.25]]) {
  for (const N of [10, 100]) {
    for (const CRASHES of [0, 5]) {
      for (const mode of ["per-request", "leasing"]) {
        const p = { ...BASE, N, CRASHES, mode, CAP: Math.round(capShare * DEMAND) };
        const runs = Array.from({ length: SEEDS }, (_, s) => simulate(p, 1000 + s));
        scenarios.push({
          cap: capName,
          mode,
          instances: N,
          crashes: p.CRASHES,
          requestsPerRun: Math.round(runs.reduce((n, r) => n + r.requests, 0) / SEEDS),
          scriptsPerRequest: Math.max(...runs.map((r) => r.scriptsPerRequest)),
          redisBusyPct: 100 * Math.max(...runs.map((r) => r.redisBusy)),
          redisP99WaitUs: Math.max(...runs.map((r) => r.redisP99WaitUs)),
          capUsedPct: 100 * Math.min(...runs.map((r) => r.capUsed)),
          worstOverspendInRequests: Math.max(...runs.map((r) => r.overspend)) / p.U,
          worstOverspendOfCap: Math.max(...runs.map((r) => r.overspend)) / p.CAP,
          // The bound: Redis's spent + reserved covers all a live instance has spent or may spend,
          // so the overspend is at most what the crashed instances held there when they died.
          boundInRequests: Math.max(...runs.map((r) => r.heldAtCrashes)) / p.U,
          sound: runs.every((r) => r.overspend <= r.heldAtCrashes),
        });
      }
    }
  }
}

if (JSON_OUT) {
  console.log(JSON.stringify({ base: BASE, seeds: SEEDS, scenarios }, null, 2));
} else {
  console.log(`budget leasing simulation: ${BASE.RATE} req/s on one budget, RTT ${BASE.RTT} µs, ${BASE.SERVICE} µs of Redis per script, ${SEEDS} seeds, worst of them`);
  console.log("cap       mode         inst crashes  scripts/req  Redis busy  Redis p99 wait  cap used (min)  worst overspend (requests, of cap)  held at crashes (requests)  within it");
  for (const s of scenarios) {
    console.log(
      `${s.cap.padEnd(9)} ${s.mode.padEnd(12)} ${String(s.instances).padStart(4)} ${String(s.crashes).padStart(7)}  ${s.scriptsPerRequest.toFixed(3).padStart(11)}  ${s.redisBusyPct.toFixed(0).padStart(8)} %  ${s.redisP99WaitUs.toFixed(0).padStart(11)} µs  ${s.capUsedPct.toFixed(1).padStart(12)} %  ${s.worstOverspendInRequests.toFixed(1).padStart(14)}, ${(100 * s.worstOverspendOfCap).toFixed(2).padStart(5)} %          ${Math.round(s.boundInRequests).toString().padStart(16)}  ${s.sound ? "yes" : "NO"}`,
    );
  }
}
