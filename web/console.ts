// The console page: one noVNC RFB per connection attempt over /ws/console,
// with reconnect and backoff, a VNC password prompt and the key/paste tools.
//
// States (document.body.dataset.state, read by the browser tests):
//   connecting -> connected -> disconnected -> (backoff) -> connecting ...
//   connecting -> password -> connecting          (credentialsrequired)
//   connecting -> disconnected, no retry           (securityfailure: the user acts)
import { openConsoleSocket, type BufferedChannel } from './console-socket.js';
import RFB from '@novnc/novnc';
import { ApiError, fetchJson, vmPath, type VmReply } from './api';
import { NEEDS_LINK } from './session';
import { byId, h, replace } from './dom';
import { COMBOS, comboEvents, keysymsForText, type KeyEvent } from './keysyms';
import { Backoff, SLOW_DELAY_MS, isCurable, parseCloseReason } from './reconnect';

type State = 'connecting' | 'connected' | 'disconnected' | 'password';

/** The WebSocket close code the server uses when the console cannot be opened (docs/ui.md). */
const CLOSE_CONSOLE_FAILED = 4000;
const TYPE_GAP_MS = 8;

const params = new URLSearchParams(location.search);
const host = params.get('host') ?? '';
// The VM is `uuid` (the API's identity); `name` is only shown, and replaced by the server's answer once one comes.
const uuid = params.get('uuid') ?? '';
let vm = params.get('name') || uuid;

const screen = byId('screen');
const stage = byId('stage');
const statusEl = byId('status');
const overlay = byId('overlay');
const overlayText = byId('overlay-text');
const overlayHint = byId('overlay-hint');
const passwordForm = byId<HTMLFormElement>('password-form');
const passwordInput = byId<HTMLInputElement>('password-input');
const retryBtn = byId<HTMLButtonElement>('btn-retry');
const overlayCountdown = byId('overlay-countdown');
const scaleBtn = byId<HTMLButtonElement>('btn-scale');
const fullscreenBtn = byId<HTMLButtonElement>('btn-fullscreen');
const cadBtn = byId<HTMLButtonElement>('btn-cad');
const keysMenu = byId<HTMLDetailsElement>('keys-menu');
const keysList = byId('keys-list');
const pasteBtn = byId<HTMLButtonElement>('btn-paste');
const viewOnlyBtn = byId<HTMLButtonElement>('btn-viewonly');
const pasteDialog = byId('paste-dialog');
const pasteText = byId<HTMLTextAreaElement>('paste-text');

const SCALE_KEY = 'vmdesk.console.scale';

let rfb: RFB | null = null;
let attempts = 0;
/** Bumped by every connect(): stale callbacks of older attempts compare and bail out. */
let generation = 0;
let connectedAt = 0;
let password: string | undefined;
let isFit = localStorage.getItem(SCALE_KEY) !== '1:1';
let isViewOnly = params.get('view_only') === '1' || params.get('view_only') === 'true';
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let countdownTimer: ReturnType<typeof setInterval> | undefined;
const backoff = new Backoff();

// ---- presentation ----

/** `countdown` stays visible when a long reason is cut off with an ellipsis. */
function setState(state: State, status: string, countdown = ''): void {
  document.body.dataset.state = state;
  replace(statusEl, h('span', { className: 'status-text' }, status), countdown !== '' && h('span', { className: 'status-extra' }, countdown));
  statusEl.title = status + countdown;
  statusEl.className = `status status-${state}`;
  updateControls();
}

/** Input tools work only on a live connection that is not view-only. */
function updateControls(): void {
  const isOff = document.body.dataset.state !== 'connected' || isViewOnly;
  for (const b of [cadBtn, pasteBtn]) b.disabled = isOff;
  for (const b of keysList.querySelectorAll('button')) b.disabled = isOff;
}

interface OverlayContent {
  text: string;
  hint?: string | undefined;
  isPassword?: boolean;
  retryLabel?: string;
}

function showOverlay(c: OverlayContent | null): void {
  overlay.hidden = c === null;
  if (c === null) return;
  overlayText.textContent = c.text;
  overlayHint.hidden = c.hint === undefined;
  overlayHint.textContent = c.hint ?? '';
  passwordForm.hidden = c.isPassword !== true;
  retryBtn.hidden = c.retryLabel === undefined;
  retryBtn.textContent = c.retryLabel ?? '';
  overlayCountdown.textContent = '';
  if (c.isPassword === true) passwordInput.focus();
}

