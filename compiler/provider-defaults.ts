import type { Wire } from "../runtime/plan.ts";

export interface ProviderDefaults {
  wire: Wire;
  /** Base URL as the provider's official SDK spells it ("{region}" filled from the account); "" when the account must set one. */
  baseUrl: string;
  /** Default region, for providers whose endpoint depends on one. */
  region?: string;
  /** The variable the official SDK reads the key from; null when no key is needed. */
  apiKeyEnv: string | null;
  /**
   * How the provider resumes a partial answer, for mid-stream continuation. The one table of it:
   * `prefill`: a trailing assistant message is continued (Anthropic Messages, docs "Prefill Claude's response");
   * `prefix`: `prefix: true` on the last assistant message (Mistral chat completions; DeepSeek's
   * "Chat Prefix Completion", which needs the account's base_url on https://api.deepseek.com/beta).
   */
  resume?: "prefill" | "prefix";
}

/** Every provider the schema names, with the defaults its official SDK uses. */
export const PROVIDERS: Readonly<Record<string, ProviderDefaults>> = {
  openai: { wire: "openai", baseUrl: "https://api.openai.com/v1", apiKeyEnv: "OPENAI_API_KEY" },
  anthropic: { wire: "anthropic", baseUrl: "https://api.anthropic.com", apiKeyEnv: "ANTHROPIC_API_KEY", resume: "prefill" },
  gemini: { wire: "gemini", baseUrl: "https://generativelanguage.googleapis.com", apiKeyEnv: "GEMINI_API_KEY" },
  vertex: { wire: "vertex", baseUrl: "https://{region}-aiplatform.googleapis.com", region: "us-central1", apiKeyEnv: "VERTEX_ACCESS_TOKEN" },
  azure: { wire: "azure", baseUrl: "", apiKeyEnv: "AZURE_OPENAI_API_KEY" },
  bedrock: { wire: "bedrock", baseUrl: "https://bedrock-runtime.{region}.amazonaws.com", region: "us-east-1", apiKeyEnv: "AWS_SECRET_ACCESS_KEY" },
  cohere: { wire: "cohere", baseUrl: "https://api.cohere.com", apiKeyEnv: "CO_API_KEY" },
  groq: { wire: "openai", baseUrl: "https://api.groq.com/openai/v1", apiKeyEnv: "GROQ_API_KEY" },
  mistral: { wire: "openai", baseUrl: "https://api.mistral.ai/v1", apiKeyEnv: "MISTRAL_API_KEY", resume: "prefix" },
  deepseek: { wire: "openai", baseUrl: "https://api.deepseek.com/v1", apiKeyEnv: "DEEPSEEK_API_KEY", resume: "prefix" },
  xai: { wire: "openai", baseUrl: "https://api.x.ai/v1", apiKeyEnv: "XAI_API_KEY" },
  together: { wire: "openai", baseUrl: "https://api.together.xyz/v1", apiKeyEnv: "TOGETHER_API_KEY" },
  fireworks: { wire: "openai", baseUrl: "https://api.fireworks.ai/inference/v1", apiKeyEnv: "FIREWORKS_API_KEY" },
  openrouter: { wire: "openai", baseUrl: "https://openrouter.ai/api/v1", apiKeyEnv: "OPENROUTER_API_KEY" },
  cerebras: { wire: "openai", baseUrl: "https://api.cerebras.ai/v1", apiKeyEnv: "CEREBRAS_API_KEY" },
  perplexity: { wire: "openai", baseUrl: "https://api.perplexity.ai", apiKeyEnv: "PERPLEXITY_API_KEY" },
  nebius: { wire: "openai", baseUrl: "https://api.studio.nebius.com/v1", apiKeyEnv: "NEBIUS_API_KEY" },
  ollama: { wire: "openai", baseUrl: "http://127.0.0.1:11434/v1", apiKeyEnv: null },
  vllm: { wire: "openai", baseUrl: "http://127.0.0.1:8000/v1", apiKeyEnv: null },
  "openai-compatible": { wire: "openai", baseUrl: "", apiKeyEnv: null },
};

export const AZURE_API_VERSION = "2024-10-21";
