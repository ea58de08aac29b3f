import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { ApiError } from "../api/client";

export function message(error: unknown): string {
  if (error instanceof ApiError) return `${error.message}${error.code ? ` (${error.code})` : ""}`;
  return error instanceof Error ? error.message : String(error);
}

/** Load once (and again on `reload()` or when `deps` change); the latest call wins. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const loader = useRef(load);
  loader.current = load;
  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    loader
      .current(controller.signal)
      .then((value) => {
        if (!controller.signal.aborted) { setData(value); setError(null); }
      })
      .catch((reason: unknown) => {
        if (!controller.signal.aborted) setError(reason);
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoading(false);
      });
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((value) => value + 1), []);
  return { data, error, loading, reload, setData };
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const missing = error instanceof ApiError && error.status === 404 && error.code === null;
  return (
    <div className="error" role="alert">
      {missing ? "This endpoint is not available on this gateway version." : message(error)}
    </div>
  );
}

export function Notice({ children, kind = "info" }: { children: ReactNode; kind?: "info" | "ok" | "warn" }) {
  return (
    <div className={`notice notice-${kind}`} role="status">
      {children}
    </div>
  );
}

export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <header className="page-header">
      <h1>{title}</h1>
      <div className="actions">{children}</div>
    </header>
  );
}

export function Card({ title, children, className }: { title?: string; children: ReactNode; className?: string }) {
  return (
    <section className={`card ${className ?? ""}`} aria-label={title}>
      {title ? <h2>{title}</h2> : null}
      {children}
    </section>
  );
}

const dateFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

/** The time alone for today, the date and time otherwise (lists); `when` always gives both. */
export function shortWhen(epochSeconds: number | null | undefined): string {
  if (!epochSeconds) return "—";
  const date = new Date(epochSeconds * 1000);
  return date.toDateString() === new Date().toDateString() ? timeFormat.format(date) : dateFormat.format(date);
}

export function when(epochSeconds: number | null | undefined): string {
  return epochSeconds ? dateFormat.format(new Date(epochSeconds * 1000)) : "—";
}

export function num(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return value.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function usd(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  return value < 0.01 && value > 0 ? `$${value.toPrecision(2)}` : `$${value.toFixed(2)}`;
}

export function ms(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
}

export function pct(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(value < 0.1 ? 1 : 0)}%`;
}

export function Pill({ tone, children }: { tone: "ok" | "bad" | "warn" | "muted"; children: ReactNode }) {
  return <span className={`pill pill-${tone}`}>{children}</span>;
}

/** Cursor paging for the server-side paginated lists (audit, decisions, keys). */
export function Pager({ page, hasNext, onFirst, onNext, onPrevious }: {
  page: number; hasNext: boolean; onFirst: () => void; onNext: () => void; onPrevious: () => void;
}) {
  return (
    <nav className="pager" aria-label="Pagination">
      <button type="button" onClick={onFirst} disabled={page === 0}>First</button>
      <button type="button" onClick={onPrevious} disabled={page === 0}>Previous</button>
      <span aria-live="polite">Page {page + 1}</span>
      <button type="button" onClick={onNext} disabled={!hasNext}>Next</button>
    </nav>
  );
}

/** The cursors of the pages seen so far: going back needs no server support. */
export function useCursorPages<C>() {
  const [cursors, setCursors] = useState<(C | null)[]>([null]);
  const page = cursors.length - 1;
  return {
    page,
    cursor: cursors[page],
    next: (cursor: C) => setCursors((seen) => [...seen, cursor]),
    previous: () => setCursors((seen) => (seen.length > 1 ? seen.slice(0, -1) : seen)),
    first: () => setCursors([null]),
  };
}
