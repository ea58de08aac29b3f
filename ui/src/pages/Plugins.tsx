import { useState } from "react";
import { get, post } from "../api/client";
import type { PluginView } from "../api/types";
import { Card, ErrorBox, Notice, PageHeader, Pill, useLoad } from "../components/common";

export function Plugins() {
  const { data, error, reload } = useLoad(
    (signal) => get<{ plugins: PluginView[]; available: unknown[]; counters?: Record<string, unknown> }>("/admin/plugins", undefined, signal), []);
  const [failure, setFailure] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const toggle = async (plugin: PluginView) => {
    setFailure(null);
    const action = plugin.enabled === false ? "enable" : "disable";
    try {
      await post(`/admin/plugins/${encodeURIComponent(plugin.name)}/${action}`);
      setNotice(`${plugin.name} ${action}d on every worker`);
      reload();
    } catch (reason) {
      setFailure(reason);
    }
  };

  return (
    <>
      <PageHeader title="Plugins"><button type="button" onClick={reload}>Refresh</button></PageHeader>
      {notice ? <Notice kind="ok">{notice}</Notice> : null}
      <ErrorBox error={failure ?? error} />
      <Card title="Configured plugins">
        {data && data.plugins.length === 0 ? <p className="muted">No plugin is configured (<code>routeiq.plugins</code>).</p> : (
          <table className="table" data-testid="plugins">
            <thead><tr><th scope="col">Plugin</th><th scope="col">State</th><th scope="col">Health</th><th scope="col">Hooks</th>
              <th scope="col">Counters</th><th scope="col">Action</th></tr></thead>
            <tbody>
              {(data?.plugins ?? []).map((plugin) => (
                <tr key={plugin.name}>
                  <td><strong>{plugin.name}</strong> <span className="muted small">{plugin.version}</span>
                    <div className="muted small">{plugin.source} · on failure: {plugin.failure_mode}</div></td>
                  <td><Pill tone={plugin.enabled === false ? "muted" : "ok"}>{plugin.enabled === false ? "disabled" : "enabled"}</Pill></td>
                  <td><Pill tone={plugin.health?.status === "ok" ? "ok" : plugin.health?.status === "down" ? "bad" : "warn"}>{plugin.health?.status ?? "?"}</Pill>
                    {plugin.health?.detail ? <div className="muted small">{plugin.health.detail}</div> : null}</td>
                  <td className="small">{(plugin.hooks ?? []).join(", ")}</td>
                  <td className="small">{Object.entries(plugin.counters ?? {}).map(([name, value]) => `${name}: ${value}`).join(" · ")}</td>
                  <td>{plugin.enabled === undefined ? <span className="muted small">n/a</span> : (
                    <button type="button" onClick={() => toggle(plugin)} aria-label={`${plugin.enabled ? "Disable" : "Enable"} ${plugin.name}`}>
                      {plugin.enabled ? "Disable" : "Enable"}</button>)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
      {data ? <Card title="Available"><p className="small">{data.available.map((name) => String(typeof name === "object" && name ? (name as { name?: string }).name : name)).join(", ")}</p></Card> : null}
    </>
  );
}
