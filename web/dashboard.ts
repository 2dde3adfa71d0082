// The dashboard: hosts and their VMs (HTTP), tunnels and hop health (one EventSource).
import {
  ApiError,
  consoleHref,
  rdpHref,
  downloadFile,
  fetchJson,
  fetchTicket,
  postJson,
  vmPath,
  vmsPath,
  type ConsoleView,
  type HopView,
  type HostView,
  type HostsReply,
  type RdpReply,
  type TunnelView,
  type TunnelsEvent,
  type VmView,
  type VmsReply,
} from './api';
import { byId, h, replace } from './dom';
import { formatAge, formatBytes } from './format';

interface HostEntry {
  view: HostView;
  section: HTMLElement;
  header: HTMLElement;
  body: HTMLElement;
}

const hosts = new Map<string, HostEntry>();
const hostsEl = byId('hosts');
const tunnelsEl = byId('tunnels');
const liveEl = byId('live');
const pageErrorEl = byId('page-error');
const demoBannerEl = byId('demo-banner');

// ---- shared pieces ----

function errorBlock(err: unknown, retry?: () => void): HTMLElement {
  const e = err instanceof ApiError ? err : new ApiError('INTERNAL', String(err), undefined, 0);
  return h(
    'div',
    { className: 'error-block', attrs: { role: 'alert' } },
    h('p', { className: 'error-message' }, e.message, ' ', h('code', { className: 'error-code' }, e.code)),
    e.hint !== undefined && h('p', { className: 'error-hint' }, e.hint),
    retry !== undefined && retryButton(retry),
  );
}

function retryButton(retry: () => void): HTMLButtonElement {
  const b = h('button', { className: 'btn btn-small', attrs: { type: 'button' } }, 'Retry');
  b.addEventListener('click', retry);
  return b;
}

const HOP_WORDS: Record<HopView['state'], string> = { up: 'up', connecting: 'connecting', down: 'down', idle: 'idle' };

/** "jump → kvmhost" with one health dot per hop; down hops' errors listed below the chain. */
function hopChain(hops: HopView[], isShowingErrors: boolean): HTMLElement {
  const list = h('ol', { className: 'hops', attrs: { 'aria-label': 'SSH hops' } });
  const errors = h('ul', { className: 'hop-errors' });
  const now = Date.now();
  for (const hop of hops) {
    const word = HOP_WORDS[hop.state] ?? hop.state;
    const age = hop.since > 0 ? ` for ${formatAge(hop.since, now)}` : '';
    const title = `${hop.label}: ${word}${age}${hop.error !== undefined ? `: ${hop.error.message}` : ''}`;
    list.append(
      h(
        'li',
        { className: `hop hop-${hop.state}`, title },
        h('span', { className: 'dot', attrs: { 'aria-hidden': 'true' } }),
        h('span', { className: 'hop-label' }, hop.label),
        h('span', { className: 'sr-only' }, ` (${word})`),
      ),
    );
    if (isShowingErrors && hop.state === 'down' && hop.error !== undefined) {
      errors.append(h('li', { className: 'hop-error' }, `${hop.label}: ${hop.error.message}`));
    }
  }
  return h('div', { className: 'hop-chain' }, list, errors.childElementCount > 0 && errors);
}

// ---- hosts ----

function renderEmpty(): void {
  replace(
    hostsEl,
    h(
      'div',
      { className: 'empty' },
      h('p', null, h('strong', null, 'No hosts yet.'), ' Tell vmdesk which hypervisor to reach, either on the command line:'),
      h('pre', null, h('code', null, 'vmdesk ui kvmhost\nvmdesk ui user@192.168.0.2 -J jump')),
      h('p', null, 'or with a ', h('code', null, 'hosts:'), ' entry in ', h('code', null, '~/.config/vmdesk/config.yaml'), ':'),
      h('pre', null, h('code', null, 'hosts:\n  lab: kvmhost\n  far:\n    ssh: admin@192.168.0.2\n    jump: user@10.1.1.1')),
      h('p', { className: 'muted' }, 'See docs/config.md for every setting. Then run vmdesk ui again.'),
    ),
  );
}

