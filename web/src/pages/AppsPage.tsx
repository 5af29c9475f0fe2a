/** All applications with their groups and host counts; admins can add one. */
import { type FormEvent, useState } from "react";
import { Link } from "wouter";
import type { App, Group } from "../api.ts";
import { enc } from "../api.ts";
import { Card, Empty, ErrorBanner } from "../components/ui.tsx";
import { usePoll } from "../poll.ts";
import { useSession } from "../session.tsx";

interface AppSummary {
  app: App;
  groups: Group[];
  hosts: number;
}

export function AppsPage() {
  const { api, isAdmin } = useSession();
  const apps = usePoll(
    async () => {
      const list = await api.get<App[]>("/api/apps");
      return Promise.all(
        list.map(async (app): Promise<AppSummary> => {
          const [groups, inst] = await Promise.all([
            api.get<Group[]>(`/api/apps/${enc(app.id)}/groups`),
            api.get<{ total: number }>(`/api/apps/${enc(app.id)}/instances?limit=1`),
          ]);
          return { app, groups, hosts: inst.total };
        }),
      );
    },
    [api],
    10_000,
  );

  return (
    <>
      <h1>Applications</h1>
      <ErrorBanner error={apps.error} />
      {apps.data && apps.data.length === 0 && <Empty>No applications yet.</Empty>}
      <div className="grid">
        {apps.data?.map(({ app, groups, hosts }) => (
          <Link key={app.id} href={`/apps/${enc(app.id)}`} className="card card-link">
            <h2>{app.name}</h2>
            <p className="mono muted">{app.id}</p>
            {app.description && <p>{app.description}</p>}
            <p className="stats">
              <span>
                <strong>{hosts}</strong> hosts
              </span>
              <span>
                <strong>{groups.length}</strong> groups
              </span>
              {groups.some((g) => g.haltedReason) && (
                <span className="badge badge-error">halted</span>
              )}
            </p>
          </Link>
        ))}
      </div>
      {isAdmin && <NewApp onDone={apps.reload} />}
    </>
  );
}

function NewApp({ onDone }: { onDone(): void }) {
  const { api } = useSession();
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await api.send("POST", "/api/apps", { name, ...(id ? { id } : {}) });
      setId("");
      setName("");
      setError(null);
      onDone();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <Card title="New application">
      <form className="row-form" onSubmit={submit}>
        <label className="field">
          <span>Name</span>
          <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <label className="field">
          <span>App id (Omaha appid, optional)</span>
          <input value={id} onChange={(e) => setId(e.target.value)} className="mono" />
        </label>
        <button type="submit" className="btn btn-primary">
          Create
        </button>
      </form>
      <ErrorBanner error={error} />
    </Card>
  );
}
