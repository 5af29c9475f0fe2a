/** The logged-in token and its scope, kept in sessionStorage (gone when the tab closes). */
import { createContext, type ReactNode, useCallback, useContext, useMemo, useState } from "react";
import { type Client, client, type Scope } from "./api.ts";

const KEY = "slipway.session";

interface Stored {
  token: string;
  scope: Scope;
}

export interface Session extends Stored {
  api: Client;
  isAdmin: boolean;
  logout(): void;
}

interface SessionState {
  session: Session | null;
  /** Why the last session ended, when the server ended it. */
  notice: string | null;
  login(token: string, scope: Scope): void;
}

const Ctx = createContext<SessionState>({ session: null, notice: null, login: () => {} });

function load(): Stored | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    const v = raw ? (JSON.parse(raw) as Stored) : null;
    return v && typeof v.token === "string" && (v.scope === "admin" || v.scope === "viewer")
      ? v
      : null;
  } catch {
    return null;
  }
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [stored, setStored] = useState<Stored | null>(load);
  const [notice, setNotice] = useState<string | null>(null);
  const login = useCallback((token: string, scope: Scope) => {
    sessionStorage.setItem(KEY, JSON.stringify({ token, scope }));
    setNotice(null);
    setStored({ token, scope });
  }, []);
  const value = useMemo<SessionState>(() => {
    if (!stored) return { session: null, notice, login };
    const logout = () => {
      sessionStorage.removeItem(KEY);
      setStored(null);
    };
    return {
      login,
      notice,
      session: {
        ...stored,
        api: client(stored.token, () => {
          setNotice("The server no longer accepts this token (revoked?). Log in again.");
          logout();
        }),
        isAdmin: stored.scope === "admin",
        logout,
      },
    };
  }, [stored, notice, login]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export const useSessionState = () => useContext(Ctx);

/** The session inside the logged-in part of the app (never null there). */
export function useSession(): Session {
  const s = useContext(Ctx).session;
  if (!s) throw new Error("useSession outside a session");
  return s;
}
