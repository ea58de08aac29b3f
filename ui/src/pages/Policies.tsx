import { useState, type FormEvent } from "react";
import { get, post } from "../api/client";
import type { DescribedRequest, PolicyView } from "../api/types";
import { Card, ErrorBox, message, Notice, PageHeader, Pill, useLoad, when } from "../components/common";

// POST /admin/policies/test (an untyped dict in the schema; routeiq/governance/policy.py explain()).
interface PolicyVerdict {
  action: string;
  rule: string | null;
  reason: string;
  groups: string[];
  rules?: { name: string; action: string; matched: boolean; mismatch: string | null; decided: boolean }[];
}

export function Policies() {
  const { data, error, reload } = useLoad((signal) => get<PolicyView>("/admin/policies", undefined, signal), []);
  const [notice, setNotice] = useState<string | null>(null);
  const [failure, setFailure] = useState<unknown>(null);

  const reloadFile = async () => {
    setNotice(null);
    setFailure(null);
    try {
      const answer = await post<{ rules: number; sha256: string }>("/admin/policies/reload");
      setNotice(`Reloaded on every worker: ${answer.rules} rules (sha256 ${answer.sha256.slice(0, 12)})`);
      reload();
    } catch (reason) {
      setFailure(reason);
    }
  };

  return (
    <>
      <PageHeader title="Policies">
        {data?.enabled ? <button type="button" onClick={reloadFile}>Reload policy file</button> : null}
      </PageHeader>
      {notice ? <Notice kind="ok">{notice}</Notice> : null}
      <ErrorBox error={failure ?? error} />
      {data && !data.enabled ? <Notice>No policy file is configured (<code>routeiq.policy.file</code>): every request is allowed.</Notice> : null}
      {data?.enabled ? (
        <>
          <Card title="In force">
            <dl className="pairs">
              <div><dt>File</dt><dd><code>{data.file}</code></dd></div>
              <div><dt>sha256</dt><dd><code>{data.sha256?.slice(0, 16)}</code></dd></div>
              <div><dt>Loaded</dt><dd>{when(data.loaded_at)}</dd></div>
              <div><dt>Default action</dt><dd>{data.default_action}</dd></div>
              <div><dt>On failure</dt><dd>{data.failure_mode}</dd></div>
            </dl>
            <table className="table" data-testid="rules">
              <thead><tr><th scope="col">#</th><th scope="col">Name</th><th scope="col">Action</th><th scope="col">Rule</th></tr></thead>
              <tbody>
                {(data.rules ?? []).map((rule, index) => {
                  const { name, action, ...rest } = rule as { name?: string; action?: string };
                  return (
                    <tr key={index}><td>{index + 1}</td><td>{name ?? "—"}</td><td>{action ?? "—"}</td>
                      <td><code className="small">{JSON.stringify(rest)}</code></td></tr>
                  );
                })}
              </tbody>
            </table>
          </Card>
          <PolicyTest />
        </>
      ) : null}
    </>
  );
}

function PolicyTest() {
  const [form, setForm] = useState<Record<string, string>>({ route: "/v1/chat/completions", method: "POST" });
  const [result, setResult] = useState<PolicyVerdict | null>(null);
  const [error, setError] = useState<string | null>(null);
  const field = (name: string) => ({
    id: `policy-${name}`, value: form[name] ?? "",
    onChange: (event: { target: { value: string } }) => setForm({ ...form, [name]: event.target.value }),
  });
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    const body = Object.fromEntries(Object.entries(form).filter(([, value]) => value)) as DescribedRequest;
    try {
      setResult(await post<PolicyVerdict>("/admin/policies/test", body));
    } catch (reason) {
      setResult(null);
      setError(message(reason));
    }
  };
  return (
    <Card title="Test a request">
      <form className="form-grid" onSubmit={submit}>
        {[["team", "Team"], ["user", "User"], ["key_id", "Key id"], ["model", "Model (group)"], ["route", "Route"], ["method", "Method"], ["source_ip", "Source IP"]].map(
          ([name, label]) => <div className="field" key={name}><label htmlFor={`policy-${name}`}>{label}</label><input type="text" {...field(name)} /></div>,
        )}
        <div className="field buttons wide"><button type="submit" className="primary">Test</button></div>
      </form>
      {error ? <div className="error" role="alert">{error}</div> : null}
      {result ? (
        <div data-testid="policy-result" aria-live="polite">
          <p className="verdict">
            <Pill tone={result.action === "deny" ? "bad" : "ok"}>{result.action}</Pill>{" "}
            {result.rule ? <>by rule <strong>{result.rule}</strong></> : "by the default action"}: {result.reason}
          </p>
          <table className="table">
            <thead><tr><th scope="col">Rule</th><th scope="col">Action</th><th scope="col">Matched</th><th scope="col">Why not</th></tr></thead>
            <tbody>
              {(result.rules ?? []).map((rule, index) => (
                <tr key={index} className={rule.decided ? "chosen" : undefined}>
                  <td>{rule.name}{rule.decided ? " ✓ decided" : ""}</td><td>{rule.action}</td>
                  <td>{rule.matched ? "yes" : "no"}</td><td className="small">{rule.mismatch ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <details><summary>Full answer</summary><pre className="code">{JSON.stringify(result, null, 2)}</pre></details>
        </div>
      ) : null}
    </Card>
  );
}
