// Upstream text reaches callers, logs and dashboards: error messages, relayed
// 4xx bodies, stream error events. Providers echo what they were sent (a key in
// "Incorrect API key provided: sk-…", a URL with `?key=`), so every such text
// passes through one scrubber first. It removes
//
//   - every configured secret, resolved at start-up (account API keys, secret
//     options such as AWS credentials, virtual keys' values, the admin key),
//     also as JSON-escaped and URL-encoded, wherever it appears;
//   - anything shaped like a credential: provider keys (sk-…, sk-ant-…, AIza…,
//     AKIA…/ASIA…), bearer and basic tokens, `key=`/`token=` query values, long
//     hex runs and long mixed-case base64 runs.
//
// Text with nothing to remove is returned as the same string (or Buffer), so a
// relayed body stays byte-for-byte what the provider sent in the common case.
import type { Plan } from "./plan.ts";

const REDACTED = "[redacted]";

/** How much of an upstream's message a caller reads. */
const MESSAGE_LIMIT = 300;

/** Secrets shorter than this are not searched for: they would shred ordinary words. */
const MIN_SECRET_LENGTH = 8;

// One pass over the text; the groups say which shape matched.
const SHAPES = new RegExp(
  [
    /(?<![A-Za-z0-9])(?:sk|rk|pk)-[A-Za-z0-9_-]{16,}/.source, // OpenAI, Anthropic (sk-ant-…), Groq-style keys
    /(?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{30,}/.source, // Google API keys
    /(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])/.source, // AWS access key ids
    /(?<auth>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}/.source, // Authorization values echoed back
    /(?<param>[?&](?:key|api[_-]?key|access_token|token|sig|signature|x-amz-signature|x-amz-security-token)=)[^&\s"'<>]+/.source,
    /(?<![A-Za-z0-9])[0-9a-fA-F]{32,}(?![A-Za-z0-9])/.source, // long hex: secrets, signatures
    /(?<b64>(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_-]{40,}={0,2})/.source, // long base64-ish runs, kept when not mixed (see below)
  ].join("|"),
  "gi",
);

export class Scrubber {
  readonly #secrets: RegExp | undefined;

  constructor(secrets: Iterable<string>) {
    const forms = new Set<string>();
    for (const s of secrets) {
      if (s.length < MIN_SECRET_LENGTH) continue;
      forms.add(s);
      forms.add(JSON.stringify(s).slice(1, -1));
      forms.add(encodeURIComponent(s));
    }
    // Longest first, so a secret containing another is removed whole.
    const sorted = [...forms].sort((a, b) => b.length - a.length);
    this.#secrets = sorted.length === 0 ? undefined : new RegExp(sorted.map(escape).join("|"), "g");
  }

  /** The text with every secret and credential-shaped run replaced; the same string when there was none. */
  text(text: string): string {
    let out = this.#secrets === undefined ? text : text.replace(this.#secrets, REDACTED);
    out = out.replace(SHAPES, (match: string, ...args: unknown[]) => {
      const groups = args.at(-1) as { auth?: string; param?: string; b64?: string };
      if (groups.auth !== undefined) return groups.auth + REDACTED;
      if (groups.param !== undefined) return groups.param + REDACTED;
      // A base64 run is a secret when it mixes cases and digits as random bytes do; a path or a
      // word run (`projects/my-project/locations/…`) does not.
      if (groups.b64 !== undefined && !(/[a-z]/.test(match) && /[A-Z]/.test(match) && /\d/.test(match))) return match;
      return REDACTED;
    });
    return out;
  }

  /** Upstream words as a caller may read them: secrets removed first, then one line of at most 300 characters. */
  say(text: string): string {
    const message = this.text(text).replace(/\s+/g, " ").trim();
    return message.length > MESSAGE_LIMIT ? `${message.slice(0, MESSAGE_LIMIT)}…` : message || "no message";
  }

  /** A relayed body, scrubbed only when something in it must go: otherwise the very same bytes. */
  bytes(body: Buffer): Buffer {
    const text = body.toString("utf8");
    const out = this.text(text);
    return out === text ? body : Buffer.from(out);
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Every secret the plan names, resolved from the environment the gateway runs in. */
export function scrubberFor(plan: Plan, env: NodeJS.ProcessEnv): Scrubber {
  const names: string[] = [];
  for (const a of plan.accounts) {
    if (a.apiKeyEnv !== null) names.push(a.apiKeyEnv);
    for (const [, variable] of a.secretOptions) names.push(variable);
  }
  for (const k of plan.virtualKeys) if (k.keyEnv !== null) names.push(k.keyEnv);
  if (plan.server.adminKeyEnv !== null) names.push(plan.server.adminKeyEnv);
  const values: string[] = [];
  for (const n of names) {
    const v = env[n];
    if (v) values.push(v);
  }
  return new Scrubber(values);
}
