import { useState, type FormEvent } from "react";
import { get } from "../api/client";
import type { AuditRecord, Page } from "../api/types";
import { Card, ErrorBox, PageHeader, Pager, Pill, useCursorPages, useLoad, when } from "../components/common";

const PAGE_SIZE = 50;

export function Audit() {
  const [draft, setDraft] = useState<Record<string, string>>({});
  const [filters, setFilters] = useState<Record<string, string>>({});
  const pages = useCursorPages<number>();
  const { data, error, loading, reload } = useLoad(
    (signal) => get<Page<AuditRecord>>("/admin/audit", { ...filters, limit: PAGE_SIZE, cursor: pages.cursor }, signal),
    [filters, pages.cursor],
  );
  const apply = (event: FormEvent) => { event.preventDefault(); pages.first(); setFilters(Object.fromEntries(Object.entries(draft).filter(([, v]) => v))); };
  const field = (name: string) => ({
    id: `audit-${name}`, value: draft[name] ?? "",
    onChange: (event: { target: { value: string } }) => setDraft({ ...draft, [name]: event.target.value }),
  });
  return (
    <>
      <PageHeader title="Audit"><button type="button" onClick={reload} disabled={loading}>Refresh</button></PageHeader>
      <Card>
        <form className="filters" onSubmit={apply} aria-label="Filter the audit trail">
          <div className="field"><label htmlFor="audit-actor">Actor</label><input type="text" {...field("actor")} /></div>
          <div className="field"><label htmlFor="audit-action">Action</label><input type="text" placeholder="e.g. key.create" {...field("action")} /></div>
          <div className="field"><label htmlFor="audit-target">Target</label><input type="text" {...field("target")} /></div>
          <div className="field"><label htmlFor="audit-outcome">Outcome</label>
            <select {...field("outcome")}><option value="">any</option><option>success</option><option>failure</option><option>denied</option></select></div>
          <div className="field buttons"><button type="submit" className="primary">Apply filters</button></div>
        </form>
      </Card>
      <ErrorBox error={error} />
      <Card title="Control-plane actions">
        <table className="table" data-testid="audit">
          <thead><tr><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Target</th>
            <th scope="col">Outcome</th><th scope="col">Details</th></tr></thead>
          <tbody>
            {(data?.data ?? []).map((record, index) => (
              <tr key={record.id ?? index}>
                <td className="nowrap">{when(record.at)}</td><td><code>{record.actor}</code></td><td>{record.action}</td>
                <td>{record.target ?? "—"}</td>
                <td><Pill tone={record.outcome === "success" ? "ok" : "bad"}>{record.outcome}</Pill></td>
                <td className="small details"><Details details={record.details ?? {}} /></td>
              </tr>
            ))}
          </tbody>
        </table>
        {data && data.data.length === 0 ? <p className="muted">No action recorded.</p> : null}
        <Pager page={pages.page} hasNext={Boolean(data?.next_cursor)} onFirst={pages.first} onPrevious={pages.previous}
          onNext={() => data?.next_cursor && pages.next(Number(data.next_cursor))} />
      </Card>
    </>
  );
}

const SHORT_DETAILS = 140; // longer ones (a config change lists every section) open on demand

function Details({ details }: { details: Record<string, unknown> }) {
  const text = JSON.stringify(details);
  if (text.length <= SHORT_DETAILS) return <code>{text}</code>;
  return (
    <details>
      <summary><code>{text.slice(0, SHORT_DETAILS)}…</code></summary>
      <pre className="code">{JSON.stringify(details, null, 2)}</pre>
    </details>
  );
}
