import { useEffect, useRef, useState, type ReactElement } from "react";
import { adminKey, forgetKey, LOGGED_OUT_EVENT } from "./api/auth";
import { Link, usePage } from "./router";
import { Login } from "./pages/Login";
import { Dashboard } from "./pages/Dashboard";
import { Routing } from "./pages/Routing";
import { Decisions } from "./pages/Decisions";
import { Keys } from "./pages/Keys";
import { Policies } from "./pages/Policies";
import { Plugins } from "./pages/Plugins";
import { Config } from "./pages/Config";
import { Audit } from "./pages/Audit";
import { Experiments } from "./pages/Experiments";

interface PageSpec {
  path: string;
  title: string;
  render: () => ReactElement;
}

const PAGES: PageSpec[] = [
  { path: "/", title: "Dashboard", render: () => <Dashboard /> },
  { path: "/routing", title: "Routing", render: () => <Routing /> },
  { path: "/decisions", title: "Decisions", render: () => <Decisions /> },
  { path: "/keys", title: "Keys", render: () => <Keys /> },
  { path: "/policies", title: "Policies", render: () => <Policies /> },
  { path: "/plugins", title: "Plugins", render: () => <Plugins /> },
  { path: "/config", title: "Config", render: () => <Config /> },
  { path: "/audit", title: "Audit", render: () => <Audit /> },
  { path: "/experiments", title: "Experiments", render: () => <Experiments /> },
];

export function App() {
  const [loggedIn, setLoggedIn] = useState(() => adminKey() !== null);
  const [expired, setExpired] = useState(false);
  const page = usePage();
  const main = useRef<HTMLElement>(null);
  const current = PAGES.find((spec) => spec.path === page) ?? null;

  useEffect(() => {
    const onLogout = (event: Event) => {
      setExpired(Boolean((event as CustomEvent<{ expired: boolean }>).detail?.expired));
      setLoggedIn(false);
    };
    window.addEventListener(LOGGED_OUT_EVENT, onLogout);
    return () => window.removeEventListener(LOGGED_OUT_EVENT, onLogout);
  }, []);

  useEffect(() => {
    document.title = `${current?.title ?? "Not found"} · RouteIQ admin`;
    main.current?.focus({ preventScroll: true });
  }, [current]);

  if (!loggedIn) {
    return <Login expired={expired} onLoggedIn={() => { setExpired(false); setLoggedIn(true); }} />;
  }
  return (
    <div className="shell">
      <a className="skip" href="#main">Skip to content</a>
      <header className="topbar">
        <span className="brand">RouteIQ <span className="muted">admin</span></span>
        <nav aria-label="Pages" className="nav">
          <ul>
            {PAGES.map((spec) => (
              <li key={spec.path}>
                <Link to={spec.path} aria-current={spec.path === page ? "page" : undefined}>{spec.title}</Link>
              </li>
            ))}
          </ul>
        </nav>
        <button type="button" className="logout" onClick={() => forgetKey(false)}>Log out</button>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {current ? current.render() : <p>No page here. <Link to="/">Go to the dashboard</Link>.</p>}
      </main>
    </div>
  );
}
