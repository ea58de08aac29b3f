// The admin key lives in sessionStorage only (gone when the tab closes), is sent as an
// Authorization header, and never appears in a URL, a log line or the DOM.
const STORAGE_KEY = "routeiq.admin-key";
export const LOGGED_OUT_EVENT = "routeiq:logged-out";

export function adminKey(): string | null {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function rememberKey(key: string): void {
  sessionStorage.setItem(STORAGE_KEY, key);
}

/** Forget the key and tell the app (it shows the login page). `expired`: a 401 caused it. */
export function forgetKey(expired = false): void {
  sessionStorage.removeItem(STORAGE_KEY);
  window.dispatchEvent(new CustomEvent(LOGGED_OUT_EVENT, { detail: { expired } }));
}
