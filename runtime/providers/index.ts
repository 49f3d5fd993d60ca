import type { Wire } from "../plan.ts";
import type { Adapter } from "./adapter.ts";
import { anthropicAdapter } from "./anthropic.ts";
import { azureAdapter } from "./azure.ts";
import { bedrockAdapter } from "./bedrock.ts";
import { cohereAdapter } from "./cohere.ts";
import { geminiAdapter } from "./gemini.ts";
import { openaiAdapter } from "./openai.ts";
import { vertexAdapter } from "./vertex.ts";

const ADAPTERS: Record<Wire, Adapter | undefined> = {
  openai: openaiAdapter,
  anthropic: anthropicAdapter,
  gemini: geminiAdapter,
  vertex: vertexAdapter,
  azure: azureAdapter,
  bedrock: bedrockAdapter,
  cohere: cohereAdapter,
};

/** The adapter for a wire format, or undefined while this runtime cannot speak it. */
export function adapterFor(wire: Wire): Adapter | undefined {
  return ADAPTERS[wire];
}