function renderHostHeader(entry: HostEntry): void {
  const { view } = entry;
  replace(
    entry.header,
    h(
      'div',
      { className: 'host-title' },
      h('h3', null, view.name),
      view.dest !== view.name && h('code', { className: 'host-dest' }, view.dest),
    ),
    // A host error already says which hop failed; the dots still show where.
    view.hops.length > 0 && hopChain(view.hops, view.error === undefined),
    view.error !== undefined &&
      h(
        'div',
        { className: 'error-block', attrs: { role: 'alert' } },
        h('p', { className: 'error-message' }, view.error.message, ' ', h('code', { className: 'error-code' }, view.error.code)),
        view.error.hint !== undefined && h('p', { className: 'error-hint' }, view.error.hint),
      ),
  );
}

function applyHosts(reply: HostsReply): void {
  demoBannerEl.hidden = !reply.demo;
  if (reply.hosts.length === 0) {
    hosts.clear();
    renderEmpty();
    return;
  }
  if (hosts.size === 0) replace(hostsEl);
  const seen = new Set<string>();
  for (const view of reply.hosts) {
    seen.add(view.name);
    let entry = hosts.get(view.name);
    if (entry === undefined) {
      const header = h('header', { className: 'host-header' });
      const body = h('div', { className: 'host-body' });
      entry = { view, header, body, section: h('section', { className: 'host', dataset: { host: view.name } }, header, body) };
      hosts.set(view.name, entry);
      void loadVms(entry);
    }
    entry.view = view;
    renderHostHeader(entry);
    hostsEl.append(entry.section); // (re)appending keeps the server's order
  }
  for (const [name, entry] of hosts) {
    if (!seen.has(name)) {
      entry.section.remove();
      hosts.delete(name);
    }
  }
}

/** Reloads a host's VM list (after a change made from the dashboard). */
const reloaders = new Map<string, () => void>();

async function loadVms(entry: HostEntry): Promise<void> {
  const name = entry.view.name;
  reloaders.set(name, () => void loadVms(entry));
  replace(entry.body, h('p', { className: 'muted loading' }, `Listing VMs on ${name} over SSH…`));
  try {
    const reply = await fetchJson<VmsReply>(vmsPath(name));
    if (hosts.get(name) !== entry) return;
    replace(entry.body, vmTable(name, reply.vms));
  } catch (err) {
    if (hosts.get(name) !== entry) return;
    replace(entry.body, errorBlock(err, () => void loadVms(entry)));
  }
}

// ---- VMs ----

const COLUMNS = ['Name', 'State', 'Console', 'Password', 'IP', 'Actions'] as const;

function vmTable(host: string, vms: VmView[]): HTMLElement {
  if (vms.length === 0) return h('p', { className: 'muted' }, 'No VMs on this host (virsh list --all is empty).');
  const head = h('thead', null, h('tr', null, ...COLUMNS.map((c) => h('th', { attrs: { scope: 'col' } }, c))));
  const body = h('tbody');
  for (const vm of vms) body.append(vmRow(host, vm));
  return h('table', { className: 'vms' }, head, body);
}

function cell(label: (typeof COLUMNS)[number], ...children: (Node | string | false | null | undefined)[]): HTMLTableCellElement {
  return h('td', { className: `col-${label.toLowerCase()}`, dataset: { label } }, ...children);
}

/** The console the password column describes: the first VNC one, else the first. */
function mainConsole(vm: VmView): ConsoleView | undefined {
  return vm.consoles.find((c) => c.kind === 'vnc') ?? vm.consoles[0];
}

function stateClass(state: VmView['state']): string {
  return `badge state-${state.replace(/\s+/g, '-')}`;
}

function consoleList(host: string, vm: VmView, out: HTMLElement): HTMLElement | string {
  if (vm.consoles.length === 0) return h('span', { className: 'muted' }, 'none');
  return h(
    'ul',
    { className: 'consoles' },
    ...vm.consoles.map((c) =>
      h(
        'li',
        { className: c.isExposed ? 'console exposed' : 'console' },
        h('span', { className: 'console-kind' }, c.kind.toUpperCase()),
        ' ',
        h('code', null, c.address),
        c.isExposed &&
          h(
            'span',
            {
              className: 'badge badge-exposed',
              title: `Listens on ${c.address}, not only on loopback: anyone who can reach the hypervisor on that port can reach this console${c.hasPassword === true ? ' (it does ask for a password)' : ''}. Move to loopback makes it listen on 127.0.0.1 (vmdesk vnc-listen).`,
            },
            'exposed',
          ),
        c.isExposed && moveButton(host, vm, out),
      ),
    ),
  );
}

