import { useState } from "react";
import { get, post, put } from "../api/client";
import type { ConfigView, GatewayStatus, StrategyChange, StrategyResponse } from "../api/types";
import { Card, ErrorBox, message, Notice, PageHeader, Pill, useLoad } from "../components/common";

const LEARNED_PREFIX = "llmrouter-";
const NOT_TRAINED = new Set(["centroid", "cheapest-capable"]); // classifier strategies with no artifact

interface RoutingData {
  status: GatewayStatus;
  strategies: StrategyResponse;
  trained: Record<string, string>; // algorithm -> artifact directory (routeiq.learned_routers)
}

function trainedRouters(config: ConfigView | null): Record<string, string> {
  const routeiq = (config?.config as { routeiq?: { learned_routers?: Record<string, string> } } | undefined)?.routeiq;
  return routeiq?.learned_routers ?? {};
}

export function Routing() {
  const { data, error, reload, setData } = useLoad<RoutingData>(async (signal) => {
    const [status, strategies, config] = await Promise.all([
      get<GatewayStatus>("/admin/status", undefined, signal),
      get<StrategyResponse>("/admin/strategy", undefined, signal),
      get<ConfigView>("/admin/config", undefined, signal).catch(() => null), // only for the trained routers
    ]);
    return { status, strategies, trained: trainedRouters(config) };
  }, []);
  const [notice, setNotice] = useState<string | null>(null);
  const [failure, setFailure] = useState<unknown>(null);

  const change = async (strategy: string, group: string | null) => {
    setNotice(null);
    setFailure(null);
    try {
      const body: StrategyChange = { strategy, group };
      const answer = await put<{ active: StrategyResponse["active"]; version: number | null }>("/admin/strategy", body);
      if (data) setData({ ...data, strategies: { ...data.strategies, active: answer.active } });
      setNotice(`${group ?? "Default"} now routes with ${strategy}` +
        (answer.version === null ? " (this worker only: shared state unavailable)" : ` (change v${answer.version}, all workers)`));
    } catch (reason) {
      setFailure(reason);
    }
  };

  if (!data) return <><PageHeader title="Routing" /><ErrorBox error={error} />{error ? null : <p className="muted">Loading…</p>}</>;
  const { status, strategies } = data;
  const describe = (name: string) => strategies.available.find((spec) => spec.name === name)?.description ?? "";
  const learned = strategies.available.filter(
    (spec) => spec.name.startsWith(LEARNED_PREFIX) && !NOT_TRAINED.has(spec.name.slice(LEARNED_PREFIX.length)),
  );

  return (
    <>
      <PageHeader title="Routing">
        <span className="muted small">RouteIQ {status.version} · state: {status.state_backend}</span>
        <button type="button" onClick={reload}>Refresh</button>
      </PageHeader>
      {notice ? <Notice kind="ok">{notice}</Notice> : null}
      <ErrorBox error={failure} />
      <Card title="Strategy per group">
        <p className="muted small">A change applies at once on every worker and replica; it is audited.</p>
        <table className="table" data-testid="strategies">
          <thead><tr><th scope="col">Group</th><th scope="col">Strategy</th><th scope="col">What it does</th><th scope="col">Deployments</th></tr></thead>
          <tbody>
            <tr>
              <th scope="row"><em>default</em></th>
              <td><StrategySelect id="strategy-default" label="Default strategy" value={strategies.active.default}
                options={strategies.available.map((spec) => spec.name)} onChange={(name) => change(name, null)} /></td>
              <td>{describe(strategies.active.default)}</td>
              <td className="muted">every group without its own</td>
            </tr>
            {status.groups.map((group) => {
              const own = strategies.active.groups[group];
              const members = status.deployments.filter((deployment) => deployment.group === group);
              const healthy = members.filter((deployment) => deployment.healthy).length;
              return (
                <tr key={group}>
                  <th scope="row"><code>{group}</code></th>
                  <td><StrategySelect id={`strategy-${group}`} label={`Strategy of ${group}`} value={own ?? ""}
                    inherit={strategies.active.default} options={strategies.available.map((spec) => spec.name)}
                    onChange={(name) => change(name, group)} /></td>
                  <td>{describe(own ?? strategies.active.default)}</td>
                  <td><Pill tone={healthy === members.length ? "ok" : healthy ? "warn" : "bad"}>{healthy}/{members.length} healthy</Pill></td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </Card>
      <Card title="Deployments">
        <table className="table">
          <thead><tr><th scope="col">Deployment</th><th scope="col">Group</th><th scope="col">Model</th><th scope="col">Tier</th><th scope="col">Executor</th><th scope="col">Health</th><th scope="col">Circuit</th></tr></thead>
          <tbody>
            {status.deployments.map((deployment) => (
              <tr key={deployment.id}>
                <td><code>{deployment.id}</code></td><td>{deployment.group}</td><td>{deployment.model}</td>
                <td>{deployment.tier ?? "—"}</td><td>{deployment.executor}</td>
                <td><Pill tone={deployment.healthy ? "ok" : "bad"}>{deployment.healthy ? "healthy" : "unhealthy"}</Pill></td>
                <td><Pill tone={deployment.circuit === "closed" ? "ok" : deployment.circuit === "open" ? "bad" : "warn"}>{deployment.circuit}</Pill></td>
              </tr>
            ))}
          </tbody>
        </table>
      </Card>
      <TrainedRouters algorithms={learned.map((spec) => spec.name.slice(LEARNED_PREFIX.length))} trained={data.trained} />
    </>
  );
}

function StrategySelect({ id, label, value, inherit, options, onChange }: {
  id: string; label: string; value: string; inherit?: string; options: string[]; onChange: (name: string) => void;
}) {
  return (
    <>
      <label htmlFor={id} className="visually-hidden">{label}</label>
      <select id={id} value={value} onChange={(event) => event.target.value && onChange(event.target.value)}>
        {inherit !== undefined ? <option value="">default ({inherit})</option> : null}
        {options.map((name) => <option key={name} value={name}>{name}</option>)}
      </select>
    </>
  );
}

function TrainedRouters({ algorithms, trained }: { algorithms: string[]; trained: Record<string, string> }) {
  const [results, setResults] = useState<Record<string, string>>({});
  const reload = async (algo: string) => {
    setResults((seen) => ({ ...seen, [algo]: "reloading…" }));
    try {
      const answer = await post<{ sha256: string; path: string; version: number | null }>(`/admin/routers/${encodeURIComponent(algo)}/reload`, {});
      setResults((seen) => ({ ...seen, [algo]: `reloaded ${answer.path} (manifest ${answer.sha256.slice(0, 12)})` }));
    } catch (reason) {
      setResults((seen) => ({ ...seen, [algo]: message(reason) }));
    }
  };
  return (
    <Card title="Trained routers">
      <p className="muted small">Reload re-reads a router's artifact directory, verifies it and swaps it in on every worker;
        a bad artifact is refused and the old router keeps serving. Train one with <code>routeiq train --algo …</code>.</p>
      <table className="table">
        <thead><tr><th scope="col">Algorithm</th><th scope="col">Strategy</th><th scope="col">Artifact</th><th scope="col">Action</th><th scope="col">Result</th></tr></thead>
        <tbody>
          {algorithms.map((algo) => (
            <tr key={algo}>
              <td>{algo}</td><td><code>{LEARNED_PREFIX + algo}</code></td>
              <td className="small">{trained[algo] ? <code>{trained[algo]}</code> : <span className="muted">not configured</span>}</td>
              <td><button type="button" onClick={() => reload(algo)} disabled={!trained[algo]}>Reload {algo}</button></td>
              <td className="small" aria-live="polite">{results[algo] ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Card>
  );
}
