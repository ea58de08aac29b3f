// How each primary metric's numbers read (the metrics of docs/experiments.md).
import type { Interval, MetricName } from "./types";

export interface MetricSpec {
  label: string;
  higherIsBetter: boolean;
  /** A value of the metric, as shown in the table and on the chart's axis. */
  format: (value: number) => string;
}

const decimal = (digits: number) => (value: number) =>
  value.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Per-request costs are often millionths of a dollar: those read as µ$ (0.000 00795 → 7.95 µ$). */
function dollars(value: number): string {
  const size = Math.abs(value);
  if (size === 0) return "$0";
  if (size >= 0.01) return `$${value.toFixed(4)}`;
  if (size >= 0.001) return `$${value.toPrecision(3)}`;
  return `${+(value * 1e6).toPrecision(3)} µ$`;
}

export const METRICS: Record<MetricName, MetricSpec> = {
  feedback_score: { label: "Feedback score (0..1)", higherIsBetter: true, format: decimal(3) },
  cost_per_request: { label: "Cost per request", higherIsBetter: false, format: dollars },
  error_rate: { label: "Error rate", higherIsBetter: false, format: (value) => `${(value * 100).toFixed(1)}%` },
  latency_p95: { label: "Latency p95", higherIsBetter: false, format: (value) => `${Math.round(value).toLocaleString()} ms` },
  quality_per_cost: { label: "Quality per cost (score / USD)", higherIsBetter: true, format: (value) => value.toPrecision(3) },
};

export const METRIC_NAMES = Object.keys(METRICS) as MetricName[];

export function metricOf(name: string): MetricSpec {
  return METRICS[name as MetricName] ?? { label: name, higherIsBetter: true, format: (value: number) => value.toPrecision(3) };
}

export function value(name: string, number: number | null | undefined): string {
  return number === null || number === undefined || !Number.isFinite(number) ? "—" : metricOf(name).format(number);
}

/** A difference keeps its sign: "+$0.0012", "−1.5%". */
export function signed(name: string, number: number | null | undefined): string {
  if (number === null || number === undefined || !Number.isFinite(number)) return "—";
  return `${number > 0 ? "+" : number < 0 ? "−" : "±"}${metricOf(name).format(Math.abs(number))}`;
}

export function range(name: string, interval: Interval | null | undefined, differences = false): string {
  if (!interval || interval.low === null || interval.high === null) return "";
  const show = differences ? signed : value;
  return `[${show(name, interval.low)}, ${show(name, interval.high)}]`;
}