function clearTimers(): void {
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  retryTimer = undefined;
  countdownTimer = undefined;
}

// ---- connecting ----

/** The socket for this attempt: the one console-boot.ts opened early (first attempt only), else a new ticket and socket. */
function openSocket(): Promise<BufferedChannel> {
  const early = window.vmdeskEarlyConsole;
  window.vmdeskEarlyConsole = undefined;
  if (early && early.host === host && early.uuid === uuid) return early.socket;
  void early?.socket.then((s) => s.close(), () => {});
  return openConsoleSocket(location, host, uuid);
}

async function connect(): Promise<void> {
  clearTimers();
  if (rfb !== null) {
    const old = rfb;
    rfb = null;
    old.disconnect();
  }
  const gen = ++generation;
  attempts++;
  document.body.dataset.attempts = String(attempts);
  connectedAt = 0;
  setState('connecting', attempts === 1 ? 'connecting' : `connecting (attempt ${attempts})`);
  showOverlay({ text: `Connecting to ${vm} on ${host}…` });

  // Our own socket, handed to noVNC, so that the server's close code and reason
  // (4000 "CODE: message") are visible: noVNC's disconnect event does not carry them.
  // Registered before noVNC sets onclose, so this listener runs first.
  let closed: CloseEvent | null = null;
  let securityFailure: string | null = null;
  let ws: BufferedChannel;
  try {
    ws = await openSocket();
  } catch {
    // No ticket (the token was refused, or vmdesk is gone): onDrop asks the server why and says so.
    if (gen === generation) void onDrop(gen, 0, null, null, null);
    return;
  }
  if (gen !== generation) {
    ws.close();
    return;
  }
  let r: RFB;
  try {
    closed = ws.closeEvent;
    ws.addEventListener('close', (e) => {
      closed = e;
    });
    r = new RFB(screen, ws as unknown as WebSocket, password !== undefined ? { credentials: { password } } : {});
  } catch (err) {
    void onDrop(gen, 0, null, null, err instanceof Error ? err.message : String(err));
    return;
  }
  rfb = r;
  r.scaleViewport = isFit;
  r.viewOnly = isViewOnly;
  r.focusOnClick = true;

  r.addEventListener('connect', () => {
    if (gen !== generation) return;
    connectedAt = Date.now();
    setState('connected', 'connected');
    showOverlay(null);
    r.focus();
  });
  r.addEventListener('credentialsrequired', () => {
    if (gen !== generation) return;
    setState('password', 'password required');
    showOverlay({ text: `${vm}'s console asks for its VNC password.`, isPassword: true });
  });
  r.addEventListener('securityfailure', (e) => {
    securityFailure = e.detail.reason ?? `the VNC server refused (status ${e.detail.status})`;
    password = undefined;
  });
  r.addEventListener('disconnect', () => {
    if (gen !== generation) return;
    rfb = null;
    const connectedForMs = connectedAt > 0 ? Date.now() - connectedAt : 0;
    void onDrop(gen, connectedForMs, () => closed, securityFailure, null);
  });
}

/** Turns a close event into words; `code` is set for the server's 4000 closes. */
function describeClose(e: CloseEvent | null): { code: string | null; text: string } {
  if (e === null) return { code: null, text: 'connection lost' };
  if (e.code === CLOSE_CONSOLE_FAILED) {
    const parsed = parseCloseReason(e.reason);
    if (parsed !== null) return { code: parsed.code, text: parsed.message };
    return { code: null, text: e.reason || 'the console could not be opened' };
  }
  if (e.code === 1006) return { code: null, text: 'connection lost' };
  if (e.code === 1000) return { code: null, text: e.reason || 'the console connection was closed' };
  if (e.code === 1001) return { code: null, text: e.reason || 'vmdesk is going away' };
  return { code: null, text: e.reason || `connection closed (code ${e.code})` };
}

