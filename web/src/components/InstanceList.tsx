/** Hosts of an application (or one group), filterable by status and version, paged. */
import { useState } from "react";
import { Link } from "wouter";
import { enc, IN_PROGRESS, type Instance, STATUSES } from "../api.ts";
import { ago, errorCodeLabel } from "../format.ts";
import { usePoll } from "../poll.ts";
import { useSession } from "../session.tsx";
import { Card, Empty, ErrorBanner, StatusBadge } from "./ui.tsx";

const PAGE = 50;

export function InstanceList({
  appId,
  groupId,
  pollMs = 3000,
}: {
  appId: string;
  groupId?: string;
  pollMs?: number;
}) {
  const { api } = useSession();
  const [status, setStatus] = useState("");
  const [version, setVersion] = useState("");
  const [offset, setOffset] = useState(0);
  const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  if (groupId) q.set("group", groupId);
  if (status) q.set("status", status);
  if (version.trim()) q.set("version", version.trim());
  const qs = q.toString();
  const list = usePoll(
    () =>
      api.get<{ total: number; instances: Instance[] }>(`/api/apps/${enc(appId)}/instances?${qs}`),
    [api, appId, qs],
    pollMs,
  );
  const total = list.data?.total ?? 0;

  return (
    <Card
      title="Hosts"
      testId="instances"
      actions={
        <div className="filters">
          <label className="field-inline">
            <span>Status</span>
            <select
              name="status-filter"
              value={status}
              onChange={(e) => {
                setStatus(e.target.value);
                setOffset(0);
              }}
            >
              <option value="">all</option>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
          <label className="field-inline">
            <span>Version</span>
            <input
              value={version}
              placeholder="any"
              className="mono narrow"
              onChange={(e) => {
                setVersion(e.target.value);
                setOffset(0);
              }}
            />
          </label>
        </div>
      }
    >
      <ErrorBanner error={list.error} />
      {list.data && list.data.instances.length === 0 ? (
        <Empty>No hosts match.</Empty>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th>Machine</th>
              <th>Version</th>
              <th>Status</th>
              <th>Updating to</th>
              <th>Track</th>
              <th>IP</th>
              <th>Last check</th>
            </tr>
          </thead>
          <tbody>
            {list.data?.instances.map((i) => (
              <tr key={i.machineId} data-machine={i.machineId}>
                <td>
                  <Link href={`/apps/${enc(appId)}/instances/${enc(i.machineId)}`} className="mono">
                    {i.alias || i.machineId}
                  </Link>
                </td>
                <td className="mono">{i.version}</td>
                <td>
                  <StatusBadge status={i.status} />
                  {i.errorCode !== null && (
                    <span className="muted"> {errorCodeLabel(i.errorCode)}</span>
                  )}
                </td>
                <td className="mono">
                  {IN_PROGRESS.includes(i.status) || i.status === "error" ? i.updateVersion : ""}
                </td>
                <td className="mono">{i.track}</td>
                <td className="mono">{i.ip}</td>
                <td title={new Date(i.lastCheckAt).toISOString()}>{ago(i.lastCheckAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {total > PAGE && (
        <div className="pager">
          <button
            type="button"
            className="btn btn-small"
            disabled={offset === 0}
            onClick={() => setOffset(Math.max(0, offset - PAGE))}
          >
            Previous
          </button>
          <span className="muted">
            {offset + 1}–{Math.min(offset + PAGE, total)} of {total}
          </span>
          <button
            type="button"
            className="btn btn-small"
            disabled={offset + PAGE >= total}
            onClick={() => setOffset(offset + PAGE)}
          >
            Next
          </button>
        </div>
      )}
    </Card>
  );
}
