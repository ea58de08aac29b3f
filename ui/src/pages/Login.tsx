import { useState, type FormEvent } from "react";
import { rememberKey } from "../api/auth";
import { ApiError, verifyKey } from "../api/client";
import { message } from "../components/common";

export function Login({ expired, onLoggedIn }: { expired: boolean; onLoggedIn: () => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await verifyKey(key.trim());
      rememberKey(key.trim());
      setKey("");
      onLoggedIn();
    } catch (reason) {
      setError(reason instanceof ApiError && reason.status === 401 ? "That is not an admin key." : message(reason));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">RouteIQ admin</h1>
        <p className="muted">Sign in with an admin key (one of <code>ROUTEIQ_ADMIN_KEYS</code>).</p>
        {expired ? <div className="notice notice-warn" role="status">Your session ended: sign in again.</div> : null}
        <label htmlFor="admin-key">Admin key</label>
        <input id="admin-key" name="admin-key" type="password" autoComplete="current-password" autoFocus
          required value={key} onChange={(event) => setKey(event.target.value)} />
        {error ? <div className="error" role="alert">{error}</div> : null}
        <button type="submit" className="primary" disabled={busy || !key.trim()}>{busy ? "Checking…" : "Sign in"}</button>
        <p className="muted small">The key stays in this tab (session storage) and is sent only as a header.</p>
      </form>
    </main>
  );
}
