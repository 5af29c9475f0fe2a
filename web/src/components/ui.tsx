/** Small shared pieces: status badges, progress bars, error banners, cards. */
import type { ReactNode } from "react";

export function Badge({ kind, children }: { kind: string; children: ReactNode }) {
  return <span className={`badge badge-${kind}`}>{children}</span>;
}

export function StatusBadge({ status }: { status: string }) {
  return (
    <span className={`badge badge-${status}`} data-status={status}>
      {status}
    </span>
  );
}

export function ErrorBanner({ error }: { error: string | null | undefined }) {
  if (!error) return null;
  return (
    <div className="banner banner-error" role="alert">
      {error}
    </div>
  );
}

export function Card({
  title,
  actions,
  children,
  testId,
}: {
  title?: ReactNode;
  actions?: ReactNode;
  children: ReactNode;
  testId?: string;
}) {
  return (
    <section className="card" data-testid={testId}>
      {(title || actions) && (
        <header className="card-head">
          <h2>{title}</h2>
          <div className="card-actions">{actions}</div>
        </header>
      )}
      {children}
    </section>
  );
}

/** A stacked bar: one segment per key, widths by share. */
export function StackBar({
  parts,
  colors,
  label,
}: {
  parts: [string, number][];
  colors: Map<string, string>;
  label: string;
}) {
  const total = parts.reduce((a, [, n]) => a + n, 0);
  return (
    <div className="stackbar" role="img" aria-label={label}>
      {total === 0 ? (
        <div className="stackbar-empty">no hosts yet</div>
      ) : (
        parts
          .filter(([, n]) => n > 0)
          .map(([k, n]) => (
            <div
              key={k}
              className="stackbar-seg"
              style={{ width: `${(100 * n) / total}%`, background: colors.get(k) ?? "#94a3b8" }}
              title={`${k}: ${n}`}
            />
          ))
      )}
    </div>
  );
}

export function Legend({
  items,
  colors,
}: {
  items: [string, number][];
  colors: Map<string, string>;
}) {
  return (
    <ul className="legend">
      {items.map(([k, n]) => (
        <li key={k}>
          <span className="swatch" style={{ background: colors.get(k) ?? "#94a3b8" }} />
          <span className="legend-key">{k}</span>
          <span className="legend-n">{n}</span>
        </li>
      ))}
    </ul>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}
