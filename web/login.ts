// The 403 page: trades the #token=... fragment for the session cookie (docs/ui.md, "Access token").
import { byId } from './dom';

const NEEDS_LINK =
  'This vmdesk page needs the access link vmdesk printed (it ends in #token=...). Run `vmdesk ui` again to get a new one.';

function show(text: string, isError: boolean): void {
  const status = byId('login-status');
  status.textContent = text;
  status.classList.toggle('error', isError);
  document.body.dataset.state = isError ? 'error' : 'signing-in';
}

async function signIn(): Promise<void> {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (token === null || token === '') {
    show(NEEDS_LINK, true);
    return;
  }
  let res: Response;
  try {
    res = await fetch('/api/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
      credentials: 'same-origin',
    });
  } catch {
    show('vmdesk did not answer. Is `vmdesk ui` still running?', true);
    return;
  }
  if (res.status === 204) {
    // Drop the token from the address bar and history before anything else can see it.
    history.replaceState(null, '', location.pathname + location.search);
    location.reload();
    return;
  }
  show(res.status === 403 ? NEEDS_LINK : `vmdesk refused the sign-in (HTTP ${res.status}). ${NEEDS_LINK}`, true);
}

void signIn();
