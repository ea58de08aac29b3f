import { useEffect, useState, type AnchorHTMLAttributes, type MouseEvent } from "react";

// A tiny history router for the pages under /ui (the gateway answers every /ui/<page> with
// index.html, so deep links and reloads work).
export const BASE = "/ui";

function currentPage(): string {
  const path = window.location.pathname;
  const page = path.startsWith(BASE) ? path.slice(BASE.length) : path;
  return page.replace(/\/+$/, "") || "/";
}

export function navigate(page: string): void {
  window.history.pushState(null, "", BASE + page);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

export function usePage(): string {
  const [page, setPage] = useState(currentPage);
  useEffect(() => {
    const update = () => setPage(currentPage());
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return page;
}

export function Link({ to, ...rest }: { to: string } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  const onClick = (event: MouseEvent<HTMLAnchorElement>) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  };
  return <a href={BASE + to} onClick={onClick} {...rest} />;
}