async function onDrop(
  gen: number,
  connectedForMs: number,
  closeEvent: (() => CloseEvent | null) | null,
  securityFailure: string | null,
  localError: string | null,
): Promise<void> {
  if (securityFailure !== null) {
    // A wrong password stays wrong: wait for the user instead of hammering the server.
    const what = /authentication failed/i.test(securityFailure) ? securityFailure : `Authentication failed: ${securityFailure}`;
    setState('disconnected', `disconnected: ${what}`);
    showOverlay({ text: what, hint: 'Check the VM\'s VNC password (virsh edit: <graphics passwd=...>).', retryLabel: 'Try again' });
    return;
  }
  if (localError !== null) {
    // A failure inside this page (not the network) would fail the same way again: wait for the user.
    setState('disconnected', `disconnected: ${localError}`);
    showOverlay({ text: `The console could not start in this browser: ${localError}`, retryLabel: 'Try again' });
    return;
  }
  let delayMs = backoff.next(connectedForMs);
  setState('disconnected', 'disconnected: checking why…');
  showOverlay({ text: connectedForMs > 0 ? 'The console connection dropped.' : 'Could not connect to the console.' });

  // Ask the server what it knows about the VM now: the chain, the VM's state, its console.
  let code: string | null = null;
  let text: string;
  let hint: string | undefined;
  try {
    const { vm: view } = await fetchJson<VmReply>(vmPath(host, uuid));
    showName(view.name);
    const closeInfo = describeClose(closeEvent?.() ?? null);
    code = closeInfo.code;
    text = closeInfo.text;
    if (view.state !== 'running') {
      code = 'VM_NOT_RUNNING';
      text = `${vm} is ${view.state}; waiting for it to start`;
      hint = `Start it (virsh start ${uuid}, or vmdesk vnc --start); this page reconnects by itself.`;
    } else if (!view.consoles.some((c) => c.isUsable)) {
      code ??= 'VNC_NOT_CONFIGURED';
      text = `${vm} has no VNC console vmdesk can open`;
      hint = view.consoles.length === 0 ? 'Add a VNC <graphics> to the VM (virsh edit).' : `Its consoles: ${view.consoles.map((c) => `${c.kind} ${c.address}`).join(', ')}`;
    }
  } catch (err) {
    const e = err instanceof ApiError ? err : new ApiError('INTERNAL', String(err), undefined, 0);
    code = e.code;
    text = e.message;
    hint = e.hint;
    if (e.code === 'UI_UNAUTHORIZED') {
      // No retry cures a missing or refused token: the person needs the link again.
      if (gen !== generation) return;
      setState('disconnected', `disconnected: ${text}`);
      showOverlay({ text, hint: text === NEEDS_LINK ? undefined : NEEDS_LINK, retryLabel: 'Try again' });
      return;
    }
  }
  if (gen !== generation) return; // the user reconnected meanwhile
  if (code !== null && !isCurable(code)) delayMs = Math.max(delayMs, SLOW_DELAY_MS);
  const reason = code !== null && !text.includes(code) ? `${text} [${code}]` : text;
  scheduleRetry(delayMs, reason, hint);
}

function scheduleRetry(delayMs: number, reason: string, hint: string | undefined): void {
  clearTimers();
  const due = Date.now() + delayMs;
  const tick = (): void => {
    const s = Math.max(1, Math.ceil((due - Date.now()) / 1000));
    setState('disconnected', `disconnected: ${reason}`, ` · reconnecting in ${s} s`);
    overlayCountdown.textContent = `Reconnecting in ${s} s`;
  };
  showOverlay({ text: reason, hint, retryLabel: 'Reconnect now' });
  tick();
  countdownTimer = setInterval(tick, 1000);
  retryTimer = setTimeout(() => void connect(), delayMs);
}

// ---- controls ----

function sendKeys(events: KeyEvent[]): void {
  if (rfb === null || isViewOnly) return;
  for (const e of events) rfb.sendKey(e.keysym, e.code, e.down);
  rfb.focus();
}

function applyScale(): void {
  scaleBtn.textContent = isFit ? 'Scale: fit' : 'Scale: 1:1';
  scaleBtn.setAttribute('aria-pressed', String(isFit));
  if (rfb !== null) rfb.scaleViewport = isFit;
}