/** "Move to loopback": vnc-listen 127.0.0.1 through libvirt, after the user confirms (and, for a running VM, chooses to restart or not). */
function moveButton(host: string, vm: VmView, out: HTMLElement): HTMLButtonElement {
  const button = h('button', { className: 'btn btn-small btn-danger', attrs: { type: 'button' }, title: `Make ${vm.name}'s console listen on 127.0.0.1 only (its definition is saved on the host first)` }, 'Move to loopback');
  button.addEventListener('click', () => void moveToLoopback(host, vm, button, out));
  return button;
}

interface ListenReply {
  vm: string;
  address: string;
  isChanged: boolean;
  backupPath?: string;
  isRunning: boolean;
  isLiveStale: boolean;
  isRestarted: boolean;
}

async function moveToLoopback(host: string, vm: VmView, button: HTMLButtonElement, out: HTMLElement): Promise<void> {
  if (!window.confirm(`Make ${vm.name}'s console on ${host} listen on 127.0.0.1 only?\n\nvmdesk saves its current definition on the host, then changes only its <graphics> with virsh define. You will reach it through SSH (Console button).`)) return;
  const restart = vm.state === 'running' && window.confirm(`${vm.name} is running and keeps listening on the old address until it restarts.\n\nRestart it now (clean shutdown, up to 60 s)? Cancel changes the definition only.`);
  button.disabled = true;
  replace(out, h('span', { className: 'muted loading' }, restart ? `Moving ${vm.name}'s console and restarting it…` : `Moving ${vm.name}'s console…`));
  try {
    const r = await postJson<ListenReply>(`${vmPath(host, vm.uuid)}/vnc-listen`, { address: '127.0.0.1', restart });
    const text = !r.isChanged && !r.isRestarted
      ? `Already listening on ${r.address} in its definition.`
      : `Now defined to listen on ${r.address}${r.backupPath ? ` (previous definition saved on the host: ${r.backupPath})` : ''}.${r.isRestarted ? ' Restarted.' : r.isLiveStale ? ' Takes effect when it restarts.' : ''}`;
    replace(out, h('div', { className: 'action-ok' }, text));
    if (r.isRestarted || !r.isRunning) setTimeout(() => reloaders.get(host)?.(), 1500);
  } catch (err) {
    replace(out, errorBlock(err));
  } finally {
    button.disabled = false;
  }
}

function passwordText(c: ConsoleView | undefined): HTMLElement {
  if (c === undefined) return h('span', { className: 'muted' }, '—');
  if (c.hasPassword === null)
    return h('span', { className: 'muted', title: 'vmdesk has read-only libvirt access and cannot see whether a password is set' }, 'unknown');
  return h('span', null, c.hasPassword ? 'yes' : 'no');
}

function ipText(vm: VmView): HTMLElement {
  if (vm.ip === undefined) return h('span', { className: 'muted', title: 'No address in DHCP leases, the neighbour table or the guest agent' }, '—');
  return h(
    'span',
    { className: 'ip' },
    h('code', null, vm.ip.address),
    ' ',
    h('span', { className: 'muted' }, `(${vm.ip.source})`),
    vm.ip.isPinned === true && h('span', { className: 'badge badge-pinned', title: 'Reserved for this VM in the libvirt network\'s DHCP (vmdesk pin-ip)' }, 'pinned'),
  );
}

/** Why the browser console cannot open this VM, or null when it can. */
function consoleBlocker(vm: VmView): string | null {
  if (vm.consoles.some((c) => c.isUsable)) return null;
  if (vm.state !== 'running') return `VM is ${vm.state}`;
  if (vm.consoles.length === 0) return 'no graphical console';
  if (!vm.consoles.some((c) => c.kind === 'vnc')) return `${vm.consoles.map((c) => c.kind.toUpperCase()).join(', ')} only: the browser needs VNC`;
  return 'its VNC console cannot be opened from here';
}

