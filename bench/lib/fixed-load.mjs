// Exactly N chat requests, C in flight, keys rotating as post.lua's BENCH_KEYS=1000 does (a seeded
// sequence, the same every run): the load of bench/callgrind.sh, where a count, not a duration, matters.
//   node bench/lib/fixed-load.mjs URL N [C=32]
import { Agent, request } from "undici";
const [url, n, c] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4] ?? 32)];
const agent = new Agent({ connections: c, pipelining: 1 });
const body = '{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}';
let seed = 12345; const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 1000);
let sent = 0, bad = 0;
async function worker() {
  while (sent < n) {
    sent++;
    const k = String(rnd()).padStart(5, "0");
    const r = await request(url + "/v1/chat/completions", { method: "POST", dispatcher: agent, headers: { "content-type": "application/json", authorization: `Bearer gwc-bench-vk-${k}` }, body });
    await r.body.dump();
    if (r.statusCode !== 200) bad++;
  }
}
await Promise.all(Array.from({ length: c }, worker));
console.log(JSON.stringify({ sent, bad }));
await agent.close();
