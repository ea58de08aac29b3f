import { useEffect, useState } from "react";
import { followEvents, type StreamState } from "../api/sse";
import type { Metrics } from "../api/types";
import { BarList, LineChart } from "../components/charts";
import { Card, ms, num, PageHeader, pct, Pill, usd, when } from "../components/common";

const STREAM = "/admin/metrics/stream";

/** The latest snapshot from the live stream (fetch-based SSE: the key goes in a header). */
function useMetricsStream() {
  const [metrics, setMetrics] = useState<Metrics | null>(null);
  const [state, setState] = useState<StreamState>("connecting");
  const [detail, setDetail] = useState<string | undefined>();
  useEffect(() => {
    const controller = new AbortController();
    void followEvents(
      STREAM,
      (event) => {
        if (event.event !== "metrics") return;
        try {
          setMetrics(JSON.parse(event.data) as Metrics);
        } catch {
          /* a torn event: the next one replaces it */
        }
      },
      (next, why) => { setState(next); setDetail(why); },
      controller.signal,
    );
    return () => controller.abort();
  }, []);
  return { metrics, state, detail };
}

function StreamBadge({ state, detail }: { state: StreamState; detail?: string }) {
  const tone = state === "open" ? "ok" : state === "retrying" ? "warn" : "muted";
  const text = state === "open" ? "live" : state === "retrying" ? "reconnecting" : state;
  return <span title={detail}><Pill tone={tone}>{text}</Pill></span>;
}

function Stat({ label, value, hint, wide }: { label: string; value: string; hint?: string; wide?: boolean }) {
  return (
    <div className={wide ? "stat wide-stat" : "stat"}>
      <dt>{label}</dt>
      <dd>{value}</dd>
      {hint ? <dd className="muted small">{hint}</dd> : null}
    </div>
  );
}

export function Dashboard() {
  const { metrics, state, detail } = useMetricsStream();
  const series = metrics?.series ?? [];
  const bucketSeconds = series.length > 1 ? series[1].t - series[0].t : 10;
  const quiet = metrics !== null && metrics.requests_total === 0 && series.every((bucket) => bucket.requests === 0);

  return (
    <>
      <PageHeader title="Dashboard">
        <StreamBadge state={state} detail={detail} />
        {metrics ? <span className="muted small">{metrics.scope} · updated {when(metrics.generated_at)}</span> : null}
      </PageHeader>
      {state === "retrying" && !metrics ? (
        <div className="error" role="alert">Live metrics unavailable: {detail ?? "no answer"}. Retrying…</div>
      ) : null}
      {!metrics ? <p className="muted">Waiting for the first metrics…</p> : (
        <>
          {quiet ? (
            <div className="notice notice-info" role="status" data-testid="no-traffic">
              No traffic yet: charts fill in as soon as requests arrive.
            </div>
          ) : null}
          <dl className="stats" aria-label="Current figures" data-testid="stats">
            <Stat label="Requests / s" value={num(metrics.requests_per_second, 2)}
              hint={`${num(metrics.requests_total)} in the last ${Math.round(metrics.window_seconds / 60)} min`} />
            <Stat wide label="Latency p50 / p95 / p99"
              value={`${ms(metrics.latency_ms.p50)} / ${ms(metrics.latency_ms.p95)} / ${ms(metrics.latency_ms.p99)}`} />
            <Stat label="Routing overhead p95" value={ms(metrics.routing_overhead_ms.p95)} />
            <Stat label="Error rate" value={pct(metrics.error_rate)}
              hint={Object.entries(metrics.errors_by_class).map(([name, count]) => `${name}: ${count}`).join(", ") || undefined} />
            <Stat label="Cost / min" value={usd(metrics.cost_usd_per_minute)} />
            <Stat label="Tokens / min (in · out)"
              value={`${num(metrics.tokens_per_minute.input)} · ${num(metrics.tokens_per_minute.output)}`} />
            <Stat label="In flight · queued" value={`${num(metrics.in_flight)} · ${num(metrics.queue_depth)}`} />
          </dl>
          <div className="grid-2">
            <Card title="Request rate">
              <LineChart label="requests / s" points={series.map((b) => ({ t: b.t, v: b.requests / bucketSeconds }))} />
            </Card>
            <Card title="Latency">
              <LineChart label="p95 latency" unit="ms" color="var(--accent-2)" points={series.map((b) => ({ t: b.t, v: b.p95_ms }))} />
            </Card>
            <Card title="Errors">
              <LineChart label="error rate" unit="%" color="var(--bad)"
                points={series.map((b) => ({ t: b.t, v: b.requests ? (100 * b.errors) / b.requests : 0 }))} />
            </Card>
            <Card title="Cost">
              <LineChart label="cost per bucket" unit="USD" color="var(--accent-3)" points={series.map((b) => ({ t: b.t, v: b.cost_usd }))} />
            </Card>
          </div>
          <div className="grid-bars">
            <Card><BarList label="By tier" counts={metrics.by_tier} /></Card>
            <Card><BarList label="By served model" counts={metrics.by_model} /></Card>
            <Card><BarList label="By group" counts={metrics.by_group} /></Card>
            <Card><BarList label="By strategy" counts={metrics.by_strategy} /></Card>
            <Card><BarList label="By outcome" counts={metrics.by_outcome} /></Card>
          </div>
          <Card title="Circuit breakers">
            {metrics.breakers.length === 0 ? <p className="muted">No breaker state yet (breakers off, or no deployment called).</p> : (
              <ul className="breakers">
                {metrics.breakers.map((breaker) => (
                  <li key={breaker.deployment}>
                    <code>{breaker.deployment}</code>{" "}
                    <Pill tone={breaker.state === "closed" ? "ok" : breaker.state === "open" ? "bad" : "warn"}>{breaker.state.replace("_", " ")}</Pill>
                  </li>
                ))}
              </ul>
            )}
          </Card>
        </>
      )}
    </>
  );
}
