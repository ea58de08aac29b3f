// The API's shapes, from the generated schema.d.ts (`make ui-types`, the app's OpenAPI schema).
// The policies view is the one route that answers a plain dict, untyped in the schema: it is
// written out here from its source (routeiq/api/admin/policies.py).
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

export type StrategyInfo = Schemas["StrategyOption"];
export type ActiveStrategies = Schemas["ActiveStrategies"];
export type StrategyResponse = ResponseOf<"/admin/strategy", "get">;
export type DeploymentStatus = Schemas["DeploymentStatus"];
export type GatewayStatus = ResponseOf<"/admin/status", "get">;

// A key as listed, or as issued or rotated (then with its secret, shown that once).
export type VirtualKey = Schemas["KeyView"] & { key?: string };

export type SpendTotal = Schemas["SpendTotal"];
export type SpendTotals = ResponseOf<"/admin/spend", "get">;

export type AuditRecord = Schemas["AuditRecord"];

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
