// Each live arm's estimate of the primary metric over time (the API's series, a point every 5 s),
// with its fixed-sample interval as a band. Hand-drawn SVG like components/charts.tsx.
import { useEffect, useRef, useState } from "react";
import { metricOf } from "./format";
import type { SeriesPoint } from "./types";

export const ARM_COLORS = ["#0b5cad", "#7a3db8", "#1a7f37", "#b45309", "#0e7490", "#be185d"];

export function armColor(index: number): string {
  return ARM_COLORS[index % ARM_COLORS.length];
}

export function EstimateChart({ series, arms, metric, height = 200 }: {
  series: SeriesPoint[]; arms: string[]; metric: string; height?: number;
}) {
  const figure = useRef<HTMLElement>(null);
  const [width, setWidth] = useState(640);
  useEffect(() => {
    const element = figure.current;
    if (!element) return;
    const observer = new ResizeObserver(([entry]) => setWidth(Math.max(200, Math.round(entry.contentRect.width))));
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  const spec = metricOf(metric);
  const label = `${spec.label}: estimate per arm over time`;
  const numbers = series.flatMap((point) =>
    arms.flatMap((arm) => {
      const at = point.arms[arm];
      return at ? [at.estimate, at.low, at.high] : [];
    }),
  ).filter((number): number is number => number !== null && Number.isFinite(number));
  if (series.length < 2 || numbers.length === 0) {
    return (
      <figure className="chart" ref={figure} data-testid="estimate-chart">
        <figcaption><span>{label}</span></figcaption>
        <p className="muted small">The chart fills in as the estimates are recorded (a point every 5 seconds while the experiment runs).</p>
      </figure>
    );
  }
  let low = Math.min(...numbers);
  let high = Math.max(...numbers);
  if (high - low < 1e-12) { const margin = Math.abs(high) * 0.1 || 1; low -= margin; high += margin; }
  const ticks = [0, 0.5, 1].map((share) => low + (high - low) * share);
  // The axis is as wide as its longest label (11px text: ~6.5px a character).
  const pad = { left: Math.max(44, Math.ceil(Math.max(...ticks.map((at) => spec.format(at).length)) * 6.5) + 12), right: 10, top: 10, bottom: 22 };
  const t0 = series[0].at;
  const t1 = series[series.length - 1].at;
  const x = (t: number) => pad.left + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad.left - pad.right);
  const y = (v: number) => pad.top + (1 - (v - low) / (high - low)) * (height - pad.top - pad.bottom);
  const span = t1 - t0;
  const ago = span < 90 ? `${Math.round(span)} s` : `${Math.round(span / 60)} min`;
  return (
    <figure className="chart" ref={figure} data-testid="estimate-chart">
      <figcaption><span>{label}</span><span className="small">shaded: 95% interval</span></figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img"
        aria-label={`${label}, ${series.length} points over the last ${ago}`}>
        {ticks.map((at) => {
          return (
            <g key={at}>
              <line x1={pad.left} x2={width - pad.right} y1={y(at)} y2={y(at)} className="grid" />
              <text x={pad.left - 6} y={y(at) + 4} textAnchor="end" className="tick">{spec.format(at)}</text>
            </g>
          );
        })}
        {arms.map((arm, index) => {
          const points = series.filter((point) => point.arms[arm]?.estimate !== null && point.arms[arm]?.estimate !== undefined);
          const banded = points.filter((point) => point.arms[arm].low !== null && point.arms[arm].high !== null);
          const band = banded.length > 1
            ? banded.map((point, at) => `${at ? "L" : "M"}${x(point.at).toFixed(1)},${y(point.arms[arm].high as number).toFixed(1)}`).join("") +
              [...banded].reverse().map((point) => `L${x(point.at).toFixed(1)},${y(point.arms[arm].low as number).toFixed(1)}`).join("") + "Z"
            : "";
          const line = points.map((point, at) => `${at ? "L" : "M"}${x(point.at).toFixed(1)},${y(point.arms[arm].estimate as number).toFixed(1)}`).join("");
          const last = points[points.length - 1];
          return (
            <g key={arm}>
              {band ? <path d={band} fill={armColor(index)} opacity={0.12} /> : null}
              <path d={line} fill="none" stroke={armColor(index)} strokeWidth={2} />
              {last ? <circle cx={x(last.at)} cy={y(last.arms[arm].estimate as number)} r={3} fill={armColor(index)} /> : null}
            </g>
          );
        })}
        <text x={pad.left} y={height - 5} className="tick">−{ago}</text>
        <text x={width - pad.right} y={height - 5} textAnchor="end" className="tick">now</text>
      </svg>
      <ul className="exp-legend" aria-label="Arms">
        {arms.map((arm, index) => (
          <li key={arm}><span className="exp-swatch" style={{ background: armColor(index) }} aria-hidden="true" />{arm}</li>
        ))}
      </ul>
    </figure>
  );
}
