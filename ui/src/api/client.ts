import { adminKey, forgetKey } from "./auth";

/** An error answer from the gateway, read from its OpenAI envelope {"error": {...}}. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | null;
  readonly param: string | null;
  readonly body: unknown;

  constructor(status: number, message: string, code: string | null, param: string | null, body: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
    this.body = body;
  }
}

type Query = Record<string, string | number | boolean | string[] | null | undefined>;

export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (Array.isArray(value)) value.forEach((item) => params.append(name, item));
    else if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export function authHeaders(): Record<string, string> {
  const key = adminKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function errorFrom(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const error = (body as { error?: { message?: string; code?: string; param?: string } } | null)?.error;
  const detail = (body as { detail?: unknown } | null)?.detail;
  const message =
    error?.message ?? (typeof detail === "string" ? detail : `${response.status} ${response.statusText}`);
  return new ApiError(response.status, message, error?.code ?? null, error?.param ?? null, body);
}

/** Call the admin API with the session's key. A 401 logs out (the app returns to the login page). */
export async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
  });
  if (response.status === 401) {
    forgetKey(true);
    throw await errorFrom(response);
  }
  if (!response.ok) throw await errorFrom(response);
  return (await response.json()) as T;
}

export const get = <T>(path: string, query?: Query, signal?: AbortSignal) => api<T>("GET", withQuery(path, query), undefined, signal);
export const post = <T>(path: string, body: unknown = {}) => api<T>("POST", path, body);
export const put = <T>(path: string, body: unknown) => api<T>("PUT", path, body);

/** Check a key without keeping it: POST /admin/auth/verify (a 401 here is just a wrong key). */
export async function verifyKey(key: string): Promise<{ valid: boolean; role: string }> {
  const response = await fetch("/admin/auth/verify", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${key}` },
    body: JSON.stringify({ api_key: key }),
    cache: "no-store",
  });
  if (!response.ok) throw await errorFrom(response);
  return (await response.json()) as { valid: boolean; role: string };
}
