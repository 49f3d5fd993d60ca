// The gateway's log as it runs (asynchronous, lines gathered in chunks of bytes):
// every line reaches the file whole and in order, across chunk boundaries, with
// lines larger than a chunk among them, and a quiet gateway's lines arrive
// without anyone flushing.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { accessLog, configureLog, event, flushLog } from "../../runtime/log.ts";
import { newRecord } from "../../runtime/request-record.ts";
import { tempDir } from "../helpers.ts";
import { until } from "./harness.ts";

const file = join(tempDir(), "gwc.log");
configureLog({ level: "info", dest: file });
const lines = () =>
  existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];

function served(id: string, body: string | null = null) {
  const r = newRecord(id, "POST", "/v1/chat/completions");
  r.operation = "chat";
  r.model = "gpt-4o-é";
  r.status = 200;
  r.durationMs = 1.5;
  r.requestBody = body;
  return r;
}

describe("log chunks", () => {
  it("a single line reaches the file without a flush (within the 100 ms hand-over)", async () => {
    event("hello", { n: 1 }, "first line");
    await until(() => lines().some((l) => l.event === "hello"), 5000);
    expect(lines().find((l) => l.event === "hello")).toMatchObject({ level: "info", n: 1, msg: "first line" });
  });

  it("keeps every line whole and in order across chunks, with lines larger than a chunk among them", async () => {
    const log = accessLog();
    const big = "x".repeat(100_000) + "ü";
    const want: string[] = [];
    for (let i = 0; i < 2_000; i++) {
      const id = `req-${i}`;
      want.push(id);
      // Non-ASCII (2 bytes in UTF-8) and, now and then, a body bigger than a chunk or an event between lines.
      log(served(id, i % 500 === 7 ? big : null));
      if (i % 300 === 0) event("between", { i }, `after ${id}`);
    }
    flushLog();
    await until(() => lines().filter((l) => typeof l.req_id === "string" && String(l.req_id).startsWith("req-")).length === want.length, 5000);
    const all = lines();
    const access = all.filter((l) => typeof l.req_id === "string" && String(l.req_id).startsWith("req-"));
    expect(access.map((l) => l.req_id)).toEqual(want);
    expect(access.every((l) => l.model === "gpt-4o-é")).toBe(true);
    expect(access.filter((l) => l.request_body === big)).toHaveLength(4);
    // Each event sits right after the line it follows.
    const order = all.filter((l) => l.event === "between" || l.req_id !== undefined).map((l) => (l.event === "between" ? `event ${String(l.i)}` : String(l.req_id)));
    for (let i = 0; i < 2_000; i += 300) expect(order[order.indexOf(`req-${i}`) + 1]).toBe(`event ${i}`);
  });
});
