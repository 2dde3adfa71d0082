// The page's credential (docs/ui.md, "Access token"): the token vmdesk put in the
// link's #fragment, kept in sessionStorage, which is per origin (so per port:
// no other server on 127.0.0.1 can read it) and per tab. It is sent only as an
// Authorization header by this page's own scripts, so nothing the browser adds
// to requests by itself (a cookie) can open anything.

const KEY = 'vmdesk.token';

/** What the person must do when this page has no usable token. */
export const NEEDS_LINK = 'This vmdesk page needs the access link vmdesk printed (it ends in #token=...). Run `vmdesk ui` again to get a new one.';

/**
 * The token: taken from the #token=... fragment when the link carries one
 * (and dropped from the address bar and history at once), else the one this
 * tab stored. A page another site navigated to (the server marks it
 * `data-entry="foreign"`) uses only a token in its own link: it must not act
 * with the tab's stored one on that site's behalf.
 */
export function sessionToken(): string | undefined {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromLink !== null && fromLink !== '') {
    history.replaceState(history.state, '', location.pathname + location.search);
    sessionStorage.setItem(KEY, fromLink);
    return fromLink;
  }
  if (document.documentElement.dataset.entry === 'foreign') return undefined;
  return sessionStorage.getItem(KEY) ?? undefined;
}
