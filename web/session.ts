// The page's credential (docs/ui.md, "Access token"): the token vmdesk put in the
// link's #fragment, kept in sessionStorage, which is per origin (so per port:
// no other server on 127.0.0.1 can read it) and per tab. It is sent only as an
// Authorization header by this page's own scripts, so nothing the browser adds
// to requests by itself (a cookie) can open anything.

const KEY = 'vmdesk.token';

/** What the person must do when this page has no usable token. */
export const NEEDS_LINK = 'This vmdesk page needs the access link vmdesk printed (it ends in #token=...). Run `vmdesk ui` again to get a new one.';

/** True when the person reloaded this page: another site can navigate a tab, but cannot reload a page of this origin. */
function isReload(): boolean {
  const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined;
  return nav?.type === 'reload';
}

/**
 * The token: taken from the #token=... fragment when the link carries one
 * (and dropped from the address bar and history at once), else the one this
 * tab stored. A page another site navigated to (the server marks it
 * `data-entry="foreign"`) uses only a token in its own link: it must not act
 * with the tab's stored one on that site's behalf. A reload may repeat the
 * first request's Sec-Fetch-Site (Chromium does, for a page opened from
 * vmdesk's file:// redirect, unless the page changed its URL as this one
 * does); only the person can reload a page, so a reload may use it.
 */
export function sessionToken(): string | undefined {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromLink !== null && fromLink !== '') {
    history.replaceState(history.state, '', location.pathname + location.search);
    sessionStorage.setItem(KEY, fromLink);
    return fromLink;
  }
  if (document.documentElement.dataset.entry === 'foreign' && !isReload()) return undefined;
  return sessionStorage.getItem(KEY) ?? undefined;
}
