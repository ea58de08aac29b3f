// One experiment, live: the verdict, the arm table (every 2 s while the tab is visible), the chart
// of the estimate over time, and its actions (pause/resume, weights, stop, promote, delete).
import { useEffect, useRef, useState, type FormEvent } from "react";
import { api, ApiError, get, post } from "../../api/client";
import { Card, ErrorBox, message, Notice, Pill, pct, when } from "../../components/common";
import { armColor, EstimateChart } from "./EstimateChart";
import { metricOf, range, signed, value } from "./format";
import { usePolling } from "./usePolling";
import type { ArmRow, Experiment, ExperimentChanged, ExperimentDetail, ExperimentPatch, PromoteResult, Verdict } from "./types";

const REFRESH_MS = 2000;

export function stateTone(state: string): "ok" | "bad" | "warn" | "muted" {
  return state === "running" ? "ok" : state === "paused" ? "warn" : "muted";
}

export function ExperimentView({ id, onChanged, onDeleted, onVerdict }: {
  id: string; onChanged: (experiment: Experiment) => void; onDeleted: (id: string) => void;
  onVerdict: (state: Verdict["state"] | null) => void;
}) {
  // A stopped experiment's numbers no longer move: read once (and after an action), not every 2 s.
  const [finishedSeen, setFinishedSeen] = useState(false);
  const { data, error, refresh } = usePolling<ExperimentDetail>(
    (signal) => get<ExperimentDetail>(`/admin/experiments/${encodeURIComponent(id)}`, undefined, signal),
    finishedSeen ? 0 : REFRESH_MS, [id],
  );
  const verdictState = data?.verdict?.state ?? null;
  useEffect(() => onVerdict(verdictState), [verdictState, onVerdict]);
  // A change made elsewhere (another operator, a guardrail stop) reaches the list from here.
  const seen = useRef<number | null>(null);
  const changedAt = data?.experiment.updated_at ?? null;
  useEffect(() => {
    if (!data) return;
    setFinishedSeen(data.experiment.state === "stopped");
    if (seen.current !== null && seen.current !== changedAt) onChanged(data.experiment);
    seen.current = changedAt;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [changedAt, data?.experiment.state]);
  const [notice, setNotice] = useState<string | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const [editingWeights, setEditingWeights] = useState(false);

  const act = async (work: () => Promise<Experiment | null>, done: string) => {
    setNotice(null);
    setFailure(null);
    try {
      const experiment = await work();
      if (experiment) onChanged(experiment);
      setNotice(done);
      refresh();
    } catch (reason) {
      setFailure(reason);
    }
  };
  const patch = (body: ExperimentPatch) =>
    api<ExperimentChanged>("PATCH", `/admin/experiments/${encodeURIComponent(id)}`, body).then((answer) => answer.experiment);

  if (!data) {
    const gone = error instanceof ApiError && error.status === 404;
    return <Card title="Experiment">{gone ? <p className="muted">This experiment was deleted.</p> : <><ErrorBox error={error} />{error ? null : <p className="muted">Loading…</p>}</>}</Card>;
  }
  const { experiment, arms, verdict, series } = data;
  const live = arms.filter((arm) => !arm.shadow);
  const finished = experiment.state === "stopped";
  const title = experiment.name || experiment.id;

  const promote = (arm: ArmRow) => {
    if (!window.confirm(`Promote ${arm.name}? ${arm.strategy} becomes the strategy of group ${experiment.group} on every worker, and the experiment stops.`)) return;
    void act(async () => {
      const answer = await post<PromoteResult>(`/admin/experiments/${encodeURIComponent(id)}/promote`, { arm: arm.name });
      return answer.experiment;
    }, `Promoted ${arm.name}: group ${experiment.group} now routes with ${arm.strategy}.`);
  };
  const stop = () => {
    if (!window.confirm(`Stop ${title}? Nobody is assigned any more; the group routes with its own strategy. The results stay until you delete it.`)) return;
    void act(() => patch({ state: "stopped" }), "Stopped.");
  };
  const remove = async () => {
    if (!window.confirm(`Delete ${title} and its counters? This cannot be undone.`)) return;
    setFailure(null);
    try {
      await api("DELETE", `/admin/experiments/${encodeURIComponent(id)}`);
      onDeleted(id);
    } catch (reason) {
      setFailure(reason);
    }
  };

  return (
    <Card title={`Experiment ${title}`} className="exp-detail">
      <div className="toolbar" data-testid="experiment-actions">
        <Pill tone={stateTone(experiment.state)}>{experiment.state}</Pill>
        {finished ? null : <span className="muted small">live · refreshed every 2 s</span>}
        <span style={{ marginLeft: "auto", display: "flex", gap: "0.5rem", flexWrap: "wrap" }}>
          {experiment.state === "running" ? <button type="button" onClick={() => act(() => patch({ state: "paused" }), "Paused: nobody is assigned until you resume.")}>Pause</button> : null}
          {experiment.state === "paused" ? <button type="button" onClick={() => act(() => patch({ state: "running" }), "Resumed: the same units get the same arms.")}>Resume</button> : null}
          {!finished ? <button type="button" onClick={() => setEditingWeights(!editingWeights)} aria-expanded={editingWeights}>Change weights</button> : null}
          {!finished ? <button type="button" className="danger" onClick={stop}>Stop</button> : null}
          <button type="button" className="danger" onClick={remove}>Delete</button>
        </span>
      </div>
      {notice ? <Notice kind="ok">{notice}</Notice> : null}
      <ErrorBox error={failure ?? (error instanceof ApiError && error.status === 404 ? null : error)} />
      {editingWeights && !finished ? (
        <WeightsEditor arms={live} onCancel={() => setEditingWeights(false)}
          onSave={async (weights) => {
            const experiment = await patch({ weights });
            onChanged(experiment);
            setEditingWeights(false);
            setNotice("Weights changed: as few units as possible moved.");
            refresh();
          }} />
      ) : null}
      <dl className="pairs">
        <div><dt>Id</dt><dd><code>{experiment.id}</code></dd></div>
        <div><dt>Group</dt><dd><code>{experiment.group}</code></dd></div>
        <div><dt>Primary metric</dt><dd>{metricOf(experiment.primary).label}</dd></div>
        <div><dt>Control</dt><dd>{experiment.control}</dd></div>
        <div><dt>Unit</dt><dd>{experiment.unit.join(" → ")}</dd></div>
        <div><dt>Guardrails</dt><dd>{experiment.guardrails.length ? experiment.guardrails.map((guardrail) =>
          `${guardrail.metric}${guardrail.margin ? ` (margin ${guardrail.margin})` : ""}`).join(", ") : "none"}</dd></div>
        <div><dt>Design</dt><dd>α {experiment.alpha} · effect {pct(experiment.effect_size)} · min {experiment.min_samples_per_arm}/arm</dd></div>
        <div><dt>Created</dt><dd>{when(experiment.created_at)}</dd></div>
        <div><dt>Created by</dt><dd>{experiment.created_by ?? "—"}</dd></div>
      </dl>
      {experiment.stopped_reason ? <Notice kind={experiment.promoted_arm ? "ok" : "warn"}>Stopped: {experiment.stopped_reason}</Notice> : null}
      <VerdictBox verdict={verdict} experiment={experiment} onPromote={(name) => {
        const arm = arms.find((row) => row.name === name);
        if (arm) promote(arm);
      }} />
      <ArmTable arms={arms} verdict={verdict} experiment={experiment} onPromote={promote} />
      <EstimateChart series={series} arms={live.map((arm) => arm.name)} metric={experiment.primary} />
    </Card>
  );
}

function mostNeeded(verdict: Verdict): number | null {
  const needs = Object.values(verdict.needed_samples).filter((need): need is number => need !== null);
  return needs.length ? Math.max(...needs) : null;
}

function VerdictBox({ verdict, experiment, onPromote }: {
  verdict: Verdict | null; experiment: Experiment; onPromote: (arm: string) => void;
}) {
  if (!verdict) {
    return <div className="exp-verdict" data-testid="verdict"><p className="verdict-title">No verdict</p>
      <p className="muted small">The statistics cannot be computed for this design (see the gateway's log).</p></div>;
  }
  const effect = `${+(experiment.effect_size * 100).toPrecision(3)}%`;
  const needed = mostNeeded(verdict);
  const more = needed === null ? null : `${needed.toLocaleString()} more per arm for a ${effect} effect`;
  const titles: Record<Verdict["state"], string> = {
    not_enough_data: `Not enough data yet${more ? ` — ${more}` : ""}`,
    collecting: `Collecting: no arm is better yet${more ? ` — about ${more}` : ""}`,
    winner: `Winner: ${verdict.winner}`,
    no_difference: "No difference worth acting on",
    guardrail_stop: `Guardrail: ${verdict.guardrail?.arm ?? "an arm"} is worse on ${verdict.guardrail?.metric ?? "a guardrail"}`,
  };
  return (
    <div className={`exp-verdict ${verdict.state}`} data-testid="verdict" aria-live="polite">
      <p className="verdict-title">{titles[verdict.state]}</p>
      <p className="small">{verdict.state === "collecting"
        ? `Enough data to judge, but the anytime-valid intervals do not separate the arms yet. The figure is the further sample per arm that catches a ${effect} effect with ${pct(experiment.power)} probability.`
        : verdict.reason}
        {verdict.state === "not_enough_data" ? ` (minimum ${experiment.min_samples_per_arm} per arm before any verdict)` : ""}
        {verdict.state === "no_difference" ? ` (the ${effect} effect band): keep the cheaper or simpler arm.` : ""}
        {verdict.state === "winner" ? " (anytime-valid: safe to act on while you watch)." : ""}</p>
      {experiment.state === "stopped" ? <p className="small muted">The experiment is stopped: this is the verdict on the data it collected.</p> : null}
      {verdict.state === "winner" && verdict.winner && !experiment.promoted_arm ? (
        <p><button type="button" className="primary" onClick={() => onPromote(verdict.winner as string)}>Promote {verdict.winner}</button></p>
      ) : null}
    </div>
  );
}

function ArmTable({ arms, verdict, experiment, onPromote }: {
  arms: ArmRow[]; verdict: Verdict | null; experiment: Experiment; onPromote: (arm: ArmRow) => void;
}) {
  const metric = experiment.primary;
  return (
    <div style={{ overflowX: "auto" }}>
      <table className="table exp-table" data-testid="arms">
        <caption className="visually-hidden">Arms of {experiment.name || experiment.id}</caption>
        <thead>
          <tr>
            <th scope="col">Arm</th><th scope="col">Weight</th><th scope="col" className="num">Requests</th>
            <th scope="col" className="num">Errors</th><th scope="col" className="num">{metricOf(metric).label} <span className="sub">95% interval</span></th>
            <th scope="col" className="num">vs control <span className="sub">95% interval</span></th><th scope="col" className="num">P(best)</th>
            <th scope="col" className="num">Fallback served</th><th scope="col" className="num">Feedback</th><th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {arms.map((arm) => {
            const estimate = verdict?.estimates[arm.name];
            const difference = verdict?.differences[arm.name];
            const best = verdict?.p_best[arm.name];
            const isControl = arm.name === experiment.control;
            return (
              <tr key={arm.name} data-arm={arm.name} className={verdict?.winner === arm.name ? "exp-winner" : undefined}>
                <th scope="row" className="nowrap">
                  <span className="exp-swatch" style={{ background: arm.shadow ? "#8c959f" : armColor(arms.filter((row) => !row.shadow).indexOf(arm)) }}
                    aria-hidden="true" />{" "}{arm.name}{" "}
                  {isControl ? <Pill tone="muted">control</Pill> : null}{arm.shadow ? <Pill tone="muted">shadow</Pill> : null}
                  {experiment.promoted_arm === arm.name ? <Pill tone="ok">promoted</Pill> : null}
                  <span className="sub"><code>{arm.strategy}</code></span>
                </th>
                <td className="nowrap">{arm.shadow ? "—" : arm.weight.toLocaleString()}<span className="sub">{arm.shadow ? "never serves" : `${pct(arm.share)} of units`}</span></td>
                {arm.shadow ? (
                  <td className="num" colSpan={5}>
                    {arm.shadow_decisions ? <>{arm.shadow_decisions.decisions.toLocaleString()} decisions
                      <span className="sub">same deployment as served: {pct(arm.shadow_decisions.decisions ? arm.shadow_decisions.agrees / arm.shadow_decisions.decisions : null)}
                        {arm.shadow_decisions.errors ? ` · ${arm.shadow_decisions.errors} failed to decide` : ""}</span></> : "—"}
                  </td>
                ) : (<>
                  <td className="num" data-testid="requests">{arm.outcomes.requests.toLocaleString()}</td>
                  <td className="num">{arm.outcomes.errors.toLocaleString()}<span className="sub">{pct(arm.outcomes.error_rate)}</span></td>
                  <td className="num">{value(metric, estimate?.interval.estimate)}
                    <span className="sub">{range(metric, estimate?.interval)}{estimate ? ` n=${estimate.n.toLocaleString()}` : ""}</span></td>
                  <td className="num">{isControl ? <span className="muted">—</span> : (<>
                    {signed(metric, difference?.fixed.estimate)}
                    <span className="sub">{range(metric, difference?.fixed, true)}</span>
                    {difference?.sequence.low !== null && difference?.sequence.low !== undefined
                      ? <span className="sub" title="anytime-valid: what the stopping rule reads">anytime {range(metric, difference.sequence, true)}</span> : null}
                  </>)}</td>
                  <td className="num">{best === undefined ? "—" : pct(best)}</td>
                </>)}
                <td className="num">{arm.fallback.requests.toLocaleString()}
                  {arm.fallback.requests ? <span className="sub">{pct(arm.outcomes.requests ? arm.fallback.requests / arm.outcomes.requests : null)} of requests</span> : null}</td>
                <td className="num">{arm.feedback.n.toLocaleString()}<span className="sub">{arm.feedback.mean === null ? "no score yet" : `mean ${arm.feedback.mean.toFixed(2)}`}</span></td>
                <td>{experiment.promoted_arm ? null : (
                  <button type="button" onClick={() => onPromote(arm)} aria-label={`Promote ${arm.name}`}
                    className={verdict?.winner === arm.name ? "primary" : undefined}>Promote</button>
                )}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p className="muted small">Intervals are fixed-sample (descriptive); “anytime” is the confidence sequence the verdict
        reads, valid however often you look.{metric === "cost_per_request" ? " µ$: millionths of a dollar." : ""} P(best) is Bayesian and not a stopping rule. Requests a fallback served are
        counted in their arm and shown apart.</p>
    </div>
  );
}

function WeightsEditor({ arms, onSave, onCancel }: {
  arms: ArmRow[]; onSave: (weights: Record<string, number>) => Promise<void>; onCancel: () => void;
}) {
  const [weights, setWeights] = useState<Record<string, string>>(
    Object.fromEntries(arms.map((arm) => [arm.name, String(arm.weight)])),
  );
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      await onSave(Object.fromEntries(Object.entries(weights).map(([name, weight]) => [name, Number(weight)])));
    } catch (reason) {
      setError(message(reason));
    }
  };
  return (
    <form className="exp-weights" onSubmit={submit} aria-label="Change weights" data-testid="weights-editor">
      {arms.map((arm) => (
        <div className="field" key={arm.name}>
          <label htmlFor={`exp-weight-${arm.name}`}>Weight of {arm.name}</label>
          <input id={`exp-weight-${arm.name}`} type="number" min={0} step="any" value={weights[arm.name]}
            aria-invalid={error ? true : undefined} aria-describedby={error ? "exp-weights-error" : undefined}
            onChange={(event) => setWeights({ ...weights, [arm.name]: event.target.value })} />
        </div>
      ))}
      <div className="buttons">
        <button type="submit" className="primary">Save weights</button>
        <button type="button" onClick={onCancel}>Cancel</button>
      </div>
      {error ? <span className="field-error" id="exp-weights-error" role="alert" style={{ flexBasis: "100%" }}>{error}</span> : null}
    </form>
  );
}
