import { useEffect, useState } from "react";
import { ApiError, get, post, put } from "../api/client";
import type { ConfigDiff, ConfigError, ConfigValidation, ConfigView } from "../api/types";
import { Card, ErrorBox, message, Notice, PageHeader, Pill, useLoad } from "../components/common";

const VALIDATE_AFTER_MS = 600; // validate once typing pauses

function errorsOf(reason: unknown): ConfigError[] | null {
  if (!(reason instanceof ApiError)) return null;
  const body = reason.body as { errors?: ConfigError[]; error?: { errors?: ConfigError[] } } | null;
  return body?.error?.errors ?? body?.errors ?? null;
}

export function Config() {
  const { data, error, reload } = useLoad((signal) => get<ConfigView>("/admin/config", undefined, signal), []);
  const [text, setText] = useState<string | null>(null);
  const [validation, setValidation] = useState<ConfigValidation | null>(null);
  const [diff, setDiff] = useState<ConfigDiff | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const yaml = text ?? data?.yaml ?? "";
  const edited = data !== null && text !== null && text !== data.yaml;

  useEffect(() => {
    if (!edited) { setValidation(null); return; }
    const timer = setTimeout(() => {
      post<ConfigValidation>("/admin/config/validate", { yaml }).then(setValidation).catch(setFailure);
    }, VALIDATE_AFTER_MS);
    return () => clearTimeout(timer);
  }, [yaml, edited]);

  const showDiff = async () => {
    setFailure(null);
    try { setDiff(await post<ConfigDiff>("/admin/config/diff", { yaml })); } catch (reason) { setFailure(reason); }
  };
  const apply = async () => {
    setFailure(null);
    setNotice(null);
    setBusy(true);
    try {
      const answer = await put<{ version: number; applied: boolean }>("/admin/config", { yaml });
      setNotice(`Applied: config version ${answer.version}, on every worker and replica.`);
      setText(null);
      setDiff(null);
      reload();
    } catch (reason) {
      const errors = errorsOf(reason);
      if (errors) setValidation({ valid: false, errors });
      setFailure(reason);
    } finally {
      setBusy(false);
    }
  };

  const errors = validation?.errors ?? [];
  return (
    <>
      <PageHeader title="Config">
        {data ? <span className="muted small">version {data.version} · from {data.source} · hot reload {data.hot_reload ? "on" : "off"}</span> : null}
        <button type="button" onClick={() => { setText(null); setDiff(null); reload(); }}>Reload</button>
      </PageHeader>
      {notice ? <Notice kind="ok">{notice}</Notice> : null}
      <ErrorBox error={failure && !errorsOf(failure) ? failure : error} />
      {data ? (
        <div className="config-layout">
          <Card title="Effective configuration (YAML, secrets shown as ***)">
            <label htmlFor="config-yaml" className="visually-hidden">Configuration YAML</label>
            <textarea id="config-yaml" spellCheck={false} value={yaml} rows={28} aria-invalid={errors.length > 0}
              aria-describedby="config-status" onChange={(event) => setText(event.target.value)} />
            <div id="config-status" className="config-status" aria-live="polite">
              {!edited ? <span className="muted">Unchanged. Edit to validate, diff and apply.</span>
                : validation === null ? <span className="muted">Validating…</span>
                : validation.valid ? <Pill tone="ok">valid</Pill>
                : <Pill tone="bad">{errors.length} error{errors.length === 1 ? "" : "s"}</Pill>}
            </div>
            {errors.length ? (
              <ul className="config-errors" data-testid="config-errors">
                {errors.map((item, index) => (
                  <li key={index}><code>{item.path || "(document)"}</code>{item.line ? ` (line ${item.line})` : ""}: {item.message}</li>
                ))}
              </ul>
            ) : null}
            <div className="buttons">
              <button type="button" onClick={showDiff} disabled={!edited}>Show diff</button>
              <button type="button" className="primary" onClick={apply} disabled={!edited || busy || validation?.valid === false}>
                {busy ? "Applying…" : "Apply"}</button>
              <button type="button" onClick={() => { setText(null); setDiff(null); }} disabled={!edited}>Discard changes</button>
            </div>
          </Card>
          {diff ? (
            <Card title="Diff against the running config">
              {diff.changes.length === 0 ? <p className="muted">No change.</p> : (
                <ul className="small">{diff.changes.map((change) => <li key={change.path}><code>{change.path}</code>: {JSON.stringify(change.old)} → {JSON.stringify(change.new)}</li>)}</ul>
              )}
              <pre className="code diff" data-testid="config-diff">{diff.diff.split("\n").map((line, index) => (
                <span key={index} className={line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : undefined}>{line}{"\n"}</span>
              ))}</pre>
            </Card>
          ) : null}
        </div>
      ) : error ? null : <p className="muted">Loading…</p>}
      {failure && errorsOf(failure) ? <div className="error" role="alert">Not applied: {message(failure)}. The running config keeps serving.</div> : null}
    </>
  );
}
