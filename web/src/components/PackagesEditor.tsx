/** Packages of an application: list, upload a payload, register an external URL, delete. */
import { type FormEvent, useState } from "react";
import { enc, type Package } from "../api.ts";
import { ago, bytes } from "../format.ts";
import { usePoll } from "../poll.ts";
import { useSession } from "../session.tsx";
import { Card, Empty, ErrorBanner } from "./ui.tsx";

export function PackagesEditor({ appId }: { appId: string }) {
  const { api, isAdmin } = useSession();
  const pkgs = usePoll(
    () => api.get<Package[]>(`/api/apps/${enc(appId)}/packages`),
    [api, appId],
    0,
  );
  const [error, setError] = useState<string | null>(null);

  const remove = async (v: string) => {
    if (!window.confirm(`Delete package ${v} and its stored file?`)) return;
    try {
      await api.send("DELETE", `/api/apps/${enc(appId)}/packages/${enc(v)}`);
      setError(null);
      pkgs.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <>
      <ErrorBanner error={pkgs.error ?? error} />
      <Card title="Packages">
        {pkgs.data && pkgs.data.length === 0 ? (
          <Empty>No packages yet.</Empty>
        ) : (
          <table className="table">
            <thead>
              <tr>
                <th>Version</th>
                <th>File</th>
                <th>Size</th>
                <th>SHA-256</th>
                <th>Where</th>
                <th>Added</th>
                {isAdmin && <th />}
              </tr>
            </thead>
            <tbody>
              {pkgs.data?.map((p) => (
                <tr key={p.id}>
                  <td className="mono">{p.version}</td>
                  <td className="mono">{p.filename}</td>
                  <td>{bytes(p.size)}</td>
                  <td className="mono ellipsis" title={p.sha256}>
                    {p.sha256.slice(0, 16)}…
                  </td>
                  <td>{p.url ? <span title={p.url}>external</span> : "stored here"}</td>
                  <td>{ago(p.createdAt)}</td>
                  {isAdmin && (
                    <td>
                      <button
                        type="button"
                        className="btn btn-small btn-danger"
                        onClick={() => remove(p.version)}
                      >
                        Delete
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
      {isAdmin && <UploadPackage appId={appId} onDone={pkgs.reload} />}
      {isAdmin && <ExternalPackage appId={appId} onDone={pkgs.reload} />}
    </>
  );
}

function UploadPackage({ appId, onDone }: { appId: string; onDone(): void }) {
  const { api } = useSession();
  const [version, setVersion] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    setBusy(true);
    try {
      const q = new URLSearchParams({ filename: file.name });
      await api.send("PUT", `/api/apps/${enc(appId)}/packages/${enc(version)}?${q}`, file);
      setVersion("");
      setError(null);
      onDone();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card title="Upload a payload">
      <form className="row-form" onSubmit={submit}>
        <label className="field">
          <span>Version</span>
          <input
            value={version}
            onChange={(e) => setVersion(e.target.value)}
            required
            className="mono"
          />
        </label>
        <label className="field">
          <span>Payload file</span>
          <input type="file" onChange={(e) => setFile(e.target.files?.[0] ?? null)} required />
        </label>
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Uploading…" : "Upload"}
        </button>
      </form>
      <ErrorBanner error={error} />
    </Card>
  );
}

function ExternalPackage({ appId, onDone }: { appId: string; onDone(): void }) {
  const { api } = useSession();
  const [f, setF] = useState({ version: "", url: "", filename: "", size: "", sha256: "" });
  const [error, setError] = useState<string | null>(null);
  const field = (k: keyof typeof f, label: string, mono = true) => (
    <label className="field">
      <span>{label}</span>
      <input
        value={f[k]}
        onChange={(e) => setF((o) => ({ ...o, [k]: e.target.value }))}
        className={mono ? "mono" : ""}
        required
      />
    </label>
  );
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await api.send("POST", `/api/apps/${enc(appId)}/packages`, { ...f, size: Number(f.size) });
      setF({ version: "", url: "", filename: "", size: "", sha256: "" });
      setError(null);
      onDone();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <Card title="Register a package hosted elsewhere" testId="register-package">
      <form onSubmit={submit}>
        <div className="form-grid">
          {field("version", "Version")}
          {field("url", "Base URL")}
          {field("filename", "File name")}
          {field("size", "Size (bytes)")}
          {field("sha256", "SHA-256 (hex)")}
        </div>
        <div className="form-actions">
          <button type="submit" className="btn btn-primary">
            Register
          </button>
        </div>
      </form>
      <ErrorBanner error={error} />
    </Card>
  );
}
