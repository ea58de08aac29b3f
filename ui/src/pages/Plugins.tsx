import { useState } from "react";
import { get, post } from "../api/client";
import type { PluginList, PluginView } from "../api/types";
import { Card, ErrorBox, Notice, PageHeader, Pill, useLoad } from "../components/common";

export function Plugins() {
  const { data, error, reload } = useLoad(
    (signal) => get<PluginList>("/admin/plugins", undefined, signal), []);
  const [failure, setFailure] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const toggle = async (plugin: PluginView) => {
    setFailure(null);
    const action = plugin.enabled ? "disable" : "enable";
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
                    <div className="muted small">{plugin.source} · priority {plugin.priority} · timeout {plugin.timeout_ms} ms · on failure: {plugin.failure_mode}</div></td>
                  <td><Pill tone={plugin.enabled ? "ok" : "muted"}>{plugin.enabled ? "enabled" : "disabled"}</Pill></td>
                  <td><Pill tone={plugin.health.status === "ok" ? "ok" : plugin.health.status === "down" ? "bad" : "warn"}>{plugin.health.status}</Pill>
                    {plugin.health.detail ? <div className="muted small">{plugin.health.detail}</div> : null}</td>
                  <td className="small">{plugin.hooks.join(", ")}</td>
                  <td className="small"><Counters plugin={plugin} /></td>
                  <td><button type="button" onClick={() => toggle(plugin)} aria-label={`${plugin.enabled ? "Disable" : "Enable"} ${plugin.name}`}>
                      {plugin.enabled ? "Disable" : "Enable"}</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
      {data ? (
        <Card title="Available to configure (routeiq.plugins)">
          <ul className="small columns">{Object.entries(data.available).map(([name, origin]) => <li key={name}><code>{name}</code> <span className="muted">{origin}</span></li>)}</ul>
        </Card>
      ) : null}
    </>
  );
}

function Counters({ plugin }: { plugin: PluginView }) {
  const { scope, ...counts } = plugin.counters;
  return (
    <>
      {Object.entries(counts).map(([name, value]) => <span key={name} className="counter">{name} <strong>{value.toLocaleString()}</strong></span>)}
      <div className="muted">{scope === "cluster" ? "all workers" : "this worker (shared state away)"}</div>
    </>
  );
}
