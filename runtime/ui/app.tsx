// The dashboard: one page, data from /admin/api/snapshot every 2 s, no reload.
// Preact renders it, uPlot draws the charts; both are inlined into the page.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import type { BudgetNode, Snapshot } from "../admin-api.ts";
import type { DraftResult, Weight } from "../../compiler/browser.ts";

interface Compiler {
  checkDraft(draft: string, running: string | null): DraftResult;
  weights(draft: string): Weight[];
  setValue(draft: string, path: (string | number)[], value: unknown): string;
}

const POLL_MS = 2000;
const KEY = "gwc_admin_key";

type Account = Snapshot["accounts"][number];
type Route = Snapshot["routes"][number];
type Req = Snapshot["requests"][number];

/** `/ui#admin_key=…` fills the key in, then drops it from the address bar and history. */
function adminKeyFromFragment(): string | null {
  const m = /(?:^#|&)admin_key=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY);
}

function App() {
  const [key, setKey] = useState(adminKeyFromFragment);
  const [snap, setSnap] = useState<Snapshot | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [updated, setUpdated] = useState<number | null>(null);
  const [tab, setTab] = useState<"live" | "config">(location.hash === "#config" ? "config" : "live");

  useEffect(() => {
    const onHash = () => setKey(adminKeyFromFragment());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  useEffect(() => {
    if (key === null) return;
    let stopped = false;
    let timer: number | undefined;
    const poll = async () => {
      try {
        const res = await fetch("/admin/api/snapshot", { headers: { authorization: `Bearer ${key}` }, cache: "no-store" });
        if (res.status === 401) {
          sessionStorage.removeItem(KEY);
          setKey(null);
          setError("That admin key was not accepted.");
          return;
        }
        const body = await res.json();
        if (!res.ok) throw new Error(body?.error?.message ?? `HTTP ${res.status}`);
        if (stopped) return;
        setSnap(body);
        setUpdated(Date.now());
        setError(null);
      } catch (e) {
        if (!stopped) setError(`Cannot reach the gateway: ${(e as Error).message}`);
      }
      if (!stopped) timer = window.setTimeout(poll, POLL_MS);
    };
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [key]);

  if (key === null) return <Login error={error} onKey={(k) => (sessionStorage.setItem(KEY, k), setKey(k))} />;
  return (
    <div class="page">
      <Header snap={snap} updated={updated} error={error} onSignOut={() => (sessionStorage.removeItem(KEY), setKey(null), setSnap(null))} />
      <nav class="tabs">
        <button class={tab === "live" ? "on" : ""} onClick={() => setTab("live")}>Live</button>
        <button class={tab === "config" ? "on" : ""} onClick={() => setTab("config")}>Config draft</button>
      </nav>
      {tab === "config" ? (
        <ConfigDraft adminKey={key} />
      ) : snap === null ? (
        <p class="muted">Loading…</p>
      ) : (
        <>
          <Charts snap={snap} />
          <section>
            <h2>Routes</h2>
            <div class="routes">{snap.routes.map((r) => <RouteCard route={r} accounts={snap.accounts} />)}</div>
          </section>
          <section>
            <h2>Accounts</h2>
            <Accounts accounts={snap.accounts} />
          </section>
          <div class="two">
            <section>
              <h2>Budgets</h2>
              <Budget node={snap.budgets} depth={0} />
            </section>
            <section>
              <h2>Config</h2>
              <Config snap={snap} />
            </section>
          </div>
          <section>
            <h2>Last requests</h2>
            <Requests requests={snap.requests} />
          </section>
        </>
      )}
    </div>
  );
}

function Login({ error, onKey }: { error: string | null; onKey: (key: string) => void }) {
  const [value, setValue] = useState("");
  return (
    <form class="login" onSubmit={(e) => (e.preventDefault(), value && onKey(value))}>
      <h1>
        <span class="logo">gwc</span> dashboard
      </h1>
      <label>
        Admin key
        <input type="password" name="admin_key" autocomplete="current-password" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} autofocus />
      </label>
      <button type="submit">Open</button>
      {error && <p class="error">{error}</p>}
      <p class="muted">The key stays in this tab (sessionStorage) and is sent only to this gateway.</p>
    </form>
  );
}

function Header({ snap, updated, error, onSignOut }: { snap: Snapshot | null; updated: number | null; error: string | null; onSignOut: () => void }) {
  const total = snap?.series.reduce((a, p) => a + p.requests, 0) ?? 0;
  const errors = snap?.series.reduce((a, p) => a + Object.values(p.errors).reduce((x, y) => x + (y ?? 0), 0), 0) ?? 0;
  return (
    <header>
      <h1>
        <span class="logo">gwc</span> dashboard
      </h1>
      <div class="kpis">
        <Kpi label="requests (15 min)" value={total.toLocaleString()} />
        <Kpi label="error rate" value={total === 0 ? "—" : pct(errors / total)} tone={total > 0 && errors / total > 0.05 ? "red" : undefined} />
        <Kpi label="spend (15 min)" value={usd(snap?.series.reduce((a, p) => a + p.spendUsd, 0) ?? 0)} />
        <Kpi label="config" value={snap?.config.version ?? "—"} />
      </div>
      <div class={`live ${error ? "down" : ""}`} title={error ?? undefined}>
        <span class="dot" /> {error ? "disconnected" : updated ? `live · ${new Date(updated).toLocaleTimeString()}` : "connecting"}
        <button class="link" onClick={onSignOut}>
          sign out
        </button>
      </div>
    </header>
  );
}

function Kpi({ label, value, tone }: { label: string; value: string; tone?: string }) {
  return (
    <div class={`kpi ${tone ?? ""}`}>
      <div class="v" data-kpi={label}>
        {value}
      </div>
      <div class="l">{label}</div>
    </div>
  );
}

const ERROR_COLORS: Record<string, string> = {
  rate_limited: "#f5a524",
  server_error: "#f31260",
  overloaded: "#ff7eb6",
  timeout: "#9353d3",
  connection_error: "#7828c8",
  auth: "#c20e4d",
  budget_exceeded: "#e5c07b",
  invalid_request: "#8a8f98",
  stream_interrupted: "#ff4ecd",
};

function Charts({ snap }: { snap: Snapshot }) {
  const t = snap.series.map((p) => p.t / 1000);
  const types = [...new Set(snap.series.flatMap((p) => Object.keys(p.errors)))].sort();
  return (
    <div class="charts">
      <Chart title="Requests / 10 s" data={[t, snap.series.map((p) => p.requests)]} series={[{ label: "requests", stroke: "#4ea1ff", fill: "rgba(78,161,255,.15)" }]} />
      <Chart
        title="Errors by type"
        data={[t, ...types.map((ty) => snap.series.map((p) => p.errors[ty as keyof typeof p.errors] ?? 0))]}
        series={types.map((ty) => ({ label: ty, stroke: ERROR_COLORS[ty] ?? "#aaa" }))}
      />
      <Chart title="p95 latency (ms)" data={[t, snap.series.map((p) => p.p95Ms)]} series={[{ label: "p95", stroke: "#17c964" }]} />
      <Chart title="Spend (USD / 10 s)" data={[t, snap.series.map((p) => p.spendUsd)]} series={[{ label: "spend", stroke: "#f5a524", fill: "rgba(245,165,36,.15)" }]} />
    </div>
  );
}

function Chart({ title, data, series }: { title: string; data: (number | null)[][]; series: uPlot.Series[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const labels = series.map((s) => s.label).join(",");
  useEffect(() => {
    const el = box.current!;
    const axis = { stroke: "#8a8f98", grid: { stroke: "#23262d" }, ticks: { stroke: "#23262d" } };
    plot.current = new uPlot(
      { width: el.clientWidth, height: 150, legend: { show: series.length > 1 }, cursor: { drag: { x: false, y: false } }, axes: [axis, axis], series: [{}, ...series.map((s) => ({ width: 2, points: { show: false }, ...s }))] },
      data as uPlot.AlignedData,
      el,
    );
    const resize = () => plot.current?.setSize({ width: el.clientWidth, height: 150 });
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      plot.current?.destroy();
    };
  }, [labels]);
  useEffect(() => plot.current?.setData(data as uPlot.AlignedData), [data]);
  return (
    <div class="card chart">
      <h3>{title}</h3>
      <div ref={box} />
    </div>
  );
}

function RouteCard({ route, accounts }: { route: Route; accounts: Account[] }) {
  const byId = new Map(accounts.map((a) => [a.id, a]));
  return (
    <div class="card route" data-route={route.id}>
      <h3>
        route <code>{route.id}</code> <span class="muted">{route.model === "*" ? "every model" : route.model}</span>
        <span class="muted right">{route.served.toLocaleString()} served (5 min)</span>
      </h3>
      <table>
        <thead>
          <tr>
            <th>account</th>
            <th class="num">weight</th>
            <th>configured vs live share</th>
            <th>state</th>
          </tr>
        </thead>
        <tbody>
          {route.split.map((s) => {
            const a = byId.get(s.account);
            return (
              <tr data-account={s.account}>
                <td>{s.account}</td>
                <td class="num">{s.weight}</td>
                <td>
                  <div class="share">
                    <div class="bar configured" style={{ width: pct(s.configured) }} />
                    <div class="bar live" style={{ width: s.live === null ? "0%" : pct(s.live) }} />
                  </div>
                  <span class="share-text" data-share={s.account}>
                    {pct(s.configured)} configured · {s.live === null ? "no traffic yet" : `${pct(s.live)} live`}
                  </span>
                </td>
                <td>{a?.out ? <span class="badge red" title={a.out}>out: {a.out}</span> : <span class="badge green">in</span>}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p class="chain">
        failover: {route.failover.length === 0 ? <span class="muted">off</span> : route.failover.map((id, i) => <span>{i > 0 && " → "}<code>{id}</code></span>)}
      </p>
    </div>
  );
}

function Accounts({ accounts }: { accounts: Account[] }) {
  return (
    <table class="card accounts">
      <thead>
        <tr>
          <th>account</th>
          <th>breaker</th>
          <th class="num">attempts</th>
          <th class="num">errors</th>
          <th>by type</th>
          <th class="num">p50 / p95</th>
          <th class="num">TTFT p50 / p95</th>
          <th>pool</th>
          <th>rate limit</th>
        </tr>
      </thead>
      <tbody>
        {accounts.map((a) => (
          <tr data-account={a.id}>
            <td>
              {a.id} <span class="muted">{a.provider}</span>
            </td>
            <td>
              <span class={`badge ${a.breaker === "closed" ? "green" : a.breaker === "open" ? "red" : "amber"}`}>{a.breaker.replace("_", "-")}</span>
            </td>
            <td class="num">{a.attempts}</td>
            <td class="num">{pct(a.errorRate)}</td>
            <td>
              {Object.entries(a.errors).map(([t, n]) => (
                <span class="chip" style={{ borderColor: ERROR_COLORS[t] ?? "#555" }}>
                  {t} {n}
                </span>
              ))}
            </td>
            <td class="num">{ms(a.latencyMs.p50)} / {ms(a.latencyMs.p95)}</td>
            <td class="num">{ms(a.ttftMs.p50)} / {ms(a.ttftMs.p95)}</td>
            <td>
              <div class="meter" title={`${a.pool.inFlight} in flight, ${a.pool.queued} queued of ${a.pool.capacity} connections`}>
                <div style={{ width: pct(Math.min(1, a.pool.inFlight / a.pool.capacity)) }} />
              </div>
              <span class="muted small">
                {a.pool.inFlight}/{a.pool.capacity} · {a.pool.queued} queued
              </span>
            </td>
            <td class="small">{a.rateLimit === null ? <span class="muted">none</span> : a.rateLimit.map((w) => `${w.used}/${w.limit} ${w.kind}`).join(", ")}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Budget({ node, depth }: { node: BudgetNode; depth: number }) {
  return (
    <div class={depth === 0 ? "card budgets" : "budget-children"}>
      <div class="budget" data-budget={`${node.level}:${node.id}`}>
        <div class="name">
          <span class="muted">{node.level.replace("_", " ")}</span> {node.id}
        </div>
        <div class="periods">
          {node.periods.length === 0 && <span class="muted small">no cap</span>}
          {node.periods.map((p) => (
            <div class={`period ${p.used >= 1 ? "red" : p.used >= 0.8 ? "amber" : ""}`} title={`resets ${new Date(p.resetsAt).toUTCString()}`}>
              <span class="small">{p.period}</span>
              <div class="meter">
                <div style={{ width: pct(Math.min(1, p.used)) }} />
              </div>
              <span class="small">
                ${p.spentUsd} spent · ${p.reservedUsd} reserved · ${p.limitUsd} limit
              </span>
            </div>
          ))}
        </div>
      </div>
      {node.children.map((c) => (
        <Budget node={c} depth={depth + 1} />
      ))}
    </div>
  );
}

function Config({ snap }: { snap: Snapshot }) {
  return (
    <div class="card">
      <p>
        version <code>{snap.config.version}</code> · gwc {snap.config.gwcVersion}
        {snap.config.loadedAt !== null && ` · loaded ${new Date(snap.config.loadedAt).toLocaleString()}`}
      </p>
      <ul class="reloads">
        {snap.config.reloads.slice(0, 10).map((l) => (
          <li class={l.ok ? "" : "red"}>
            {new Date(l.at).toLocaleTimeString()} {l.ok ? `loaded ${l.version}` : `reload failed: ${l.message}`}
          </li>
        ))}
      </ul>
    </div>
  );
}

function Requests({ requests }: { requests: Req[] }) {
  const [all, setAll] = useState(false);
  const shown = all ? requests : requests.slice(0, 25);
  return (
    <>
    <table class="card requests">
      <thead>
        <tr>
          <th>time</th>
          <th>status</th>
          <th>model</th>
          <th>key</th>
          <th class="num">tokens in / out</th>
          <th class="num">cost</th>
          <th class="num">latency</th>
          <th>attempts</th>
        </tr>
      </thead>
      <tbody>
        {shown.map((r) => (
          <tr data-request={r.id}>
            <td class="small">{new Date(r.time).toLocaleTimeString()}</td>
            <td>
              <span class={`badge ${r.status < 400 ? "green" : r.status === 429 || r.status === 402 ? "amber" : "red"}`}>{r.status}</span>
            </td>
            <td>{r.model ?? "—"}</td>
            <td>{r.keyId ?? <span class="muted">open</span>}</td>
            <td class="num">{r.inputTokens === null ? "—" : `${r.inputTokens} / ${r.outputTokens}`}</td>
            <td class="num">{r.costUsd === null ? "—" : usd(r.costUsd)}</td>
            <td class="num">{ms(r.ms)}</td>
            <td class="small">
              {r.attempts.length === 0 && <span class="muted">{r.errorType ?? "—"}</span>}
              {r.attempts.map((a, i) => (
                <span>
                  {i > 0 && " → "}
                  <span class={`chip ${a.errorType === null ? "ok" : ""}`} style={{ borderColor: a.errorType === null ? "#17c964" : (ERROR_COLORS[a.errorType] ?? "#555") }}>
                    {a.account} {a.errorType ?? a.status}
                  </span>
                </span>
              ))}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
    {requests.length > shown.length && (
      <button class="link more" onClick={() => setAll(true)}>
        show all {requests.length}
      </button>
    )}
    </>
  );
}

/** Loads the compiler's checks (/ui/compiler.js) once, on first use of the config page. */
let compilerLoad: Promise<Compiler> | undefined;
function loadCompiler(): Promise<Compiler> {
  compilerLoad ??= new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = "/ui/compiler.js";
    s.onload = () => resolve((globalThis as unknown as { gwcCompiler: Compiler }).gwcCompiler);
    s.onerror = () => reject(new Error("cannot load /ui/compiler.js"));
    document.head.append(s);
  });
  return compilerLoad;
}

interface Running {
  version: string;
  source: string | null;
  apply: string;
}

/**
 * The config as code, edited as a draft: weights through a form, everything
 * else as JSON, checked by the compiler itself on every edit; the exact split,
 * per-outage splits and the diff against what runs; download, copy the diff,
 * or (server.ui_apply) apply it.
 */
function ConfigDraft({ adminKey }: { adminKey: string }) {
  const [compiler, setCompiler] = useState<Compiler | null>(null);
  const [running, setRunning] = useState<Running | null>(null);
  const [draft, setDraft] = useState("");
  const [result, setResult] = useState<DraftResult | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const auth = { authorization: `Bearer ${adminKey}` };

  useEffect(() => {
    void loadCompiler().then(setCompiler, (e: Error) => setNote(e.message));
    void fetch("/admin/api/config", { headers: auth })
      .then((r) => r.json())
      .then((r: Running) => {
        setRunning(r);
        setDraft(r.source ?? "");
      });
  }, []);
  useEffect(() => {
    if (compiler === null || running === null) return;
    const t = setTimeout(() => setResult(compiler.checkDraft(draft, running.source)), 200);
    return () => clearTimeout(t);
  }, [compiler, running, draft]);

  if (running === null || compiler === null) return <p class="muted">{note ?? "Loading the running config and the compiler…"}</p>;
  if (running.source === null) return <p class="muted">This gateway does not know the config text it was built from (build it with `gwc build` and a `server.admin_key`).</p>;
  const download = () => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([draft], { type: "application/json" }));
    a.download = "gateway.config.json";
    a.click();
  };
  const apply = async () => {
    const res = await fetch("/admin/api/config", { method: "POST", headers: auth, body: draft });
    const body = await res.json();
    setNote(res.ok ? `Applied: now running ${body.version}.` : `${body.error.message} ${(body.diagnostics ?? []).join(" ")}`);
    if (res.ok) setRunning({ ...running, version: body.version, source: draft });
  };
  return (
    <div class="config-page">
      <div class="card editor">
        <h3>
          Draft <span class="muted">of running config {running.version}</span>
        </h3>
        <div class="weights">
          {compiler.weights(draft).map((w) => (
            <label>
              <span>{w.label}</span>
              <input type="number" min={0} step={1} value={w.value} data-weight={w.label} onInput={(e) => setDraft(compiler.setValue(draft, w.path, Number((e.target as HTMLInputElement).value)))} />
            </label>
          ))}
        </div>
        <textarea spellcheck={false} value={draft} onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)} />
        <div class="actions">
          <button onClick={download}>Download JSON</button>
          <button disabled={!result?.diff} onClick={() => void navigator.clipboard?.writeText(result!.diff!.markdown).then(() => setNote("Diff copied as markdown."))}>
            Copy diff
          </button>
          <button disabled={running.apply !== "enabled" || !result || result.errors > 0 || result.diff?.changes === 0} title={running.apply === "enabled" ? "" : running.apply} onClick={() => void apply()}>
            Apply live
          </button>
          {note && <span class="muted small">{note}</span>}
        </div>
      </div>
      <div class="card results">
        <h3>Checks</h3>
        {result === null && <p class="muted">Checking…</p>}
        {result !== null && result.errors === 0 && (
          <p class="ok-text">Compiles{result.diagnostics.length > 0 ? `, with ${result.diagnostics.length} warning${result.diagnostics.length === 1 ? "" : "s"}` : ""}.</p>
        )}
        {result !== null && result.errors > 0 && <p class="error">{result.errors} error{result.errors === 1 ? "" : "s"}: this draft would not build.</p>}
        <ul class="diagnostics">
          {result?.diagnostics.map((d) => (
            <li class={/\sGWC_W_/.test(d) ? "warning" : ""}>
              <code>{d}</code>
            </li>
          ))}
        </ul>
        {result?.diff && (
          <>
            <h3>Against what runs</h3>
            <pre class="diff">{result.diff.text}</pre>
          </>
        )}
        {result?.explain && (
          <>
            <h3>Split, per outage, failover</h3>
            <pre>{result.explain}</pre>
          </>
        )}
      </div>
    </div>
  );
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1).replace(/\.0$/, "")}%`;
}

function ms(x: number | null): string {
  return x === null ? "—" : x === Infinity ? "> 46 s" : `${Math.round(x)} ms`;
}

function usd(x: number): string {
  return x < 0.01 && x > 0 ? `$${x.toFixed(6)}` : `$${x.toFixed(2)}`;
}

render(<App />, document.getElementById("app")!);