function applyViewOnly(): void {
  viewOnlyBtn.setAttribute('aria-pressed', String(isViewOnly));
  viewOnlyBtn.classList.toggle('btn-on', isViewOnly);
  if (rfb !== null) rfb.viewOnly = isViewOnly;
  updateControls();
}

function openPaste(): void {
  pasteDialog.hidden = false;
  pasteText.focus();
  pasteText.select();
}

function closePaste(): void {
  pasteDialog.hidden = true;
  rfb?.focus();
}

async function typeText(text: string): Promise<void> {
  const target = rfb;
  const keysyms = keysymsForText(text);
  for (const [i, keysym] of keysyms.entries()) {
    if (rfb !== target || target === null || isViewOnly) return; // dropped or switched: stop typing
    target.sendKey(keysym, null, true);
    target.sendKey(keysym, null, false);
    // Some guests (Windows login, BIOS screens) lose keys that arrive in one burst.
    if (i % 16 === 15) setState('connected', `connected · typing ${i + 1}/${keysyms.length}`);
    await new Promise((resolve) => setTimeout(resolve, TYPE_GAP_MS));
  }
  if (rfb === target) setState('connected', 'connected');
}

function wireControls(): void {
  for (const combo of COMBOS) {
    const b = h('button', { className: 'menu-item', attrs: { type: 'button', role: 'menuitem' } }, combo.label);
    b.addEventListener('click', () => {
      keysMenu.open = false;
      sendKeys(comboEvents(combo.keys));
    });
    keysList.append(b);
  }
  document.addEventListener('click', (e) => {
    if (keysMenu.open && !keysMenu.contains(e.target as Node)) keysMenu.open = false;
  });

  cadBtn.addEventListener('click', () => {
    if (rfb === null || isViewOnly) return;
    rfb.sendCtrlAltDel();
    rfb.focus();
  });
  scaleBtn.addEventListener('click', () => {
    isFit = !isFit;
    localStorage.setItem(SCALE_KEY, isFit ? 'fit' : '1:1');
    applyScale();
  });
  viewOnlyBtn.addEventListener('click', () => {
    isViewOnly = !isViewOnly;
    applyViewOnly();
  });
  fullscreenBtn.addEventListener('click', () => {
    if (document.fullscreenElement !== null) void document.exitFullscreen();
    else void stage.requestFullscreen().then(() => rfb?.focus(), () => undefined);
  });
  document.addEventListener('fullscreenchange', () => {
    fullscreenBtn.textContent = document.fullscreenElement !== null ? 'Exit fullscreen' : 'Fullscreen';
  });

  pasteBtn.addEventListener('click', openPaste);
  byId('btn-paste-cancel').addEventListener('click', closePaste);
  byId('btn-paste-clipboard').addEventListener('click', () => {
    rfb?.clipboardPasteFrom(pasteText.value);
    closePaste();
  });
  byId('btn-paste-type').addEventListener('click', () => {
    const text = pasteText.value;
    closePaste();
    void typeText(text);
  });
  byId<HTMLFormElement>('paste-form').addEventListener('submit', (e) => e.preventDefault());
  pasteDialog.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') closePaste();
  });

  passwordForm.addEventListener('submit', (e) => {
    e.preventDefault();
    if (rfb === null) return;
    password = passwordInput.value;
    passwordInput.value = '';
    rfb.sendCredentials({ password });
    setState('connecting', 'connecting: checking the password');
    showOverlay({ text: 'Checking the password…' });
  });
  retryBtn.addEventListener('click', () => {
    backoff.reset();
    void connect();
  });
}

function main(): void {
  window.vmdeskConsoleStarted = true;
  wireControls();
  applyScale();
  applyViewOnly();
  if (host === '' || uuid === '') {
    document.title = 'console — vmdesk';
    setState('disconnected', 'disconnected: no VM given');
    showOverlay({ text: 'This console page needs a host and a VM.', hint: 'Open consoles from the dashboard, or run `vmdesk vnc HOST/VM --browser`.' });
    return;
  }
  showName(vm);
  replace(byId('host-name'), 'on ', h('span', null, host));
  void connect();
}

function showName(name: string): void {
  vm = name;
  document.title = `${vm} — vmdesk`;
  byId('vm-name').textContent = vm;
}

main();
