/** API tokens (admins create and revoke them) and FleetLock reboot slots (admins free stuck ones). */
import { type FormEvent, useState } from "react";
import { enc, type LockGroup, type Scope, type Token } from "../api.ts";
import { Card, Empty, ErrorBanner } from "../components/ui.tsx";
import { ago, dateTime } from "../format.ts";
import { usePoll } from "../poll.ts";
import { useSession } from "../session.tsx";

export function SystemPage() {
  return (
    <>
      <h1>Tokens &amp; reboot locks</h1>
      <Tokens />
      <RebootLocks />
    </>
  );
}

function Tokens() {
  const { api, isAdmin } = useSession();
  const tokens = usePoll(() => api.get<Token[]>("/api/tokens"), [api], 0);
  const [name, setName] = useState("");
  const [scope, setScope] = useState<Scope>("viewer");
  const [secret, setSecret] = useState<{ name: string; token: string } | null>(null);
  const [error, setError] = useState<string | null>(null);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const t = await api.send<{ name: string; token: string }>("POST", "/api/tokens", {
        name,
        scope,
      });
      setSecret({ name: t.name, token: t.token });
      setName("");
      setError(null);
      tokens.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const revoke = async (t: Token) => {
    if (!window.confirm(`Revoke token ${t.name}? Whoever uses it loses access at once.`)) return;
    try {
      await api.send("DELETE", `/api/tokens/${enc(t.id)}`);
      setError(null);
      tokens.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <Card title="API tokens" testId="tokens">
      <ErrorBanner error={tokens.error ?? error} />
      <table className="table">
        <thead>
          <tr>
            <th>Name</th>
            <th>Scope</th>
            <th>Created</th>
            {isAdmin && <th />}
          </tr>
        </thead>
        <tbody>
          {tokens.data?.map((t) => (
            <tr key={t.id}>
              <td>{t.name}</td>
              <td>
                <span className={`badge badge-scope-${t.scope}`}>{t.scope}</span>
              </td>
              <td title={dateTime(t.createdAt)}>{ago(t.createdAt)}</td>
              {isAdmin && (
                <td>
                  <button
                    type="button"
                    className="btn btn-small btn-danger"
                    onClick={() => revoke(t)}
                  >
                    Revoke
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {isAdmin && (
        <form className="row-form top-gap" onSubmit={create}>
          <label className="field">
            <span>New token name</span>
            <input
              name="token-name"
              value={name}
              onChange={(e) => setName(e.target.value)}
              required
            />
          </label>
          <label className="field">
            <span>Scope</span>
            <select
              name="token-scope"
              value={scope}
              onChange={(e) => setScope(e.target.value as Scope)}
            >
              <option value="viewer">viewer (read only)</option>
              <option value="admin">admin</option>
            </select>
          </label>
          <button type="submit" className="btn btn-primary">
            Create token
          </button>
        </form>
      )}
      {secret && (
        <div className="banner banner-secret" data-testid="new-token">
          Token <strong>{secret.name}</strong> (shown only now):
          <code className="secret">{secret.token}</code>
        </div>
      )}
    </Card>
  );
}

function RebootLocks() {
  const { api, isAdmin } = useSession();
  const locks = usePoll(() => api.get<LockGroup[]>("/api/fleetlock"), [api], 5000);
  const [error, setError] = useState<string | null>(null);
  const act = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      setError(null);
      locks.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <Card title="Reboot locks (FleetLock)" testId="fleetlock">
      <ErrorBanner error={locks.error ?? error} />
      {locks.data && locks.data.length === 0 ? (
        <Empty>No host has asked for a reboot slot yet.</Empty>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th>Group</th>
              <th>Slots</th>
              <th>Holders</th>
            </tr>
          </thead>
          <tbody>
            {locks.data?.map((g) => (
              <tr key={g.name}>
                <td className="mono">{g.name}</td>
                <td>
                  {g.holders.length} / {g.maxSlots} used
                  {isAdmin && (
                    <>
                      {" "}
                      <button
                        type="button"
                        className="btn btn-small"
                        onClick={() =>
                          act(() =>
                            api.send("PUT", `/api/fleetlock/${enc(g.name)}`, {
                              maxSlots: g.maxSlots + 1,
                            }),
                          )
                        }
                      >
                        +1
                      </button>{" "}
                      <button
                        type="button"
                        className="btn btn-small"
                        disabled={g.maxSlots === 0}
                        onClick={() =>
                          act(() =>
                            api.send("PUT", `/api/fleetlock/${enc(g.name)}`, {
                              maxSlots: g.maxSlots - 1,
                            }),
                          )
                        }
                      >
                        −1
                      </button>
                    </>
                  )}
                </td>
                <td>
                  {g.holders.length === 0
                    ? "—"
                    : g.holders.map((h) => (
                        <span key={h.id} className="holder">
                          <code>{h.id}</code>{" "}
                          <span className="muted">since {ago(h.acquiredAt)}</span>
                          {isAdmin && (
                            <button
                              type="button"
                              className="btn btn-small btn-danger"
                              onClick={() =>
                                window.confirm(`Free the reboot slot held by ${h.id}?`) &&
                                act(() =>
                                  api.send(
                                    "DELETE",
                                    `/api/fleetlock/${enc(g.name)}/holders/${enc(h.id)}`,
                                  ),
                                )
                              }
                            >
                              Free
                            </button>
                          )}
                        </span>
                      ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Card>
  );
}
