/** Channels of an application: which package each points at, floors, blacklist, downgrades. */
import { type FormEvent, useState } from "react";
import { type Channel, enc, type Package } from "../api.ts";
import { ago, compareVersions } from "../format.ts";
import { usePoll } from "../poll.ts";
import { useSession } from "../session.tsx";
import { Card, Empty, ErrorBanner } from "./ui.tsx";

const list = (s: string) =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);

export function ChannelsEditor({ appId }: { appId: string }) {
  const { api, isAdmin } = useSession();
  const data = usePoll(
    async () => {
      const [channels, packages] = await Promise.all([
        api.get<Channel[]>(`/api/apps/${enc(appId)}/channels`),
        api.get<Package[]>(`/api/apps/${enc(appId)}/packages`),
      ]);
      return {
        channels,
        versions: packages
          .map((p) => p.version)
          .sort(compareVersions)
          .reverse(),
      };
    },
    [api, appId],
    0,
  );
  const d = data.data;
  return (
    <>
      <ErrorBanner error={data.error} />
      {d && d.channels.length === 0 && <Empty>No channels yet.</Empty>}
      <div className="stack">
        {d?.channels.map((c) => (
          <ChannelRow
            key={`${c.id}:${c.package}`}
            appId={appId}
            c={c}
            versions={d.versions}
            onSaved={data.reload}
          />
        ))}
      </div>
      {isAdmin && d && <NewChannel appId={appId} versions={d.versions} onSaved={data.reload} />}
    </>
  );
}

function ChannelRow({
  appId,
  c,
  versions,
  onSaved,
}: {
  appId: string;
  c: Channel;
  versions: string[];
  onSaved(): void;
}) {
  const { api, isAdmin } = useSession();
  const [pkg, setPkg] = useState(c.package ?? "");
  const [allowDowngrade, setAllowDowngrade] = useState(c.allowDowngrade);
  const [floors, setFloors] = useState(c.floors.join(", "));
  const [blacklist, setBlacklist] = useState(c.blacklist.join(", "));
  const [error, setError] = useState<string | null>(null);
  const path = `/api/apps/${enc(appId)}/channels/${enc(c.name)}`;

  const save = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await api.send("PATCH", path, {
        package: pkg || null,
        allowDowngrade,
        floors: list(floors),
        blacklist: list(blacklist),
      });
      setError(null);
      onSaved();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const remove = async () => {
    if (!window.confirm(`Delete channel ${c.name}? Groups on it stop getting updates.`)) return;
    try {
      await api.send("DELETE", path);
      onSaved();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <Card
      title={c.name}
      testId={`channel-${c.name}`}
      actions={<span className="muted">created {ago(c.createdAt)}</span>}
    >
      <form onSubmit={save}>
        <fieldset disabled={!isAdmin}>
          <div className="form-grid">
            <label className="field">
              <span>Package</span>
              <select value={pkg} onChange={(e) => setPkg(e.target.value)} name="package">
                <option value="">(none)</option>
                {versions.map((v) => (
                  <option key={v} value={v}>
                    {v}
                  </option>
                ))}
              </select>
            </label>
            <label className="field">
              <span>Floors (mandatory stops)</span>
              <input value={floors} onChange={(e) => setFloors(e.target.value)} className="mono" />
            </label>
            <label className="field">
              <span>Blacklist</span>
              <input
                value={blacklist}
                onChange={(e) => setBlacklist(e.target.value)}
                className="mono"
              />
            </label>
            <label className="check">
              <input
                type="checkbox"
                checked={allowDowngrade}
                onChange={(e) => setAllowDowngrade(e.target.checked)}
              />
              <span>Allow downgrades</span>
            </label>
          </div>
          {isAdmin && (
            <div className="form-actions">
              <button type="submit" className="btn btn-primary">
                Save channel
              </button>
              <button type="button" className="btn btn-danger" onClick={remove}>
                Delete
              </button>
            </div>
          )}
        </fieldset>
      </form>
      <ErrorBanner error={error} />
    </Card>
  );
}

function NewChannel({
  appId,
  versions,
  onSaved,
}: {
  appId: string;
  versions: string[];
  onSaved(): void;
}) {
  const { api } = useSession();
  const [name, setName] = useState("");
  const [pkg, setPkg] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await api.send("POST", `/api/apps/${enc(appId)}/channels`, { name, package: pkg || null });
      setName("");
      setError(null);
      onSaved();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <Card title="New channel">
      <form className="row-form" onSubmit={submit}>
        <label className="field">
          <span>Name</span>
          <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <label className="field">
          <span>Package</span>
          <select value={pkg} onChange={(e) => setPkg(e.target.value)}>
            <option value="">(none)</option>
            {versions.map((v) => (
              <option key={v} value={v}>
                {v}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="btn btn-primary">
          Create
        </button>
      </form>
      <ErrorBanner error={error} />
    </Card>
  );
}
