// The API's shapes, from the generated schema.d.ts (`make ui-types`, the app's OpenAPI schema)
// wherever a route declares its models. The older admin routes (status, strategy, keys, audit,
// policies, spend) answer plain dicts, untyped in the schema: those are written out here from
// their source (routeiq/api/admin/*.py).
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

export type PluginView = Schemas["PluginStatus"];
export type PluginList = ResponseOf<"/admin/plugins", "get">;

// The control plane of issue 13: typed by the API's own response models.
export type Metrics = ResponseOf<"/admin/metrics", "get">;
export type Decision = Schemas["Decision"];
export type DecisionPage = ResponseOf<"/admin/routing-decisions", "get">;
export type ConfigError = Schemas["ConfigError"];
export type ConfigView = ResponseOf<"/admin/config", "get">;
export type ConfigValidation = ResponseOf<"/admin/config/validate", "post">;
export type ConfigDiff = ResponseOf<"/admin/config/diff", "post">;
export type ConfigApplied = ResponseOf<"/admin/config", "put">;
export type AdminVerdict = ResponseOf<"/admin/auth/verify", "post">;
