// Hand-drawn SVG charts: no chart library, a few hundred bytes each, readable at any width.
import { useEffect, useRef, useState } from "react";

export interface Point {
  t: number;
  v: number | null;
}

export function LineChart({ points, label, unit, color = "var(--accent)", height = 120 }: {
  points: Point[]; label: string; unit?: string; color?: string; height?: number;
}) {
  // Drawn at the figure's real width (no stretched text), measured as the layout changes.
  const figure = useRef<HTMLElement>(null);
  const [width, setWidth] = useState(480);
  useEffect(() => {
    const element = figure.current;
    if (!element) return;
    const observer = new ResizeObserver(([entry]) => setWidth(Math.max(160, Math.round(entry.contentRect.width))));
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  const pad = { left: 44, right: 8, top: 8, bottom: 18 };
  const values = points.map((point) => point.v).filter((value): value is number => value !== null);
  const max = Math.max(0, ...values);
  const top = max > 0 ? niceCeil(max) : 1;
  const t0 = points.length ? points[0].t : 0;
  const t1 = points.length ? points[points.length - 1].t : 1;
  const x = (t: number) => pad.left + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad.left - pad.right);
  const y = (v: number) => pad.top + (1 - v / top) * (height - pad.top - pad.bottom);
  let path = "";
  let pen = false;
  for (const point of points) {
    if (point.v === null) { pen = false; continue; }
    path += `${pen ? "L" : "M"}${x(point.t).toFixed(1)},${y(point.v).toFixed(1)}`;
    pen = true;
  }
  const last = values.length ? values[values.length - 1] : null;
  const lastPoint = [...points].reverse().find((point) => point.v !== null);
  return (
    <figure className="chart" ref={figure}>
      <figcaption>
        <span>{label}</span>
        <strong>{last === null ? "—" : `${formatTick(last)}${unit ? ` ${unit}` : ""}`}</strong>
      </figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img"
        aria-label={`${label}, last ${points.length} buckets`}>
        {[0, 0.5, 1].map((share) => (
          <g key={share}>
            <line x1={pad.left} x2={width - pad.right} y1={y(top * share)} y2={y(top * share)} className="grid" />
            <text x={pad.left - 6} y={y(top * share) + 4} textAnchor="end" className="tick">{formatTick(top * share)}</text>
          </g>
        ))}
        <path d={path} fill="none" stroke={color} strokeWidth={2} />
        {lastPoint && lastPoint.v !== null ? <circle cx={x(lastPoint.t)} cy={y(lastPoint.v)} r={3} fill={color} /> : null}
        <text x={pad.left} y={height - 4} className="tick">−{Math.round((t1 - t0) / 60)} min</text>
        <text x={width - pad.right} y={height - 4} textAnchor="end" className="tick">now</text>
      </svg>
    </figure>
  );
}

export function BarList({ counts, label }: { counts: Record<string, number>; label: string }) {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]).slice(0, 8);
  const total = entries.reduce((sum, [, count]) => sum + count, 0);
  return (
    <figure className="bars" aria-label={label}>
      <figcaption>{label}</figcaption>
      {entries.length === 0 ? <p className="muted">none yet</p> : (
        <ul>
          {entries.map(([name, count]) => (
            <li key={name}>
              <span className="bar-name" title={name}>{name}</span>
              <span className="bar-track" aria-hidden="true">
                <span className="bar-fill" style={{ width: `${(100 * count) / Math.max(1, total)}%` }} />
              </span>
              <span className="bar-count">{count.toLocaleString()}</span>
            </li>
          ))}
        </ul>
      )}
    </figure>
  );
}

function niceCeil(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function formatTick(value: number): string {
  if (value === 0) return "0";
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString();
  if (Math.abs(value) >= 1) return value.toFixed(1).replace(/\.0$/, "");
  return value.toPrecision(2);
}
