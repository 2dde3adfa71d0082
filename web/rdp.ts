// The RDP page: IronRDP's web client (ironrdp-wasm, WebAssembly) talking RDP to the VM
// through vmdesk's RDCleanPath endpoint (/ws/rdp), which reaches the guest over the SSH
// chain (docs/ui.md, "RDP in the browser"). The credentials typed here go to the wasm
// client only (for NLA with the RDP server); nothing stores them.
import init, { ClipboardData, DesktopSize, DeviceEvent, InputTransaction, IronError, RotationUnit, SessionBuilder, setup, type Session } from 'ironrdp-wasm';
import { ApiError, fetchJson, fetchTicket, type HostsReply } from './api';
import { describeIronFailure, type RdpFailure } from './rdp-errors';
import { SCANCODE, scancodeOf } from './scancodes';
import { sessionToken } from './session';

type State = 'login' | 'connecting' | 'connected' | 'failed' | 'ended';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const host = params.get('host') ?? '';
// The VM is named by host + UUID (docs/ui.md); `name` is only shown.
const uuid = params.get('uuid') ?? '';
const vm = params.get('name') || uuid;
// Read (and drop from the address bar) before anything else runs.
sessionToken();

const canvas = $<HTMLCanvasElement>('rdp-canvas');
const overlay = $<HTMLDivElement>('overlay');
const form = $<HTMLFormElement>('login-form');
const userInput = $<HTMLInputElement>('rdp-user');
const passwordInput = $<HTMLInputElement>('rdp-password');
const domainInput = $<HTMLInputElement>('rdp-domain');
const errorBox = $<HTMLParagraphElement>('error');
const statusLine = $<HTMLDivElement>('status');
const sessionButtons = ['btn-cad', 'btn-winkey', 'btn-paste', 'btn-disconnect'].map((id) => $<HTMLButtonElement>(id));

$('vm-name').textContent = vm;
$('host-name').textContent = host ? `on ${host}` : '';
document.title = `${vm} (RDP) — vmdesk`;

let session: Session | undefined;
let wasmReady: Promise<unknown> | undefined;
/** Between the ticket and the first frame: the RDCleanPath exchange, TLS and CredSSP. */
let signingIn = false;

function setState(state: State, status: string): void {
  document.body.dataset.state = state;
  statusLine.textContent = status;
  const isLive = state === 'connected';
  canvas.hidden = !isLive;
  overlay.hidden = isLive;
  for (const b of sessionButtons) b.disabled = !isLive;
  $<HTMLButtonElement>('btn-connect').disabled = state === 'connecting';
}

function showError(f: RdpFailure | undefined): void {
  errorBox.hidden = f === undefined;
  errorBox.textContent = f?.message ?? '';
  if (f) errorBox.dataset.code = f.code;
  else delete errorBox.dataset.code;
}

/** IronRDP throws IronError objects (a wasm-bindgen class): read its kind and RDCleanPath details. */
function failureOf(err: unknown, isSigningIn = false): RdpFailure {
  if (err instanceof ApiError) return { code: err.code, message: err.hint ? `${err.message} (${err.hint})` : err.message };
  if (err instanceof IronError) {
    const details = err.rdcleanpathDetails();
    const detail = err.backtrace().split('\n')[0];
    return describeIronFailure({
      kind: err.kind(),
      ...(details?.httpStatusCode !== undefined ? { httpStatus: details.httpStatusCode } : {}),
      ...(details?.wsaErrorCode !== undefined ? { wsa: details.wsaErrorCode } : {}),
      ...(details?.tlsAlertCode !== undefined ? { tlsAlert: details.tlsAlertCode } : {}),
      ...(detail ? { detail } : {}),
      isSigningIn,
    });
  }
  return { code: 'RDP_FAILED', message: `The RDP session failed: ${(err as Error)?.message ?? String(err)}` };
}

function wsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/rdp`;
}

/** The desktop size to ask for: the stage's size in CSS pixels (RDP wants even widths). */
function stageSize(): { width: number; height: number } {
  const r = $('stage').getBoundingClientRect();
  return { width: Math.max(640, Math.floor(r.width / 2) * 2), height: Math.max(480, Math.floor(r.height)) };
}

function applyKey(scancode: number, isDown: boolean): void {
  const t = new InputTransaction();
  t.addEvent(isDown ? DeviceEvent.keyPressed(scancode) : DeviceEvent.keyReleased(scancode));
  session?.applyInputs(t);
}

function sendCombo(codes: readonly number[]): void {
  for (const c of codes) applyKey(c, true);
  for (const c of [...codes].reverse()) applyKey(c, false);
}

async function connect(username: string, password: string, domain: string): Promise<void> {
  showError(undefined);
  setState('connecting', 'connecting: fetching a ticket and looking up the guest');
  try {
    const [ticket] = await Promise.all([
      // The ticket is bound to this host and VM: the endpoint takes the target from it, never from the browser.
      fetchTicket({ purpose: 'rdp', host, uuid }),
      (wasmReady ??= init({ module_or_path: __IRONRDP_WASM_URL__ }).then(() => setup('warn'))),
    ]);
    setState('connecting', 'connecting: RDP handshake and sign-in');
    const { width, height } = stageSize();
    const builder = new SessionBuilder()
      .username(username)
      .password(password)
      .destination(`${vm}:3389`)
      .proxyAddress(wsUrl())
      .authToken(ticket)
      .desktopSize(new DesktopSize(width, height))
      .renderCanvas(canvas)
      .setCursorStyleCallback((kind: string, data?: string, x?: number, y?: number) => {
        canvas.style.cursor = kind === 'hidden' ? 'none' : kind === 'url' && data ? `url(${data}) ${x ?? 0} ${y ?? 0}, default` : 'default';
      })
      .setCursorStyleCallbackContext(null)
      // No forceClipboardUpdateCallback: IronRDP then announces an empty clipboard at the start, as it should
      // (reading the browser's clipboard needs a gesture; "Send clipboard" does it).
      .remoteClipboardChangedCallback((data: ClipboardData) => void onRemoteClipboard(data))
      .canvasResizedCallback(() => {});
    if (domain) builder.serverDomain(domain);
    signingIn = true;
    session = await builder.connect();
    signingIn = false;
    const size = session.desktopSize();
    setState('connected', `connected to ${vm}: ${size.width}x${size.height}`);
    canvas.focus();
    const info = await session.run();
    session = undefined;
    setState('ended', `session ended: ${info.reason()}`);
    showError({ code: 'RDP_ENDED', message: `The RDP session ended (${info.reason()}). Sign in again to reconnect.` });
  } catch (err) {
    session = undefined;
    const f = failureOf(err, signingIn);
    signingIn = false;
    setState('failed', `failed: ${f.code}`);
    showError(f);
  }
}

async function onRemoteClipboard(data: ClipboardData): Promise<void> {
  for (const item of data.items()) {
    if (item.mimeType() !== 'text/plain') continue;
    const text = String(item.value());
    const box = $<HTMLTextAreaElement>('remote-clipboard');
    box.value = text;
    box.hidden = false;
    // Writing the system clipboard needs focus (and, in some browsers, a gesture): the box above always shows it.
    await navigator.clipboard?.writeText(text).catch(() => {});
  }
}

async function sendClipboard(): Promise<void> {
  if (!session) return;
  const text = await navigator.clipboard.readText().catch(() => window.prompt('Text to send to the VM clipboard:') ?? '');
  const data = new ClipboardData();
  data.addText('text/plain', text);
  await session.onClipboardPaste(data);
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const password = passwordInput.value;
  // Handed to the wasm client and dropped from the page: a reconnect asks again (the password manager fills it).
  passwordInput.value = '';
  void connect(userInput.value, password, domainInput.value);
});

// ---- Input: scancodes by physical key, mouse in remote desktop pixels, the wheel.
canvas.addEventListener('keydown', (e) => {
  const sc = scancodeOf(e.code);
  if (sc === undefined || !session) return;
  e.preventDefault();
  applyKey(sc, true);
});
canvas.addEventListener('keyup', (e) => {
  const sc = scancodeOf(e.code);
  if (sc === undefined || !session) return;
  e.preventDefault();
  applyKey(sc, false);
});
canvas.addEventListener('blur', () => session?.releaseAllInputs());

/** Where a pointer event falls on the remote desktop (the canvas is scaled with object-fit: contain). */
function remotePoint(e: MouseEvent): { x: number; y: number } {
  const r = canvas.getBoundingClientRect();
  const scale = Math.min(r.width / canvas.width, r.height / canvas.height);
  const offX = (r.width - canvas.width * scale) / 2;
  const offY = (r.height - canvas.height * scale) / 2;
  const clamp = (v: number, max: number) => Math.max(0, Math.min(max - 1, Math.round(v)));
  return { x: clamp((e.clientX - r.left - offX) / scale, canvas.width), y: clamp((e.clientY - r.top - offY) / scale, canvas.height) };
}

function applyMouse(e: MouseEvent, extra?: DeviceEvent): void {
  if (!session) return;
  const p = remotePoint(e);
  const t = new InputTransaction();
  t.addEvent(DeviceEvent.mouseMove(p.x, p.y));
  if (extra) t.addEvent(extra);
  session.applyInputs(t);
}
canvas.addEventListener('mousemove', (e) => applyMouse(e));
canvas.addEventListener('mousedown', (e) => {
  canvas.focus();
  e.preventDefault();
  applyMouse(e, DeviceEvent.mouseButtonPressed(e.button));
});
canvas.addEventListener('mouseup', (e) => applyMouse(e, DeviceEvent.mouseButtonReleased(e.button)));
canvas.addEventListener('contextmenu', (e) => e.preventDefault());
canvas.addEventListener(
  'wheel',
  (e) => {
    if (!session) return;
    e.preventDefault();
    const t = new InputTransaction();
    const isVertical = Math.abs(e.deltaY) >= Math.abs(e.deltaX);
    const delta = -(isVertical ? e.deltaY : e.deltaX);
    const unit = e.deltaMode === WheelEvent.DOM_DELTA_LINE ? RotationUnit.Line : e.deltaMode === WheelEvent.DOM_DELTA_PAGE ? RotationUnit.Page : RotationUnit.Pixel;
    t.addEvent(DeviceEvent.wheelRotations(isVertical, Math.round(delta), unit));
    session.applyInputs(t);
  },
  { passive: false },
);

// ---- Buttons, fullscreen, resize (Display Control: the server may or may not follow).
$('btn-cad').addEventListener('click', () => sendCombo([SCANCODE.ctrl, SCANCODE.alt, SCANCODE.del]));
$('btn-winkey').addEventListener('click', () => sendCombo([SCANCODE.meta]));
$('btn-paste').addEventListener('click', () => void sendClipboard());
$('btn-disconnect').addEventListener('click', () => session?.shutdown());
$('btn-fullscreen').addEventListener('click', () => {
  if (document.fullscreenElement) void document.exitFullscreen();
  else void document.documentElement.requestFullscreen().catch(() => {});
});
let resizeTimer: number | undefined;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => {
    if (!session) return;
    const { width, height } = stageSize();
    session.resize(width, height);
  }, 300);
});

if (!host || !uuid) {
  setState('failed', 'failed');
  showError({ code: 'USAGE', message: 'This page needs ?host=H&uuid=U (open it from the dashboard or `vmdesk rdp HOST/VM --browser`).' });
} else {
  userInput.focus();
  fetchJson<HostsReply>('/api/hosts').then(
    (r) => {
      $('demo-note').hidden = !r.demo;
    },
    (err: unknown) => showError(failureOf(err)),
  );
}
