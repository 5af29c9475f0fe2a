/** Log in with an API token (admin or viewer); the token stays in this tab's sessionStorage. */
import { type FormEvent, useState } from "react";
import { ApiError, probeScope } from "../api.ts";
import { useSessionState } from "../session.tsx";

export function LoginPage() {
  const { login, notice } = useSessionState();
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const t = token.trim();
      login(t, await probeScope(t));
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? "That token is not known to this server."
          : `Could not log in: ${(err as Error).message}`,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="login">
      <form className="card login-card" onSubmit={submit}>
        <h1>Slipway</h1>
        <p className="muted">Update service dashboard</p>
        <label className="field">
          <span>API token</span>
          <input
            name="token"
            type="password"
            autoComplete="off"
            value={token}
            onChange={(e) => setToken(e.target.value)}
            placeholder="slw_…"
            required
          />
        </label>
        <p className="hint">
          The first admin token is in <code>&lt;data dir&gt;/admin-token</code>. Viewer tokens can
          look but not change anything.
        </p>
        {notice && !error && (
          <div className="banner banner-error" role="alert">
            {notice}
          </div>
        )}
        {error && (
          <div className="banner banner-error" role="alert">
            {error}
          </div>
        )}
        <button type="submit" className="btn btn-primary" disabled={busy || token.trim() === ""}>
          {busy ? "Checking…" : "Log in"}
        </button>
      </form>
    </div>
  );
}