function vmRow(host: string, vm: VmView): HTMLTableRowElement {
  const rdpOut = h('div', { className: 'action-out', attrs: { 'aria-live': 'polite' } });
  const copyOut = h('div', { className: 'action-out' });
  const moveOut = h('div', { className: 'action-out', attrs: { 'aria-live': 'polite' } });
  const blocker = consoleBlocker(vm);

  const consoleAction =
    blocker === null
      ? h('a', { className: 'btn btn-primary', attrs: { href: consoleHref(host, vm), target: '_blank', rel: 'noopener' } }, 'Console')
      : h('button', { className: 'btn btn-primary', title: `Console unavailable: ${blocker}`, attrs: { type: 'button', disabled: '' } }, 'Console');

  const rdp = h('button', { className: 'btn', attrs: { type: 'button' } }, 'RDP');
  if (vm.state !== 'running') {
    rdp.disabled = true;
    rdp.title = `RDP unavailable: VM is ${vm.state}`;
  } else {
    rdp.title = `Forward a local port to ${vm.name}'s RDP port (3389) and get a .rdp file`;
  }
  rdp.addEventListener('click', () => void startRdp(host, vm, rdp, rdpOut));

  // The RDP page (IronRDP's web client through /ws/rdp): a new tab, the token in its link's fragment.
  const rdpWeb =
    vm.state === 'running'
      ? h('a', { className: 'btn', attrs: { href: rdpHref(host, vm), target: '_blank', rel: 'noopener' }, title: `Remote Desktop to ${vm.name} in the browser, through the SSH chain` }, 'RDP in browser')
      : h('button', { className: 'btn', title: `RDP unavailable: VM is ${vm.state}`, attrs: { type: 'button', disabled: '' } }, 'RDP in browser');

  const copy = h('button', { className: 'btn', attrs: { type: 'button' }, title: vm.commands.vnc }, 'Copy CLI');
  copy.addEventListener('click', () => void copyCommand(vm.commands.vnc, copy, copyOut));

  return h(
    'tr',
    { dataset: { vm: vm.name } },
    cell('Name', h('span', { className: 'vm-name' }, vm.name)),
    cell('State', h('span', { className: stateClass(vm.state) }, vm.state)),
    cell('Console', consoleList(host, vm, moveOut), moveOut),
    cell('Password', passwordText(mainConsole(vm))),
    cell('IP', ipText(vm)),
    cell(
      'Actions',
      h('div', { className: 'actions' }, consoleAction, rdpWeb, rdp, copy),
      blocker !== null && h('div', { className: 'reason' }, blocker),
      rdpOut,
      copyOut,
    ),
  );
}

async function startRdp(host: string, vm: VmView, button: HTMLButtonElement, out: HTMLElement): Promise<void> {
  button.disabled = true;
  replace(out, h('span', { className: 'muted loading' }, `Opening RDP forward to ${vm.name}…`));
  try {
    const reply = await postJson<RdpReply>(`${vmPath(host, vm.uuid)}/rdp`, {});
    replace(
      out,
      h(
        'div',
        { className: 'rdp-out' },
        'RDP at ',
        h('code', { className: 'rdp-address' }, reply.address),
        rdpDownload(reply.rdpFile, `${vm.name}.rdp`, out),
      ),
    );
  } catch (err) {
    replace(out, errorBlock(err));
  } finally {
    button.disabled = false;
  }
}

/** The .rdp link: fetched with the token on click (a plain download would carry none). */
function rdpDownload(path: string, fileName: string, out: HTMLElement): HTMLElement {
  const a = h('a', { className: 'btn btn-small', attrs: { href: path, download: fileName } }, 'Download .rdp');
  a.addEventListener('click', (e) => {
    e.preventDefault();
    downloadFile(path, fileName).catch((err: unknown) => replace(out, errorBlock(err)));
  });
  return a;
}

const copyTimers = new WeakMap<HTMLButtonElement, ReturnType<typeof setTimeout>>();

