/**
 * Which domains exist and in what state. The inventory does not parse the
 * human `virsh list --all` table: it lists UUIDs (`list --uuid`, one per line,
 * a fixed alphabet) and asks per state (`--state-running`, ...), so a name can
 * never be confused with a column. parseDomainTable is kept for people who
 * paste the table, and reads it from both ends because a name may hold spaces.
 */
import { VmdeskError } from '../errors.js';

/** virsh's words for a domain state (tools/virsh-domain-monitor.c), `idle` being libvirt's BLOCKED. */
export const DOMAIN_STATES = ['running', 'idle', 'paused', 'in shutdown', 'shut off', 'crashed', 'pmsuspended', 'no state'] as const;
export type DomainState = (typeof DOMAIN_STATES)[number];

export interface DomainRow {
  /** Set for running domains; `-` in the table for inactive ones. */
  id?: number;
  name: string;
  state: DomainState;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID.test(s);
}

declare const uuidOf: unique symbol;
/**
 * A domain's UUID as libvirt reported it (lower case). virsh reads any other
 * `--domain` text as an ID first, then a UUID, then a name, so a VM named `1`
 * or named like another VM's UUID would reach that other VM: every virsh argv
 * builder takes this type, and a name becomes one only by an exact lookup.
 */
export type DomainUuid = string & { readonly [uuidOf]: 'domain' };
/** A libvirt network's UUID (virsh reads `--network` text as a UUID, then a name). */
export type NetworkUuid = string & { readonly [uuidOf]: 'network' };

function checkedUuid(s: string, what: string): string {
  const u = s.trim().toLowerCase();
  if (!isUuid(u)) throw new VmdeskError('LIBVIRT_OUTPUT_INVALID', `libvirt reported ${JSON.stringify(s)} as a ${what} UUID`);
  return u;
}

/** A UUID libvirt reported for a domain (list --uuid, <uuid> of dumpxml); throws LIBVIRT_OUTPUT_INVALID for anything else. */
export function asDomainUuid(s: string): DomainUuid {
  return checkedUuid(s, 'domain') as DomainUuid;
}

/** A UUID libvirt reported for a network (<uuid> of net-dumpxml). */
export function asNetworkUuid(s: string): NetworkUuid {
  return checkedUuid(s, 'network') as NetworkUuid;
}

/** `virsh list --uuid` / `net-list --uuid`: one UUID per line, lower-cased; anything else is skipped. */
export function parseUuidList(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(isUuid)
    .map((u) => u.toLowerCase());
}

/**
 * `virsh list --all --name` / `net-list --name`: one name per line, exactly as
 * printed (libvirt refuses names with a newline; leading and trailing spaces
 * are kept). virsh ends the list with an empty line, which is dropped.
 */
export function parseNameList(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

/** `virsh domstate DOM [--reason]`: `running (booted)` -> { state: 'running', reason: 'booted' }. */
export function parseDomstate(text: string): { state: DomainState | string; reason?: string } {
  const line = text.trim().split('\n')[0]?.trim() ?? '';
  const m = /^(.*?)\s*\(([^()]*)\)$/.exec(line);
  return m?.[1] !== undefined && m[2] !== undefined ? { state: m[1], reason: m[2] } : { state: line };
}

/**
 * The human `virsh list --all` table. The state is matched at the end of the
 * line and the id at the start; the name is what lies between, less the
 * column padding (so trailing spaces of a name are lost: use the UUID path).
 */
export function parseDomainTable(text: string): DomainRow[] {
  const rows: DomainRow[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+|-)\s+(.*\S)\s*$/.exec(line);
    if (!m?.[1] || m[2] === undefined) continue;
    const rest = m[2];
    const state = DOMAIN_STATES.find((s) => rest === s || rest.endsWith(` ${s}`));
    if (!state) continue;
    const name = rest.slice(0, rest.length - state.length).replace(/\s+$/, '');
    if (name === '') continue;
    rows.push({ ...(m[1] !== '-' ? { id: Number(m[1]) } : {}), name, state });
  }
  return rows;
}
