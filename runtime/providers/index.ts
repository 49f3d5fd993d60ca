import type { Wire } from "../plan.ts";
import type { Adapter } from "./adapter.ts";
import { openaiAdapter } from "./openai.ts";

const ADAPTERS: Partial<Record<Wire, Adapter>> = {
  openai: openaiAdapter,
};

/** The adapter for a wire format, or undefined while this runtime cannot speak it. */
export function adapterFor(wire: Wire): Adapter | undefined {
  return ADAPTERS[wire];
}