async function copyCommand(command: string, button: HTMLButtonElement, out: HTMLElement): Promise<void> {
  try {
    if (navigator.clipboard === undefined) throw new Error('no clipboard API');
    await navigator.clipboard.writeText(command);
    replace(out);
    button.textContent = 'Copied ✓';
    button.classList.add('btn-done');
    clearTimeout(copyTimers.get(button));
    copyTimers.set(
      button,
      setTimeout(() => {
        button.textContent = 'Copy CLI';
        button.classList.remove('btn-done');
      }, 2000),
    );
  } catch {
    // No clipboard permission (or an insecure context): select the text for Ctrl-C instead.
    const field = h('input', { className: 'copy-field', attrs: { type: 'text', readonly: '', 'aria-label': 'vmdesk command' } });
    field.value = command;
    replace(out, field, h('span', { className: 'muted' }, 'Press Ctrl-C to copy.'));
    field.focus();
    field.select();
  }
}

// ---- tunnels ----

function renderTunnels(tunnels: TunnelView[]): void {
  if (tunnels.length === 0) {
    replace(tunnelsEl, h('p', { className: 'muted' }, 'No tunnels open. Consoles and RDP forwards you open show up here.'));
    return;
  }
  replace(
    tunnelsEl,
    h(
      'ul',
      { className: 'tunnels' },
      ...tunnels.map((t) =>
        h(
          'li',
          { className: `tunnel tunnel-${t.state}`, dataset: { tunnel: t.id } },
          h(
            'div',
            { className: 'tunnel-title' },
            h('span', { className: 'badge badge-kind' }, t.kind === 'rdp' ? 'RDP' : t.kind === 'rdp-web' ? 'RDP (browser)' : 'Console'),
            h('span', { className: 'tunnel-target' }, `${t.host}/${t.vm}`),
            h('span', { className: `badge tunnel-state state-${t.state}` }, t.state),
          ),
          t.address !== undefined && h('code', { className: 'tunnel-address' }, t.address),
          t.hops.length > 0 && hopChain(t.hops, true),
          h(
            'div',
            { className: 'tunnel-stats' },
            `${t.active} active`,
            h('span', { title: 'bytes received from the VM' }, ` · in ${formatBytes(t.bytesIn)}`),
            h('span', { title: 'bytes sent to the VM' }, ` · out ${formatBytes(t.bytesOut)}`),
          ),
        ),
      ),
    ),
  );
}

// ---- live updates ----

function showPageError(text: string | null): void {
  pageErrorEl.hidden = text === null;
  pageErrorEl.textContent = text ?? '';
}

function setLive(state: 'live' | 'reconnecting' | 'lost'): void {
  liveEl.textContent = state === 'live' ? 'live' : state === 'reconnecting' ? 'reconnecting…' : 'offline';
  liveEl.className = `live live-${state}`;
  document.body.dataset.live = state;
}

const EVENTS_RETRY_MS = 2_000;

/**
 * One EventSource at a time, each opened with a fresh single-use ticket
 * (EventSource cannot send the bearer header). Its own reconnect would
 * present the used ticket again, so on any error this closes it and opens a
 * new one with a new ticket; a refused ticket request (a restarted server)
 * stops for good.
 */
async function openEvents(): Promise<void> {
  let ticket: string;
  try {
    ticket = await fetchTicket({ purpose: 'events' });
  } catch (err) {
    if (err instanceof ApiError && err.code !== 'NETWORK') {
      setLive('lost');
      showPageError(`Live updates stopped: ${err.message}`);
      return;
    }
    setLive('reconnecting');
    setTimeout(() => void openEvents(), EVENTS_RETRY_MS);
    return;
  }
  const events = new EventSource(`/api/events?ticket=${encodeURIComponent(ticket)}`);
  events.addEventListener('open', () => {
    setLive('live');
    showPageError(null);
  });
  events.addEventListener('hosts', (e) => applyHosts(JSON.parse((e as MessageEvent<string>).data) as HostsReply));
  events.addEventListener('tunnels', (e) => renderTunnels((JSON.parse((e as MessageEvent<string>).data) as TunnelsEvent).tunnels));
  events.addEventListener('error', () => {
    events.close();
    setLive('reconnecting');
    setTimeout(() => void openEvents(), EVENTS_RETRY_MS);
  });
}

async function start(): Promise<void> {
  try {
    applyHosts(await fetchJson<HostsReply>('/api/hosts'));
  } catch (err) {
    replace(hostsEl, errorBlock(err, () => void start()));
  }
}

void start();
void openEvents();
