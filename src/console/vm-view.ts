/**
 * What the dashboard shows of a VM: its consoles (address, exposed or not,
 * password), its best guest address and the CLI commands that reach it. Pure:
 * built from an InventoryDomain; names are shell-quoted in commands so a
 * copied command cannot run anything else.
 */
import type { GraphicsInfo } from '../libvirt/domain-xml.js';
import { isExposed } from '../libvirt/domain-xml.js';
import type { InventoryDomain, InventoryState, VmAddress } from '../libvirt/inventory.js';

export { shellWord };
import { shellWord } from '../libvirt/shell-quote.js';
import { bestAddress } from '../libvirt/vm-target.js';

export interface ConsoleView {
  kind: string;
  /** `127.0.0.1:5900`, `[::]:5901`, `unix:/path`, `network:NAME:5900`, `127.0.0.1:auto`. */
  address: string;
  isExposed: boolean;
  /** Null when libvirt access is read-only and the password cannot be seen. */
  hasPassword: boolean | null;
  /** A VNC console of a running VM: the browser console can open it. */
  isUsable: boolean;
}

export interface VmView {
  name: string;
  uuid: string;
  state: InventoryState;
  consoles: ConsoleView[];
  ip?: { address: string; source: VmAddress['source']; isPinned?: boolean };
  commands: { vnc: string; rdp: string };
}

/** Where a console listens, as `ls` and the dashboard print it. */
export function consoleAddress(g: GraphicsInfo): string {
  const sock = g.socket ?? g.listens.find((l) => l.type === 'socket')?.socket;
  if (sock) return `unix:${sock}`;
  const network = g.listens.find((l) => l.type === 'network');
  const listen = g.listens.find((l) => l.address)?.address;
  const addr = listen ?? (network ? `network:${network.network ?? '?'}` : '127.0.0.1');
  const port = g.port !== undefined ? String(g.port) : g.autoport ? 'auto' : '?';
  return `${addr.includes(':') && !addr.startsWith('network:') ? `[${addr}]` : addr}:${port}`;
}

/** The dashboard's view of one domain on `host`; `pinned` maps MACs to their DHCP reservations. */
export function vmView(d: InventoryDomain, host: string, pinned: ReadonlyMap<string, string> = new Map()): VmView {
  const name = d.name ?? d.uuid;
  const ref = shellWord(`${host}/${name}`);
  const consoles = d.graphics.map(
    (g): ConsoleView => ({
      kind: g.type,
      address: consoleAddress(g),
      isExposed: isExposed(g),
      hasPassword: d.arePasswordsKnown ? g.hasPassword : null,
      isUsable: g.type === 'vnc' && d.state === 'running',
    }),
  );
  const best = bestAddress(d);
  const view: VmView = {
    name,
    uuid: d.uuid,
    state: d.state,
    consoles,
    commands: { vnc: `vmdesk vnc ${d.state === 'running' ? '' : '--start '}${ref}`, rdp: `vmdesk rdp ${ref}` },
  };
  if (best) view.ip = { address: best.ip, source: best.source, ...(pinned.get(best.mac.toLowerCase()) === best.ip ? { isPinned: true } : {}) };
  return view;
}
