import { useState, type FormEvent } from "react";
import { api, get, post } from "../api/client";
import type { KeyFields, Limit, SpendTotals, VirtualKey } from "../api/types";
import { Card, ErrorBox, message, Notice, PageHeader, Pager, Pill, useLoad, usd, when } from "../components/common";

const PAGE_SIZE = 50;

interface KeysData {
  keys: VirtualKey[];
  spend: SpendTotals["totals"];
}

function limitText(limit: Limit): string {
  const unit = limit.metric === "spend_usd" ? `$${limit.limit}` : `${limit.limit.toLocaleString()} ${limit.metric.replace("_", " ")}`;
  return `${unit} / ${limit.window}`;
}

export function Keys() {
  const [page, setPage] = useState(0);
  const [team, setTeam] = useState("");
  const [includeRevoked, setIncludeRevoked] = useState(false);
  const [secret, setSecret] = useState<{ key: VirtualKey; action: string } | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const [editing, setEditing] = useState<VirtualKey | null>(null);
  const { data, error, reload } = useLoad<KeysData>(async (signal) => {
    // Two calls for the whole page: a page of keys, then the spend of those keys in one aggregate
    // (never one call per row, never every key's totals).
    const keys = await get<{ data: VirtualKey[] }>("/admin/keys", { limit: PAGE_SIZE, offset: page * PAGE_SIZE, team, include_revoked: includeRevoked }, signal);
    if (keys.data.length === 0) return { keys: [], spend: {} };
    const spend = await get<SpendTotals>("/admin/spend", { by: "key_id", value: keys.data.map((key) => key.key_id) }, signal);
    return { keys: keys.data, spend: spend.totals };
  }, [page, team, includeRevoked]);

  const act = async (key: VirtualKey, action: "rotate" | "revoke") => {
    setFailure(null);
    if (action === "revoke" && !window.confirm(`Revoke ${key.name ?? key.key_id}? Its holder is refused at once.`)) return;
    try {
      const answer = await post<VirtualKey>(`/admin/keys/${encodeURIComponent(key.key_id)}/${action}`);
      if (action === "rotate") setSecret({ key: answer, action: "rotated" });
      reload();
    } catch (reason) {
      setFailure(reason);
    }
  };

  return (
    <>
      <PageHeader title="Keys"><button type="button" onClick={reload}>Refresh</button></PageHeader>
      {secret ? <SecretOnce shown={secret} onDone={() => setSecret(null)} /> : null}
      <CreateKey onCreated={(key) => { setSecret({ key, action: "created" }); setPage(0); reload(); }} />
      <ErrorBox error={failure ?? error} />
      {editing ? <LimitsEditor key={editing.key_id} virtualKey={editing} onDone={(changed) => { setEditing(null); if (changed) reload(); }} /> : null}
      <Card title="Virtual keys">
        <div className="toolbar">
          <label htmlFor="keys-team">Team</label>
          <input id="keys-team" type="text" value={team} onChange={(event) => { setTeam(event.target.value); setPage(0); }} />
          <label className="check"><input type="checkbox" checked={includeRevoked}
            onChange={(event) => { setIncludeRevoked(event.target.checked); setPage(0); }} /> Show revoked</label>
        </div>
        <table className="table" data-testid="keys">
          <thead><tr><th scope="col">Name</th><th scope="col">Key</th><th scope="col">Team / user</th><th scope="col">Status</th>
            <th scope="col">Limits</th><th scope="col">Spend</th><th scope="col">Created</th><th scope="col">Actions</th></tr></thead>
          <tbody>
            {(data?.keys ?? []).map((key) => {
              const spend = data?.spend[key.key_id];
              return (
                <tr key={key.key_id}>
                  <td>{key.name ?? <span className="muted">unnamed</span>}</td>
                  <td><code>{key.key_prefix}…</code><div className="muted small">{key.key_id}</div></td>
                  <td>{key.team ?? "—"}{key.user ? ` / ${key.user}` : ""}</td>
                  <td><Pill tone={key.status === "active" ? "ok" : "bad"}>{key.status}</Pill></td>
                  <td className="small">{key.limits.length ? key.limits.map(limitText).join(", ") : "none"}
                    {key.allowed_groups.length ? <div className="muted">groups: {key.allowed_groups.join(", ")}</div> : null}
                    {key.expires_at ? <div className="muted">expires {when(key.expires_at)}</div> : null}</td>
                  <td className="num">{usd(spend?.cost_usd ?? 0)}<div className="muted small">{(spend?.requests ?? 0).toLocaleString()} req</div></td>
                  <td className="nowrap small">{when(key.created_at)}</td>
                  <td className="nowrap">
                    {key.status === "active" ? (<>
                      <button type="button" onClick={() => setEditing(key)} aria-label={`Limits of ${key.name ?? key.key_id}`}>Limits</button>{" "}
                      <button type="button" onClick={() => act(key, "rotate")} aria-label={`Rotate ${key.name ?? key.key_id}`}>Rotate</button>{" "}
                      <button type="button" className="danger" onClick={() => act(key, "revoke")} aria-label={`Revoke ${key.name ?? key.key_id}`}>Revoke</button>
                    </>) : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        {data && data.keys.length === 0 ? <p className="muted">No keys.</p> : null}
        <Pager page={page} hasNext={(data?.keys.length ?? 0) === PAGE_SIZE} onFirst={() => setPage(0)}
          onPrevious={() => setPage(Math.max(0, page - 1))} onNext={() => setPage(page + 1)} />
      </Card>
    </>
  );
}

function SecretOnce({ shown, onDone }: { shown: { key: VirtualKey; action: string }; onDone: () => void }) {
  const [copied, setCopied] = useState(false);
  return (
    <section className="card secret" role="alertdialog" aria-labelledby="secret-title" data-testid="key-secret">
      <h2 id="secret-title">Key {shown.action}: copy the secret now</h2>
      <p>This is the only time the secret of <strong>{shown.key.name ?? shown.key.key_id}</strong> is shown.</p>
      <div className="secret-row">
        <input aria-label="Secret key" readOnly value={shown.key.key ?? ""} onFocus={(event) => event.target.select()} />
        <button type="button" onClick={() => navigator.clipboard?.writeText(shown.key.key ?? "").then(() => setCopied(true))}>
          {copied ? "Copied" : "Copy"}
        </button>
        <button type="button" className="primary" onClick={onDone}>Done</button>
      </div>
    </section>
  );
}

function CreateKey({ onCreated }: { onCreated: (key: VirtualKey) => void }) {
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const set = (name: string) => ({
    id: `key-${name}`, value: form[name] ?? "",
    onChange: (event: { target: { value: string } }) => setForm({ ...form, [name]: event.target.value }),
  });
  const number = (name: string) => (form[name] ? Number(form[name]) : undefined);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    const body: KeyFields = {
      name: form.name || undefined, team: form.team || undefined, user: form.user || undefined,
      rpm_limit: number("rpm"), tpm_limit: number("tpm"), budget_usd: number("budget"),
      allowed_groups: form.groups ? form.groups.split(",").map((group) => group.trim()).filter(Boolean) : undefined,
      expires_in_seconds: form.days ? Number(form.days) * 86400 : undefined,
    };
    try {
      onCreated(await post<VirtualKey>("/admin/keys", body));
      setForm({});
      setOpen(false);
    } catch (reason) {
      setError(message(reason));
    }
  };

  if (!open) return <p><button type="button" className="primary" onClick={() => setOpen(true)}>Create key</button></p>;
  return (
    <Card title="Create a key">
      <form className="form-grid" onSubmit={submit}>
        <div className="field"><label htmlFor="key-name">Name</label><input type="text" {...set("name")} /></div>
        <div className="field"><label htmlFor="key-team">Team</label><input type="text" {...set("team")} /></div>
        <div className="field"><label htmlFor="key-user">User</label><input type="text" {...set("user")} /></div>
        <div className="field"><label htmlFor="key-groups">Allowed groups (comma-separated)</label><input type="text" {...set("groups")} /></div>
        <div className="field"><label htmlFor="key-rpm">Requests / minute</label><input type="number" min={0} {...set("rpm")} /></div>
        <div className="field"><label htmlFor="key-tpm">Tokens / minute</label><input type="number" min={0} {...set("tpm")} /></div>
        <div className="field"><label htmlFor="key-budget">Budget (USD / month)</label><input type="number" min={0} step="0.01" {...set("budget")} /></div>
        <div className="field"><label htmlFor="key-days">Expires in (days)</label><input type="number" min={0} step="any" {...set("days")} /></div>
        {error ? <div className="error wide" role="alert">{error}</div> : null}
        <div className="field buttons wide">
          <button type="submit" className="primary">Create</button>
          <button type="button" onClick={() => setOpen(false)}>Cancel</button>
        </div>
      </form>
      <Notice>The secret is shown once, right after creation.</Notice>
    </Card>
  );
}

const METRICS: Limit["metric"][] = ["requests", "input_tokens", "output_tokens", "total_tokens", "spend_usd"];
const WINDOWS: Limit["window"][] = ["minute", "hour", "day", "month"];

/** Edit a key's limits as a whole (PATCH /admin/keys/{id} with the new list; takes effect everywhere). */
function LimitsEditor({ virtualKey, onDone }: { virtualKey: VirtualKey; onDone: (changed: boolean) => void }) {
  const [limits, setLimits] = useState<Limit[]>(virtualKey.limits.map((limit) => ({ ...limit })));
  const [error, setError] = useState<string | null>(null);
  const change = (index: number, patch: Partial<Limit>) =>
    setLimits(limits.map((limit, at) => (at === index ? { ...limit, ...patch } : limit)));
  const save = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      await api("PATCH", `/admin/keys/${encodeURIComponent(virtualKey.key_id)}`, { limits } satisfies KeyFields);
      onDone(true);
    } catch (reason) {
      setError(message(reason));
    }
  };
  return (
    <Card title={`Limits of ${virtualKey.name ?? virtualKey.key_id}`}>
      <form onSubmit={save} data-testid="limits-editor">
        {limits.length === 0 ? <p className="muted">No limit: only the gateway's own quotas apply.</p> : null}
        {limits.map((limit, index) => (
          <div className="toolbar" key={index}>
            <label htmlFor={`limit-${index}-limit`}>At most</label>
            <input id={`limit-${index}-limit`} type="number" min={0} step="any" required value={limit.limit}
              onChange={(event) => change(index, { limit: Number(event.target.value) })} />
            <label htmlFor={`limit-${index}-metric`} className="visually-hidden">Metric</label>
            <select id={`limit-${index}-metric`} value={limit.metric} onChange={(event) => change(index, { metric: event.target.value as Limit["metric"] })}>
              {METRICS.map((metric) => <option key={metric} value={metric}>{metric === "spend_usd" ? "USD spent" : metric.replace("_", " ")}</option>)}
            </select>
            <label htmlFor={`limit-${index}-window`}>per</label>
            <select id={`limit-${index}-window`} value={limit.window} onChange={(event) => change(index, { window: event.target.value as Limit["window"] })}>
              {WINDOWS.map((window) => <option key={window}>{window}</option>)}
            </select>
            <button type="button" onClick={() => setLimits(limits.filter((_, at) => at !== index))} aria-label={`Remove limit ${index + 1}`}>Remove</button>
          </div>
        ))}
        {error ? <div className="error" role="alert">{error}</div> : null}
        <div className="buttons">
          <button type="button" onClick={() => setLimits([...limits, { metric: "requests", window: "minute", limit: 60 }])}>Add a limit</button>
          <button type="submit" className="primary">Save limits</button>
          <button type="button" onClick={() => onDone(false)}>Cancel</button>
        </div>
      </form>
    </Card>
  );
}
