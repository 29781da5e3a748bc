/** Client-side routing on the History API (proxyd serves index.html for every app path). */
import { signal, useSignal } from "./signal";

const current = signal(location.pathname + location.search);

addEventListener("popstate", () => current.set(location.pathname + location.search));

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  current.set(location.pathname + location.search);
  scrollTo(0, 0);
}

export function useLocation(): { path: string; query: URLSearchParams } {
  const value = useSignal(current);
  const url = new URL(value, location.origin);
  return { path: url.pathname, query: url.searchParams };
}

/** Same-origin links handled by the router (modifier clicks still open new tabs). */
export function onLinkClick(event: MouseEvent): void {
  const anchor = (event.target as HTMLElement).closest("a");
  if (!anchor || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  if (anchor.target || anchor.hasAttribute("download") || anchor.dataset.external !== undefined) {
    return;
  }
  const url = new URL(anchor.href, location.href);
  if (url.origin !== location.origin || url.pathname === "/graphql") return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}
