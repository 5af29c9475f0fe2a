/**
 * The activity log, newest first, optionally for one app or group, with older pages on demand.
 * After the first page it polls only for entries newer than the newest shown (?after=<id>).
 */
import { useRef, useState } from "react";
import { Link } from "wouter";
import { type Activity, enc } from "../api.ts";
import { ago, dateTime } from "../format.ts";
import { usePoll } from "../poll.ts";
import { useSession } from "../session.tsx";
import { Card, Empty, ErrorBanner } from "./ui.tsx";

const SEVERITIES = ["info", "success", "warning", "error", "critical"] as const;

export function ActivityFeed({
  appId,
  groupId,
  limit = 50,
}: {
  appId?: string;
  groupId?: string;
  limit?: number;
}) {
  const { api } = useSession();
  const [severity, setSeverity] = useState("");
  const [older, setOlder] = useState<Activity[]>([]);
  const [error, setError] = useState<string | null>(null);
  const q = new URLSearchParams({ limit: String(limit) });
  if (appId) q.set("app", appId);
  if (groupId) q.set("group", groupId);
  if (severity) q.set("severity", severity);
  const qs = q.toString();
  // Newest entries first; a poll adds what came after the newest one shown.
  const shown = useRef<{ qs: string; rows: Activity[] }>({ qs: "", rows: [] });
  const feed = usePoll(
    async () => {
      const newest = shown.current.qs === qs ? shown.current.rows[0] : undefined;
      if (!newest) {
        shown.current = { qs, rows: await api.get<Activity[]>(`/api/activity?${qs}`) };
      } else {
        const fresh = await api.get<Activity[]>(
          `/api/activity?${qs}&after=${enc(String(newest.id))}`,
        );
        if (fresh.length > 0)
          shown.current = { qs, rows: [...fresh.reverse(), ...shown.current.rows] };
      }
      return shown.current.rows;
    },
    [api, qs],
    3000,
  );
  const rows = [...(feed.data ?? []), ...older];

  const loadOlder = async () => {
    const last = rows[rows.length - 1];
    if (!last) return;
    try {
      const more = await api.get<Activity[]>(`/api/activity?${qs}&before=${enc(String(last.id))}`);
      setOlder((o) => [...o, ...more]);
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <Card
      title="Activity"
      testId="activity"
      actions={
        <label className="field-inline">
          <span>Severity</span>
          <select
            value={severity}
            onChange={(e) => {
              setSeverity(e.target.value);
              setOlder([]);
            }}
          >
            <option value="">all</option>
            {SEVERITIES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
      }
    >
      <ErrorBanner error={feed.error ?? error} />
      {feed.data && rows.length === 0 ? (
        <Empty>Nothing has happened yet.</Empty>
      ) : (
        <ul className="feed">
          {rows.map((a) => (
            <li key={a.id} className={`feed-item sev-${a.severity}`} data-class={a.class}>
              <span className={`badge badge-sev-${a.severity}`}>{a.severity}</span>
              <span className="feed-msg">
                {a.appId && a.groupId && !groupId ? (
                  <Link href={`/apps/${enc(a.appId)}/groups/${enc(a.groupId)}`}>{a.message}</Link>
                ) : (
                  a.message
                )}
              </span>
              {a.version && <code>{a.version}</code>}
              <span className="muted" title={dateTime(a.createdAt)}>
                {ago(a.createdAt)}
              </span>
            </li>
          ))}
        </ul>
      )}
      {feed.data && feed.data.length >= limit && (
        <button type="button" className="btn btn-small" onClick={loadOlder}>
          Load older
        </button>
      )}
    </Card>
  );
}
