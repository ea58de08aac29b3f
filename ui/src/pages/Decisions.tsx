import { useState, type FormEvent } from "react";
import { get } from "../api/client";
import type { Decision, DecisionPage } from "../api/types";
import { Card, ErrorBox, ms, shortWhen, PageHeader, Pager, Pill, useCursorPages, useLoad, usd, when } from "../components/common";

const PAGE_SIZE = 50;
const OUTCOMES = ["served", "failed", "refused", "shed"];
const TEXT_FILTERS = [
  ["request_id", "Request id"], ["group", "Group"], ["tier", "Tier"], ["strategy", "Strategy"],
  ["model", "Served model"], ["key_id", "Key id"], ["team", "Team"],
] as const;

type Filters = Record<string, string>;

function epoch(local: string): number | undefined {
  return local ? new Date(local).getTime() / 1000 : undefined;
}

export function Decisions() {
  const initial: Filters = Object.fromEntries(new URLSearchParams(window.location.search));
  const [draft, setDraft] = useState<Filters>(initial);
  const [filters, setFilters] = useState<Filters>(initial);
  const pages = useCursorPages<string>();
  const [selected, setSelected] = useState<Decision | null>(null);
  const { data, error, loading, reload } = useLoad(
    (signal) => get<DecisionPage>("/admin/routing-decisions", {
      ...filters, since: epoch(filters.since ?? ""), until: epoch(filters.until ?? ""),
      limit: PAGE_SIZE, cursor: pages.cursor,
    }, signal),
    [filters, pages.cursor],
  );

  const apply = (event: FormEvent) => {
    event.preventDefault();
    setSelected(null);
    pages.first();
    setFilters(Object.fromEntries(Object.entries(draft).filter(([, value]) => value)));
  };
  const clear = () => { setDraft({}); setFilters({}); pages.first(); setSelected(null); };
  const field = (name: string) => ({
    id: `filter-${name}`, name, value: draft[name] ?? "",
    onChange: (event: { target: { value: string } }) => setDraft({ ...draft, [name]: event.target.value }),
  });

  return (
    <>
      <PageHeader title="Decisions">
        <button type="button" onClick={reload} disabled={loading}>Refresh</button>
      </PageHeader>
      <Card>
        <form className="filters" onSubmit={apply} aria-label="Filter decisions">
          {TEXT_FILTERS.map(([name, label]) => (
            <div key={name} className="field">
              <label htmlFor={`filter-${name}`}>{label}</label>
              <input type="text" {...field(name)} />
            </div>
          ))}
          <div className="field">
            <label htmlFor="filter-outcome">Outcome</label>
            <select {...field("outcome")}>
              <option value="">any</option>
              {OUTCOMES.map((outcome) => <option key={outcome}>{outcome}</option>)}
            </select>
          </div>
          <div className="field"><label htmlFor="filter-since">From</label><input type="datetime-local" step={1} {...field("since")} /></div>
          <div className="field"><label htmlFor="filter-until">Until</label><input type="datetime-local" step={1} {...field("until")} /></div>
          <div className="field buttons">
            <button type="submit" className="primary">Apply filters</button>
            <button type="button" onClick={clear}>Clear</button>
          </div>
        </form>
      </Card>
      <ErrorBox error={error} />
      <div className={selected ? "split" : undefined}>
        <Card title="Routing decisions">
          <table className="table clickable" data-testid="decisions">
            <thead>
              <tr><th scope="col">Time</th><th scope="col">Request</th><th scope="col">Group</th><th scope="col">Strategy</th>
                <th scope="col" className="opt">Tier</th><th scope="col">Served by</th><th scope="col">Outcome</th><th scope="col">Latency</th><th scope="col" className="opt">Cost</th></tr>
            </thead>
            <tbody>
              {(data?.data ?? []).map((decision) => (
                <tr key={decision.request_id} aria-selected={selected?.request_id === decision.request_id}>
                  <td className="nowrap" title={when(decision.time)}>{shortWhen(decision.time)}</td>
                  <td><button type="button" className="link" onClick={() => setSelected(decision)}
                    aria-label={`Details of ${decision.request_id}`}><code>{decision.request_id.slice(0, 12)}</code></button></td>
                  <td>{decision.group ?? "—"}</td><td>{decision.strategy ?? "—"}</td><td className="opt">{decision.tier ?? "—"}</td>
                  <td>{decision.served_model ?? "—"}</td>
                  <td><OutcomePill decision={decision} /></td>
                  <td className="num">{ms(decision.latency_ms)}</td><td className="num opt">{usd(decision.cost_usd)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {data && data.data.length === 0 ? <p className="muted">No decision matches.</p> : null}
          <Pager page={pages.page} hasNext={Boolean(data?.next_cursor)} onFirst={pages.first}
            onPrevious={pages.previous} onNext={() => data?.next_cursor && pages.next(String(data.next_cursor))} />
        </Card>
        {selected ? <DecisionDetail decision={selected} onClose={() => setSelected(null)} /> : null}
      </div>
    </>
  );
}

function OutcomePill({ decision }: { decision: Decision }) {
  const tone = decision.outcome === "served" ? "ok" : decision.outcome === "shed" ? "warn" : "bad";
  return <Pill tone={tone}>{decision.outcome} {decision.status}</Pill>;
}

function DecisionDetail({ decision, onClose }: { decision: Decision; onClose: () => void }) {
  const rows: [string, string][] = [
    ["Request id", decision.request_id], ["Time", when(decision.time)], ["Route", decision.route],
    ["Requested", [...new Set([decision.requested_group, decision.profile].filter(Boolean))].join(" · ") || "—"],
    ["Group", decision.group ?? "—"], ["Strategy", decision.strategy ?? "—"], ["Tier", decision.tier ?? "—"],
    ["Served model", decision.served_model ?? "—"], ["Deployment", decision.deployment ?? "—"],
    ["Attempts", String(decision.attempts)],
    ["Status", `${decision.status}${decision.error_code ? ` (${decision.error_code})` : ""}`],
    ["Outcome detail", decision.outcome_detail || "—"],
    ["Latency", ms(decision.latency_ms)], ["Routing overhead", ms(decision.routing_overhead_ms)],
    ["Tokens in / out", `${decision.input_tokens} / ${decision.output_tokens}`], ["Cost", usd(decision.cost_usd)],
    ["Key / team / user", [decision.key_id, decision.team, decision.user].map((value) => value ?? "—").join(" / ")],
    ["Experiment / arm", `${decision.experiment ?? "—"} / ${decision.arm ?? "—"}`],
  ];
  const assessment = decision.assessment;
  const skipped = Object.entries(decision.skipped ?? {});
  return (
    <section className="card detail" aria-label="Decision detail" data-testid="decision-detail">
      <header className="detail-header">
        <h2>Decision <OutcomePill decision={decision} /></h2>
        <button type="button" onClick={onClose} aria-label="Close detail">Close</button>
      </header>
      <dl className="pairs">
        {rows.map(([label, value]) => <div key={label}><dt>{label}</dt><dd>{value}</dd></div>)}
      </dl>
      <h3>Reason</h3>
      <p>{decision.reason ?? "—"}</p>
      {assessment ? (
        <p className="small">Classifier <code>{assessment.scorer}</code>: {assessment.category}, confidence{" "}
          {assessment.confidence.toFixed(2)}, p(strong) {assessment.p_strong.toFixed(2)}</p>
      ) : null}
      <h3>Candidates</h3>
      <table className="table">
        <thead><tr><th scope="col">Deployment</th><th scope="col">Model</th><th scope="col">Tier</th><th scope="col">Score</th></tr></thead>
        <tbody>
          {decision.candidates.map((candidate) => (
            <tr key={candidate.deployment} className={candidate.chosen ? "chosen" : undefined}>
              <td><code>{candidate.deployment}</code>{candidate.chosen ? " ✓ chosen" : ""}</td><td>{candidate.model}</td>
              <td>{candidate.tier ?? "—"}</td>
              <td className="num">{typeof candidate.score === "number" ? candidate.score.toFixed(4) : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {skipped.length ? (<><h3>Skipped</h3><ul className="small">{skipped.map(([deployment, why]) => <li key={deployment}><code>{deployment}</code>: {why}</li>)}</ul></>) : null}
      <h3>Attempts</h3>
      {decision.attempted.length === 0 ? <p className="muted">None.</p> : (
        <ol className="small">{decision.attempted.map((attempt, index) => (
          <li key={index}><code>{attempt.deployment}</code> ({attempt.group}): {attempt.status}{attempt.error_code ? ` ${attempt.error_code}` : ""}</li>
        ))}</ol>
      )}
      <h3>Fallbacks</h3>
      {decision.fallbacks.length === 0 ? <p className="muted">None.</p> : <p>{decision.fallbacks.join(" → ")}</p>}
      {decision.prompt ? (<><h3>Prompt</h3><pre className="code">{decision.prompt}</pre></>) : null}
    </section>
  );
}
