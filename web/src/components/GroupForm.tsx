/** Create a group, or edit one's channel and rollout policy (admins only; viewers see values). */
import { type FormEvent, useState } from "react";
import { type Channel, enc, type Group, type Policy } from "../api.ts";
import { useSession } from "../session.tsx";
import { ErrorBanner } from "./ui.tsx";

const DEFAULT_POLICY: Policy = {
  updatesEnabled: true,
  safeMode: true,
  maxUpdatesPerPeriod: 1,
  periodIntervalS: 3600,
  updateTimeoutS: 3600,
  officeHours: false,
  timezone: "UTC",
  officeStart: "09:00",
  officeEnd: "17:00",
};

export function GroupForm({
  appId,
  channels,
  group,
  onSaved,
}: {
  appId: string;
  channels: Channel[];
  group?: Group;
  onSaved(): void;
}) {
  const { api, isAdmin } = useSession();
  const [name, setName] = useState(group?.name ?? "");
  const [track, setTrack] = useState(group?.track ?? "");
  const [channel, setChannel] = useState(group?.channel ?? "");
  const [p, setP] = useState<Policy>(group?.policy ?? DEFAULT_POLICY);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const ro = !isAdmin;
  const set = <K extends keyof Policy>(k: K, v: Policy[K]) => setP((old) => ({ ...old, [k]: v }));

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    // Pause/resume has its own buttons; the form leaves updatesEnabled alone on edits.
    const { updatesEnabled, ...policy } = p;
    const body = {
      name,
      track: track || name,
      channel: channel || null,
      policy: group ? policy : { ...policy, updatesEnabled },
    };
    try {
      if (group) await api.send("PATCH", `/api/apps/${enc(appId)}/groups/${enc(group.id)}`, body);
      else {
        await api.send("POST", `/api/apps/${enc(appId)}/groups`, body);
        setName("");
        setTrack("");
      }
      setError(null);
      setSaved(true);
      onSaved();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <form className="policy-form" onSubmit={submit} data-testid="group-form">
      <fieldset disabled={ro}>
        <div className="form-grid">
          <label className="field">
            <span>Name</span>
            <input value={name} onChange={(e) => setName(e.target.value)} required />
          </label>
          <label className="field">
            <span>Track (what hosts send as GROUP)</span>
            <input
              value={track}
              placeholder={name}
              onChange={(e) => setTrack(e.target.value)}
              className="mono"
            />
          </label>
          <label className="field">
            <span>Channel</span>
            <select value={channel} onChange={(e) => setChannel(e.target.value)}>
              <option value="">(none: no updates)</option>
              {channels.map((c) => (
                <option key={c.id} value={c.name}>
                  {c.name} {c.package ? `→ ${c.package}` : "(no package)"}
                </option>
              ))}
            </select>
          </label>
          <label className="check">
            <input
              type="checkbox"
              checked={p.safeMode}
              onChange={(e) => set("safeMode", e.target.checked)}
            />
            <span>Safe mode (one host first; a failure halts the group)</span>
          </label>
          <label className="field">
            <span>Max updates per period</span>
            <input
              type="number"
              min={0}
              value={p.maxUpdatesPerPeriod}
              onChange={(e) => set("maxUpdatesPerPeriod", Number(e.target.value))}
            />
          </label>
          <label className="field">
            <span>Period (seconds)</span>
            <input
              type="number"
              min={1}
              value={p.periodIntervalS}
              onChange={(e) => set("periodIntervalS", Number(e.target.value))}
            />
          </label>
          <label className="field">
            <span>Update timeout (seconds, 0 = none)</span>
            <input
              type="number"
              min={0}
              value={p.updateTimeoutS}
              onChange={(e) => set("updateTimeoutS", Number(e.target.value))}
            />
          </label>
          <label className="check">
            <input
              type="checkbox"
              checked={p.officeHours}
              onChange={(e) => set("officeHours", e.target.checked)}
            />
            <span>Only during office hours</span>
          </label>
          <label className="field">
            <span>Timezone</span>
            <input value={p.timezone} onChange={(e) => set("timezone", e.target.value)} />
          </label>
          <label className="field">
            <span>Office start</span>
            <input
              type="time"
              value={p.officeStart}
              onChange={(e) => set("officeStart", e.target.value)}
            />
          </label>
          <label className="field">
            <span>Office end</span>
            <input
              type="time"
              value={p.officeEnd}
              onChange={(e) => set("officeEnd", e.target.value)}
            />
          </label>
        </div>
        {isAdmin && (
          <div className="form-actions">
            <button type="submit" className="btn btn-primary">
              {group ? "Save group" : "Create group"}
            </button>
            {saved && <span className="muted">saved</span>}
          </div>
        )}
      </fieldset>
      <ErrorBanner error={error} />
    </form>
  );
}
