/** Stacked-area chart of hosts per version over time (plain SVG, no chart library needed). */
import { dateTime } from "../format.ts";
import type { Timeline } from "../timeline.ts";

const W = 720;
const H = 200;
const PAD = { l: 36, r: 8, t: 8, b: 22 };

export function TimelineChart({
  timeline,
  colors,
}: {
  timeline: Timeline;
  colors: Map<string, string>;
}) {
  const { points, versions } = timeline;
  if (points.length < 2) return <p className="empty">No history yet.</p>;
  const t0 = points[0]!.t;
  const t1 = points[points.length - 1]!.t;
  const maxY = Math.max(
    1,
    ...points.map((p) => Object.values(p.counts).reduce((a, b) => a + b, 0)),
  );
  const x = (t: number) => PAD.l + ((t - t0) / Math.max(t1 - t0, 1)) * (W - PAD.l - PAD.r);
  const y = (n: number) => H - PAD.b - (n / maxY) * (H - PAD.t - PAD.b);
  // Oldest version at the bottom; each band sits on the cumulative sum of the ones below.
  const base = points.map(() => 0);
  const bands = versions.map((v) => {
    const lower = [...base];
    points.forEach((p, i) => {
      base[i] = (base[i] ?? 0) + (p.counts[v] ?? 0);
    });
    const upper = [...base];
    const top = points.map((p, i) => `${x(p.t)},${y(upper[i]!)}`);
    const bottom = points.map((p, i) => `${x(p.t)},${y(lower[i]!)}`).reverse();
    return { v, d: `M${top.join("L")}L${bottom.join("L")}Z` };
  });
  return (
    <svg
      className="timeline"
      viewBox={`0 0 ${W} ${H}`}
      role="img"
      aria-labelledby="timeline-title"
      data-testid="version-timeline"
    >
      <title id="timeline-title">Hosts per version over time</title>
      <line x1={PAD.l} x2={W - PAD.r} y1={y(0)} y2={y(0)} className="axis" />
      <text x={PAD.l - 6} y={y(maxY) + 4} textAnchor="end" className="tick">
        {maxY}
      </text>
      <text x={PAD.l - 6} y={y(0)} textAnchor="end" className="tick">
        0
      </text>
      {bands.map((b) => (
        <path key={b.v} d={b.d} fill={colors.get(b.v) ?? "#94a3b8"} fillOpacity={0.85}>
          <title>{b.v}</title>
        </path>
      ))}
      <text x={PAD.l} y={H - 6} className="tick">
        {dateTime(t0)}
      </text>
      <text x={W - PAD.r} y={H - 6} textAnchor="end" className="tick">
        {dateTime(t1)}
      </text>
    </svg>
  );
}
