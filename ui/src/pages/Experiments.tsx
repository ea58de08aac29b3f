// A/B experiments between routing strategies (/admin/experiments, docs/experiments.md): the list,
// the create form, and the open experiment's live arm table, verdict, chart and actions.
import { useCallback, useState } from "react";
import { get } from "../api/client";
import type { GatewayStatus, StrategyResponse } from "../api/types";
import { Card, ErrorBox, Notice, PageHeader, Pill, shortWhen, useLoad } from "../components/common";
import { CreateExperiment } from "./experiments/CreateExperiment";
import { ExperimentView, stateTone } from "./experiments/ExperimentView";
import { metricOf } from "./experiments/format";
import type { Experiment, ExperimentList } from "./experiments/types";
import "./experiments/experiments.css";

interface Catalogue {
  status: GatewayStatus;
  strategies: StrategyResponse;
}

/** What the list can say of the outcome without a call per row: the verdict itself is read for
 *  the open experiment only. */
function outcome(experiment: Experiment, verdict: string | null): string {
  if (experiment.promoted_arm) return `promoted ${experiment.promoted_arm}`;
  if (experiment.stopped_reason) return experiment.stopped_reason;
  if (verdict) return `verdict: ${verdict.replace(/_/g, " ")}`;
  return experiment.state === "paused" ? "paused: nobody assigned" : "open it for the live verdict";
}

export function Experiments() {
  const list = useLoad<ExperimentList>((signal) => get<ExperimentList>("/admin/experiments", undefined, signal), []);
  const [creating, setCreating] = useState(false);
  const [open, setOpen] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [verdict, setVerdict] = useState<{ id: string; state: string | null } | null>(null);
  // The groups and the strategy catalogue (the Routing page's), for the create form only.
  const catalogue = useLoad<Catalogue | null>(async (signal) => {
    if (!creating) return null;
    const [status, strategies] = await Promise.all([
      get<GatewayStatus>("/admin/status", undefined, signal),
      get<StrategyResponse>("/admin/strategy", undefined, signal),
    ]);
    return { status, strategies };
  }, [creating]);

  const experiments = list.data?.data ?? [];
  const shown = open ?? experiments.find((experiment) => experiment.state !== "stopped")?.id ?? experiments[0]?.id ?? null;
  const onVerdict = useCallback((state: string | null) => setVerdict(shown ? { id: shown, state } : null), [shown]);
  const replace = (changed: Experiment) => {
    if (!list.data) return;
    const known = list.data.data.some((experiment) => experiment.id === changed.id);
    list.setData({ data: known ? list.data.data.map((experiment) => (experiment.id === changed.id ? changed : experiment)) : [changed, ...list.data.data] });
  };

  return (
    <>
      <PageHeader title="Experiments">
        {creating ? null : <button type="button" className="primary" onClick={() => { setCreating(true); setNotice(null); }}>New experiment</button>}
        <button type="button" onClick={list.reload}>Refresh</button>
      </PageHeader>
      {notice ? <Notice kind="ok">{notice}</Notice> : null}
      <ErrorBox error={list.error} />
      {creating ? (
        catalogue.data ? (
          <CreateExperiment status={catalogue.data.status} strategies={catalogue.data.strategies}
            onCancel={() => setCreating(false)}
            onCreated={(experiment) => {
              replace(experiment);
              setOpen(experiment.id);
              setCreating(false);
              setNotice(`Experiment ${experiment.name || experiment.id} is running on ${experiment.group}.`);
            }} />
        ) : <Card title="New experiment"><ErrorBox error={catalogue.error} />{catalogue.error ? null : <p className="muted">Loading…</p>}</Card>
      ) : null}
      <Card title="All experiments">
        {experiments.length ? <table className="table exp-list" data-testid="experiments">
          <thead>
            <tr><th scope="col">Experiment</th><th scope="col">Group</th><th scope="col">State</th><th scope="col">Arms</th>
              <th scope="col">Primary metric</th><th scope="col">Outcome</th><th scope="col">Created</th><th scope="col"><span className="visually-hidden">Open</span></th></tr>
          </thead>
          <tbody>
            {experiments.map((experiment) => {
              const title = experiment.name || experiment.id;
              const isOpen = experiment.id === shown;
              return (
                <tr key={experiment.id} className={isOpen ? "exp-open" : undefined} aria-selected={isOpen}>
                  <td>{title}{experiment.name ? <div className="muted small"><code>{experiment.id}</code></div> : null}</td>
                  <td><code>{experiment.group}</code></td>
                  <td><Pill tone={stateTone(experiment.state)}>{experiment.state}</Pill></td>
                  <td className="small">{experiment.arms.map((arm) => (
                    <div key={arm.name}>{arm.name}: <code>{arm.strategy}</code>{arm.shadow ? " (shadow)" : ` ×${arm.weight}`}</div>
                  ))}</td>
                  <td className="small">{metricOf(experiment.primary).label}</td>
                  <td className="small">{outcome(experiment, isOpen && verdict?.id === experiment.id ? verdict.state : null)}</td>
                  <td className="nowrap small">{shortWhen(experiment.created_at)}</td>
                  <td>{isOpen ? <span className="muted small">shown below</span> :
                    <button type="button" onClick={() => setOpen(experiment.id)} aria-label={`Open ${title}`}>Open</button>}</td>
                </tr>
              );
            })}
          </tbody>
        </table> : null}
        {list.data && experiments.length === 0 ? (
          <p className="muted">No experiment yet. <strong>New experiment</strong> splits a group's traffic between routing
            strategies and tells you, with statistics that stay valid while you watch, whether one is better.</p>
        ) : null}
      </Card>
      {shown ? (
        <ExperimentView key={shown} id={shown} onVerdict={onVerdict} onChanged={(changed) => { setNotice(null); replace(changed); }}
          onDeleted={(id) => {
            if (list.data) list.setData({ data: list.data.data.filter((experiment) => experiment.id !== id) });
            setOpen(null);
            setNotice(`Experiment ${id} deleted.`);
          }} />
      ) : null}
    </>
  );
}
