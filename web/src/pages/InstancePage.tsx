/** One host: what it runs, what it is doing, and its event history. */
import { useState } from "react";
import { Link, useParams } from "wouter";
import { enc, type Instance, type InstanceEvent } from "../api.ts";
import { Card, ErrorBanner, StatusBadge } from "../components/ui.tsx";
import { ago, dateTime, errorCodeLabel, eventLabel } from "../format.ts";
import { usePoll } from "../poll.ts";
import { useSession } from "../session.tsx";

export function InstancePage() {
  const { app: appId, machine } = useParams<{ app: string; machine: string }>();
  const { api, isAdmin } = useSession();
  const path = `/api/apps/${enc(appId)}/instances/${enc(machine)}`;
  const inst = usePoll(
    () => api.get<Instance & { events: InstanceEvent[] }>(path),
    [api, path],
    3000,
  );
  const [error, setError] = useState<string | null>(null);
  const i = inst.data;

  const reset = async () => {
    try {
      await api.send("POST", `${path}/reset`);
      setError(null);
      inst.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <>
      <p className="crumbs">
        <Link href="/">Applications</Link> / <Link href={`/apps/${enc(appId)}`}>{appId}</Link> /
        {i?.groupId && (
          <>
            {" "}
            <Link href={`/apps/${enc(appId)}/groups/${enc(i.groupId)}`}>{i.track}</Link> /
          </>
        )}
      </p>
      <div className="title-row">
        <h1 className="mono">{i?.alias || machine}</h1>
        {i && <StatusBadge status={i.status} />}
        <div className="spacer" />
        {isAdmin && i && (i.status === "error" || i.status === "update-granted") && (
          <button type="button" className="btn" onClick={reset}>
            Reset update state
          </button>
        )}
      </div>
      <ErrorBanner error={inst.error ?? error} />
      {i && (
        <Card title="Host">
          <dl className="facts">
            <dt>Machine id</dt>
            <dd className="mono">{i.machineId}</dd>
            <dt>Version</dt>
            <dd className="mono">{i.version}</dd>
            <dt>Last update offered</dt>
            <dd className="mono">{i.updateVersion ?? "—"}</dd>
            <dt>Error</dt>
            <dd>{i.errorCode === null ? "—" : errorCodeLabel(i.errorCode)}</dd>
            <dt>Track</dt>
            <dd className="mono">{i.track}</dd>
            <dt>IP</dt>
            <dd className="mono">{i.ip}</dd>
            <dt>OEM</dt>
            <dd>
              {i.oem || "—"} {i.oemVersion}
            </dd>
            <dt>Last check</dt>
            <dd>
              {ago(i.lastCheckAt)} ({dateTime(i.lastCheckAt)})
            </dd>
            <dt>First seen</dt>
            <dd>{dateTime(i.createdAt)}</dd>
          </dl>
        </Card>
      )}
      {i && (
        <Card title="History" testId="events">
          {i.events.length === 0 ? (
            <p className="empty">No events yet.</p>
          ) : (
            <table className="table">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Event</th>
                  <th>Result</th>
                  <th>Version</th>
                  <th>Previous</th>
                </tr>
              </thead>
              <tbody>
                {i.events.map((e) => {
                  const l = eventLabel(e.type, e.result);
                  return (
                    <tr key={e.id} className={e.result === 0 ? "row-error" : ""}>
                      <td title={dateTime(e.createdAt)}>{ago(e.createdAt)}</td>
                      <td>{l.what}</td>
                      <td>
                        {l.outcome}
                        {e.errorCode !== null &&
                          e.errorCode !== 0 &&
                          `: ${errorCodeLabel(e.errorCode)}`}
                      </td>
                      <td className="mono">{e.version}</td>
                      <td className="mono">{e.previousVersion ?? ""}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )}
        </Card>
      )}
    </>
  );
}
