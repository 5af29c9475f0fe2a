/**
 * One group: rollout state and progress, hosts per version now and over time, pause/resume,
 * its policy, its hosts and its activity.
 */
import { useState } from "react";
import { Link, useParams } from "wouter";
import { type Channel, enc, type Rollout } from "../api.ts";
import { ActivityFeed } from "../components/ActivityFeed.tsx";
import { GroupForm } from "../components/GroupForm.tsx";
import { InstanceList } from "../components/InstanceList.tsx";
import { RolloutBar, RolloutState } from "../components/RolloutBar.tsx";
import { TimelineChart } from "../components/TimelineChart.tsx";
import { Card, ErrorBanner, Legend, StackBar } from "../components/ui.tsx";
import { compareVersions, duration, versionColors } from "../format.ts";
import { usePoll } from "../poll.ts";
import { summarize } from "../rollout.ts";
import { useSession } from "../session.tsx";
import type { Timeline } from "../timeline.ts";

const STATUS_COLORS = new Map([
  ["complete", "#16a34a"],
  ["update-granted", "#60a5fa"],
  ["downloading", "#3b82f6"],
  ["downloaded", "#2563eb"],
  ["installed", "#1d4ed8"],
  ["error", "#dc2626"],
  ["on-hold", "#d97706"],
  ["undefined", "#94a3b8"],
]);

export function GroupPage() {
  const { app: appId, group: groupId } = useParams<{ app: string; group: string }>();
  const { api, isAdmin } = useSession();
  const base = `/api/apps/${enc(appId)}`;
  const data = usePoll(
    async () => {
      const [rollout, channels] = await Promise.all([
        api.get<Rollout>(`${base}/groups/${enc(groupId)}/rollout`),
        api.get<Channel[]>(`${base}/channels`), // for the settings form
      ]);
      return { rollout, channels };
    },
    [api, base, groupId],
    2000,
  );
  // The server derives it from every host's events: one request, refreshed less often.
  const timeline = usePoll(
    () => api.get<Timeline>(`${base}/groups/${enc(groupId)}/timeline`),
    [api, base, groupId],
    10_000,
  );
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const d = data.data;
  const g = d?.rollout.group;
  const target = d?.rollout.target ?? null;
  const s = g && d ? summarize(g, d.rollout, target) : undefined;
  const versions = Object.entries(d?.rollout.versions ?? {}).sort((a, b) =>
    compareVersions(b[0], a[0]),
  );
  const statuses = Object.entries(d?.rollout.statuses ?? {}).sort((a, b) => b[1] - a[1]);
  const colors = versionColors([...versions.map(([v]) => v), ...(timeline.data?.versions ?? [])]);

  // The history ends with the live counts (polled more often than the history).
  const tl = timeline.data;
  const chart: Timeline | undefined =
    tl && d
      ? {
          versions: [...new Set([...tl.versions, ...Object.keys(d.rollout.versions)])].sort(
            compareVersions,
          ),
          points: [...tl.points, { t: Date.now(), counts: d.rollout.versions }],
        }
      : tl;

  const toggle = async (verb: "pause" | "resume") => {
    setBusy(true);
    try {
      await api.send("POST", `${base}/groups/${enc(groupId)}/${verb}`);
      setError(null);
      data.reload();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <p className="crumbs">
        <Link href="/">Applications</Link> / <Link href={`/apps/${enc(appId)}`}>{appId}</Link> /
      </p>
      <div className="title-row">
        <h1>{g?.name ?? groupId}</h1>
        {s && <RolloutState s={s} />}
        <div className="spacer" />
        {isAdmin && g && (
          <div className="title-actions">
            {g.policy.updatesEnabled && !g.haltedReason ? (
              <button
                type="button"
                className="btn btn-warn"
                disabled={busy}
                onClick={() => toggle("pause")}
              >
                Pause updates
              </button>
            ) : (
              <button
                type="button"
                className="btn btn-primary"
                disabled={busy}
                onClick={() => toggle("resume")}
              >
                {g.haltedReason ? "Clear halt and resume" : "Resume updates"}
              </button>
            )}
          </div>
        )}
      </div>
      {g && (
        <p className="muted subtitle">
          track <code>{g.track}</code> · channel{" "}
          {g.channel ? (
            <>
              <code>{g.channel}</code> → <code>{target ?? "no package"}</code>
            </>
          ) : (
            "none"
          )}{" "}
          · {g.policy.safeMode ? "safe mode" : "no safe mode"} · at most{" "}
          {g.policy.maxUpdatesPerPeriod} update(s) per {duration(g.policy.periodIntervalS)}
          {g.policy.officeHours &&
            ` · office hours ${g.policy.officeStart}–${g.policy.officeEnd} ${g.policy.timezone}`}
        </p>
      )}
      <ErrorBanner error={data.error ?? error} />
      {g?.haltedReason && (
        <div className="banner banner-critical" role="alert" data-testid="halted">
          Safe mode halted this rollout: {g.haltedReason}
        </div>
      )}
      {s && (
        <Card title="Rollout" testId="rollout">
          <RolloutBar s={s} />
          <div className="two-col">
            <div>
              <h3>Versions</h3>
              <StackBar parts={versions} colors={colors} label="hosts per version" />
              <Legend items={versions} colors={colors} />
            </div>
            <div>
              <h3>States</h3>
              <StackBar parts={statuses} colors={STATUS_COLORS} label="hosts per state" />
              <Legend items={statuses} colors={STATUS_COLORS} />
            </div>
          </div>
        </Card>
      )}
      <Card title="Version timeline">
        <ErrorBanner error={timeline.error} />
        {chart && <TimelineChart timeline={chart} colors={colors} />}
        {chart && (
          <Legend
            items={chart.versions.map((v) => [v, d?.rollout.versions[v] ?? 0])}
            colors={colors}
          />
        )}
      </Card>
      <InstanceList appId={appId} groupId={g?.id ?? groupId} pollMs={2000} />
      {g && d && (
        <Card title={isAdmin ? "Group settings" : "Group settings (read-only)"}>
          <GroupForm
            key={`${g.id}:${g.createdAt}`}
            appId={appId}
            channels={d.channels}
            group={g}
            onSaved={data.reload}
          />
        </Card>
      )}
      {g && <ActivityFeed appId={appId} groupId={g.id} limit={20} />}
    </>
  );
}
