// The API's shapes. Request bodies and typed responses come from the generated schema.d.ts
// (`make ui-types`, from the app's OpenAPI schema); the admin routes that still answer a plain
// dict (no response model in the schema) are described here from their source and API.md.
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];

type JsonOf<R> = R extends { content: { "application/json": infer J } } ? J : never;
/** The JSON body of a route's 200/201 answer, as the OpenAPI schema declares it. */
export type ResponseOf<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  responses: infer R;
}
  ? R extends { 200: infer OK }
    ? JsonOf<OK>
    : R extends { 201: infer Created }
      ? JsonOf<Created>
      : never
  : never;
/** The JSON request body of a route. */
export type BodyOf<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { "application/json": infer B } };
}
  ? B
  : never;

export type KeyFields = BodyOf<"/admin/keys", "post">;
export type StrategyChange = BodyOf<"/admin/strategy", "put">;
export type DescribedRequest = BodyOf<"/admin/policies/test", "post">;
export type Limit = Schemas["Limit"];

export interface Page<T> {
  data: T[];
  next_cursor?: string | number | null;
}

export interface StrategyInfo {
  name: string;
  description: string;
}
export interface ActiveStrategies {
  default: string;
  groups: Record<string, string>;
}
export interface StrategyResponse {
  active: ActiveStrategies;
  available: StrategyInfo[];
}
export interface DeploymentStatus {
  id: string;
  group: string;
  model: string;
  provider: string;
  tier: string | null;
  executor: string;
  healthy: boolean;
  circuit: string;
}
export interface GatewayStatus {
  version: string;
  strategy: ActiveStrategies;
  state_backend: string;
  groups: string[];
  deployments: DeploymentStatus[];
}

export interface VirtualKey {
  key_id: string;
  key_prefix: string;
  status: "active" | "revoked" | "expired";
  name: string | null;
  team: string | null;
  user: string | null;
  allowed_groups: string[];
  allowed_models: string[];
  limits: Limit[];
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  created_by: string | null;
  key?: string; // the secret: only in the create and rotate answers
}

export interface SpendTotal {
  cost_usd: number;
  input_tokens: number;
  output_tokens: number;
  requests: number;
}
export interface SpendTotals {
  by: string;
  totals: Record<string, SpendTotal>;
}

export interface AuditRecord {
  id: number | null;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  details: Record<string, unknown>;
  request_id: string | null;
  [field: string]: unknown;
}

export interface PolicyView {
  enabled: boolean;
  file?: string;
  sha256?: string;
  loaded_at?: number;
  default_action?: string;
  failure_mode?: string;
  reload_interval_seconds?: number;
  rules?: Record<string, unknown>[];
}

export interface PluginView {
  name: string;
  enabled?: boolean;
  version?: string;
  source?: string;
  priority?: number;
  failure_mode?: string;
  hooks?: string[];
  health?: { status: string; detail: string | null };
  counters?: Record<string, number | string>;
  [field: string]: unknown;
}

// API.md: GET /admin/metrics and each `event: metrics` of /admin/metrics/stream.
export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}
export interface MetricsBucket {
  t: number;
  requests: number;
  errors: number;
  p95_ms: number | null;
  cost_usd: number;
  input_tokens: number;
  output_tokens: number;
}
export interface Metrics {
  generated_at: number;
  window_seconds: number;
  scope: string;
  requests_total: number;
  requests_per_second: number;
  error_rate: number;
  errors_by_class: Record<string, number>;
  latency_ms: Percentiles;
  routing_overhead_ms: Percentiles;
  tokens_per_minute: { input: number; output: number };
  cost_usd_per_minute: number;
  by_tier: Record<string, number>;
  by_group: Record<string, number>;
  by_model: Record<string, number>;
  by_strategy: Record<string, number>;
  breakers: { deployment: string; state: string }[];
  queue_depth: number;
  in_flight: number;
  series: MetricsBucket[];
}

// API.md: the decision log.
export interface Candidate {
  deployment: string;
  model?: string | null;
  score?: number | null;
  [field: string]: unknown;
}
export interface Decision {
  request_id: string;
  time: number;
  route: string | null;
  group: string | null;
  strategy: string | null;
  tier: string | null;
  served_model: string | null;
  deployment: string | null;
  reason: string | null;
  candidates: Candidate[];
  fallbacks: unknown[];
  attempts: number;
  status: number;
  outcome: string;
  error_code: string | null;
  latency_ms: number | null;
  routing_overhead_ms: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cost_usd: number | null;
  key_id: string | null;
  team: string | null;
  user: string | null;
  experiment: string | null;
  arm: string | null;
  prompt: string | null;
}

// API.md: configuration.
export interface ConfigError {
  path: string;
  message: string;
}
export interface ConfigView {
  version: number;
  source: string;
  yaml: string;
  hot_reload: boolean;
}
export interface ConfigValidation {
  valid: boolean;
  errors: ConfigError[];
}
export interface ConfigDiff {
  diff: string;
  changes: { path: string; old: unknown; new: unknown }[];
  errors: ConfigError[];
}
