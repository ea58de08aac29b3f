import { useState, type FormEvent } from "react";
import { get } from "../api/client";
import type { Decision, Page } from "../api/types";
import { Card, ErrorBox, ms, PageHeader, Pager, Pill, useCursorPages, useLoad, usd, when } from "../components/common";

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
    (signal) => get<Page<Decision>>("/admin/routing-decisions", {
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
                <th scope="col">Tier</th><th scope="col">Served by</th><th scope="col">Outcome</th><th scope="col">Latency</th><th scope="col">Cost</th></tr>
            </thead>
            <tbody>
              {(data?.data ?? []).map((decision) => (
                <tr key={decision.request_id} aria-selected={selected?.request_id === decision.request_id}>
                  <td className="nowrap">{when(decision.time)}</td>
                  <td><button type="button" className="link" onClick={() => setSelected(decision)}
                    aria-label={`Details of ${decision.request_id}`}><code>{decision.request_id.slice(0, 14)}</code></button></td>
                  <td>{decision.group ?? "—"}</td><td>{decision.strategy ?? "—"}</td><td>{decision.tier ?? "—"}</td>
                  <td>{decision.served_model ?? "—"}</td>
                  <td><OutcomePill decision={decision} /></td>
                  <td className="num">{ms(decision.latency_ms)}</td><td className="num">{usd(decision.cost_usd)}</td>
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
    ["Request id", decision.request_id], ["Time", when(decision.time)], ["Route", decision.route ?? "—"],
    ["Group", decision.group ?? "—"], ["Strategy", decision.strategy ?? "—"], ["Tier", decision.tier ?? "—"],
    ["Served model", decision.served_model ?? "—"], ["Deployment", decision.deployment ?? "—"],
    ["Attempts", String(decision.attempts)], ["Status", `${decision.status}${decision.error_code ? ` (${decision.error_code})` : ""}`],
    ["Latency", ms(decision.latency_ms)], ["Routing overhead", ms(decision.routing_overhead_ms)],
    ["Tokens in / out", `${decision.input_tokens ?? "—"} / ${decision.output_tokens ?? "—"}`], ["Cost", usd(decision.cost_usd)],
    ["Key / team / user", [decision.key_id, decision.team, decision.user].map((value) => value ?? "—").join(" / ")],
    ["Experiment / arm", `${decision.experiment ?? "—"} / ${decision.arm ?? "—"}`],
  ];
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
      <h3>Candidates</h3>
      <table className="table">
        <thead><tr><th scope="col">Deployment</th><th scope="col">Model</th><th scope="col">Score</th><th scope="col">Other</th></tr></thead>
        <tbody>
          {decision.candidates.map((candidate, index) => {
            const { deployment, model, score, ...rest } = candidate;
            return (
              <tr key={`${deployment}-${index}`} className={deployment === decision.deployment ? "chosen" : undefined}>
                <td><code>{deployment}</code>{deployment === decision.deployment ? " ✓" : ""}</td><td>{model ?? "—"}</td>
                <td className="num">{typeof score === "number" ? score.toFixed(4) : "—"}</td>
                <td className="small">{Object.keys(rest).length ? JSON.stringify(rest) : ""}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h3>Fallbacks</h3>
      {decision.fallbacks.length === 0 ? <p className="muted">None.</p> : <pre className="code">{JSON.stringify(decision.fallbacks, null, 2)}</pre>}
      {decision.prompt ? (<><h3>Prompt</h3><pre className="code">{decision.prompt}</pre></>) : null}
    </section>
  );
}
