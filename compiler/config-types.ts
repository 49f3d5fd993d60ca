// The config as the schema admits it (after validation). Field names follow
// the JSON, including the article's snake_case.

export interface Config {
  accounts?: AccountConfig[];
  routes?: RouteConfig[];
  fallback_config?: FallbackConfig;
  resilience?: ResilienceConfig;
  providers?: Record<string, ProviderSettings>;
  organization?: { id?: string; budget?: BudgetConfig; rate_limit?: RateLimitConfig };
  teams?: TeamConfig[];
  virtual_keys?: VirtualKeyConfig[];
  pricing?: Record<string, PriceConfig>;
  state?: { dir?: string; snapshot_interval?: string; redis?: RedisConfig };
  server?: {
    max_body_bytes?: number;
    shutdown_timeout?: string;
    admin_key?: string;
    ui_apply?: boolean;
    header_timeout?: string;
    body_timeout?: string;
    keep_alive_timeout?: string;
    max_event_bytes?: number;
    max_upstream_body_bytes?: number;
    log_level?: LogLevel;
    access_log?: boolean;
  };
  observability?: { metrics?: boolean; per_key_metrics?: boolean; log_bodies?: boolean };
}

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

export interface AccountConfig {
  id: string;
  provider: string;
  model?: string;
  api_key?: string;
  base_url?: string;
  region?: string;
  project?: string;
  api_version?: string;
  aws_access_key_id?: string;
  aws_session_token?: string;
  weight?: number;
  pool?: PoolConfig;
  rate_limit?: RateLimitConfig;
}

export interface RouteConfig {
  id?: string;
  model: string;
  targets: { account: string; weight?: number; model?: string }[];
  fallbacks?: string[];
  fallback_config?: FallbackConfig;
  drop_unsupported_params?: boolean;
  resilience?: ResilienceConfig;
}

export interface ResilienceConfig {
  deadline?: string;
  first_token_timeout?: string;
  stall_timeout?: string;
  retries?: { max?: number; backoff?: string; max_backoff?: string; max_retry_after?: string; budget_ratio?: number };
  failover_on?: string[];
  mid_stream?: "error" | "continue";
}

export interface FallbackConfig {
  enabled?: boolean;
  on_status_codes?: number[];
  on_timeout?: boolean;
  on_connection_error?: boolean;
}

export interface PoolConfig {
  max_connections?: number;
  queue_size?: number;
  backpressure?: "drop" | "block" | "error";
  queue_timeout?: string;
  request_timeout?: string;
}

export interface ProviderSettings {
  base_url?: string;
  pool?: PoolConfig;
}

export interface BudgetConfig {
  daily_limit_usd?: number;
  weekly_limit_usd?: number;
  monthly_limit_usd?: number;
}

export interface RateLimitConfig {
  request_max_limit?: number;
  request_reset_duration?: string;
  token_max_limit?: number;
  token_reset_duration?: string;
}

export interface TeamConfig {
  id: string;
  budget?: BudgetConfig;
  rate_limit?: RateLimitConfig;
}

export interface VirtualKeyConfig {
  id: string;
  key?: string;
  key_sha256?: string;
  team?: string;
  models?: string[];
  budget?: BudgetConfig;
  provider_budgets?: Record<string, BudgetConfig>;
  rate_limit?: RateLimitConfig;
  max_concurrent_requests?: number;
  on_budget_exceeded?: "reject" | { reroute_to_account?: string; reroute_to_route?: string };
}

export interface PriceConfig {
  input_per_mtok_usd: number;
  output_per_mtok_usd: number;
  cached_input_per_mtok_usd?: number;
  cache_write_per_mtok_usd?: number;
}

export interface RedisConfig {
  url: string;
  prefix?: string;
  lease_ttl?: string;
  when_down?: "reject" | "local";
  budget_leasing?: boolean | { max_slice_usd?: number; report_interval?: string };
  cluster?: boolean;
}
