/** Routes and the page frame: login until there is a token, then the dashboard. */
import { Link, Redirect, Route, Switch } from "wouter";
import { ActivityPage } from "./pages/ActivityPage.tsx";
import { AppPage } from "./pages/AppPage.tsx";
import { AppsPage } from "./pages/AppsPage.tsx";
import { GroupPage } from "./pages/GroupPage.tsx";
import { InstancePage } from "./pages/InstancePage.tsx";
import { LoginPage } from "./pages/LoginPage.tsx";
import { SystemPage } from "./pages/SystemPage.tsx";
import { SessionProvider, useSessionState } from "./session.tsx";

function Frame() {
  const { session } = useSessionState();
  if (!session) return <LoginPage />;
  return (
    <div className="frame">
      <header className="topbar">
        <Link href="/" className="brand">
          Slipway
        </Link>
        <nav>
          <Link href="/" className={(active) => (active ? "active" : "")}>
            Applications
          </Link>
          <Link href="/activity" className={(active) => (active ? "active" : "")}>
            Activity
          </Link>
          <Link href="/system" className={(active) => (active ? "active" : "")}>
            Tokens &amp; reboot locks
          </Link>
        </nav>
        <div className="who">
          <span className={`badge badge-scope-${session.scope}`} data-testid="scope">
            {session.scope}
          </span>
          {!session.isAdmin && <span className="muted">read-only</span>}
          <button type="button" className="btn btn-ghost" onClick={session.logout}>
            Log out
          </button>
        </div>
      </header>
      <main className="content">
        <Switch>
          <Route path="/" component={AppsPage} />
          <Route path="/activity" component={ActivityPage} />
          <Route path="/system" component={SystemPage} />
          <Route path="/apps/:app/groups/:group" component={GroupPage} />
          <Route path="/apps/:app/instances/:machine" component={InstancePage} />
          <Route path="/apps/:app" component={AppPage} />
          <Route>
            <Redirect to="/" />
          </Route>
        </Switch>
      </main>
    </div>
  );
}

export function App() {
  return (
    <SessionProvider>
      <Frame />
    </SessionProvider>
  );
}
