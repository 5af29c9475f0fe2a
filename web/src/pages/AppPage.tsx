/** One application: its groups (with rollout progress), channels, packages, hosts and activity. */
import { Link, useLocation, useParams, useSearch } from "wouter";
import { type App, type Channel, enc, type Group, type Rollout } from "../api.ts";
import { ActivityFeed } from "../components/ActivityFeed.tsx";
import { ChannelsEditor } from "../components/ChannelsEditor.tsx";
import { GroupForm } from "../components/GroupForm.tsx";
import { InstanceList } from "../components/InstanceList.tsx";
import { PackagesEditor } from "../components/PackagesEditor.tsx";
import { RolloutBar, RolloutState } from "../components/RolloutBar.tsx";
import { Card, Empty, ErrorBanner, StackBar } from "../components/ui.tsx";
import { compareVersions, versionColors } from "../format.ts";
import { usePoll } from "../poll.ts";
import { summarize } from "../rollout.ts";
import { useSession } from "../session.tsx";

const TABS = ["groups", "channels", "packages", "instances", "activity"] as const;
type Tab = (typeof TABS)[number];

export function AppPage() {
  const { app: appId } = useParams<{ app: string }>();
  const { api } = useSession();
  // The tab is in the URL (?tab=…) so a reload or a shared link opens the same one.
  const [, navigate] = useLocation();
  const asked = new URLSearchParams(useSearch()).get("tab");
  const tab: Tab = TABS.find((t) => t === asked) ?? "groups";
  const setTab = (t: Tab) => navigate(`/apps/${enc(appId)}?tab=${t}`, { replace: true });
  const app = usePoll(() => api.get<App>(`/api/apps/${enc(appId)}`), [api, appId], 0);

  return (
    <>
      <p className="crumbs">
        <Link href="/">Applications</Link> /
      </p>
      <h1>{app.data?.name ?? appId}</h1>
      <p className="mono muted">{appId}</p>
      <ErrorBanner error={app.error} />
      <div className="tabs" role="tablist">
        {TABS.map((t) => (
          <button
            key={t}
            type="button"
            role="tab"
            aria-selected={tab === t}
            className={tab === t ? "tab active" : "tab"}
            onClick={() => setTab(t)}
          >
            {t}
          </button>
        ))}
      </div>
      {tab === "groups" && <GroupsTab appId={appId} />}
      {tab === "channels" && <ChannelsEditor appId={appId} />}
      {tab === "packages" && <PackagesEditor appId={appId} />}
      {tab === "instances" && <InstanceList appId={appId} />}
      {tab === "activity" && <ActivityFeed appId={appId} />}
    </>
  );
}

function GroupsTab({ appId }: { appId: string }) {
  const { api, isAdmin } = useSession();
  const data = usePoll(
    async () => {
      const [groups, channels] = await Promise.all([
        api.get<Group[]>(`/api/apps/${enc(appId)}/groups`),
        api.get<Channel[]>(`/api/apps/${enc(appId)}/channels`),
      ]);
      const rollouts = await Promise.all(
        groups.map((g) => api.get<Rollout>(`/api/apps/${enc(appId)}/groups/${enc(g.id)}/rollout`)),
      );
      return { groups, channels, rollouts };
    },
    [api, appId],
    3000,
  );
  const d = data.data;
  const allVersions = [...new Set(d?.rollouts.flatMap((r) => Object.keys(r.versions)) ?? [])];
  const colors = versionColors(allVersions);
  return (
    <>
      <ErrorBanner error={data.error} />
      {d && d.groups.length === 0 && <Empty>No groups yet. Hosts join a group by its track.</Empty>}
      <div className="stack">
        {d?.groups.map((g, i) => {
          const r = d.rollouts[i];
          const target = d.channels.find((c) => c.name === g.channel)?.package ?? null;
          const s = summarize(g, r, target);
          const versions = Object.entries(r?.versions ?? {}).sort((a, b) =>
            compareVersions(b[0], a[0]),
          );
          return (
            <Card
              key={g.id}
              testId={`group-${g.name}`}
              title={<Link href={`/apps/${enc(appId)}/groups/${enc(g.id)}`}>{g.name}</Link>}
              actions={<RolloutState s={s} />}
            >
              <p className="muted">
                track <code>{g.track}</code> · channel{" "}
                {g.channel ? <code>{g.channel}</code> : "none"}
              </p>
              <RolloutBar s={s} />
              <StackBar parts={versions} colors={colors} label={`versions in ${g.name}`} />
              <ul className="legend">
                {versions.map(([v, n]) => (
                  <li key={v}>
                    <span className="swatch" style={{ background: colors.get(v) }} />
                    <span className="legend-key">{v}</span>
                    <span className="legend-n">{n}</span>
                  </li>
                ))}
              </ul>
            </Card>
          );
        })}
      </div>
      {isAdmin && d && (
        <Card title="New group">
          <GroupForm appId={appId} channels={d.channels} onSaved={data.reload} />
        </Card>
      )}
    </>
  );
}
