/**
 * `virsh event --all --loop`, read line by line: which domain an event names
 * and whether it can move a console or an address. Pure. virsh (libvirt 9)
 * prints, one line per event, flushed as it happens:
 *
 *     event 'lifecycle' for domain 'win2019': Stopped Destroyed
 *     event 'reboot' for domain 'win2019'
 *     events received: 15
 *
 * (fixtures/libvirt/event-all-loop-*.txt). The name is printed raw: a name may
 * hold `': ` or a newline, so a line names a domain only as "one of the names
 * it starts with"; callers invalidate every candidate and treat a line they
 * cannot read as "anything may have changed".
 */
import { commandLine } from './shell-quote.js';
import { virshArgv } from './virsh-argv.js';

/** One line of `virsh event` output. */
export type DomainEventLine =
  /** `rest` is the text after `for domain '`: NAME then `'` (no detail) or `': DETAIL`. */
  | { kind: 'domain'; event: string; rest: string }
  /** The count virsh prints when its loop ends. */
  | { kind: 'summary'; count: number }
  | { kind: 'blank' }
  /** domainEventsScript's own line: the host's sh runs it and virsh was started. */
  | { kind: 'started' }
  /** The answer to syncCommand(id): every line the host printed before it has been read. */
  | { kind: 'sync'; id: number }
  /** domainEventsScript's own line: virsh exited with `code`. */
  | { kind: 'exit'; code: number }
  /** Anything else (a name with a newline in it, a newer virsh): the safe reading is "something changed". */
  | { kind: 'unknown'; line: string };

/** `--timestamp`'s prefix, `2026-12-04 21:19:03.084+0000: `. */
const TIMESTAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}[+-]\d{4}: /;
const DOMAIN_EVENT = /^event '([a-z][a-z0-9-]*)' for domain '/;

/** The argv of the long-lived watcher: every domain event, until killed. */
export function domainEventsArgv(uri: string): string[] {
  return virshArgv(uri, 'event', '--all', '--loop');
}

/**
 * The script SshChain.execStream runs: `vmdesk-events-started` once virsh is
 * launched, virsh in a background subshell that prints
 * `vmdesk-events-exit STATUS` when virsh ends (whatever the login shell
 * around /bin/sh does with its descriptors), and an EXIT trap that stops it
 * when the channel's EOF ends /bin/sh, so no virsh outlives its channel.
 */
export function domainEventsScript(uri: string): string {
  return [
    '(',
    `  trap 'kill "$vmdesk_virsh" 2>/dev/null' TERM`,
    `  ${commandLine(domainEventsArgv(uri))} </dev/null &`,
    '  vmdesk_virsh=$!',
    '  wait "$vmdesk_virsh"',
    '  echo "vmdesk-events-exit $?"',
    ') &',
    'vmdesk_events=$!',
    `trap 'kill "$vmdesk_events" 2>/dev/null' EXIT`,
    'echo vmdesk-events-started',
  ].join('\n');
}

/**
 * What to send on the stream's stdin to get `vmdesk-events-sync ID` back: the
 * host's /bin/sh, done with the script, reads its next command there. SSH
 * keeps a channel's data in order (RFC 4254 s5.2), so the answer comes after
 * every event virsh had printed when it ran: a barrier.
 */
export function syncCommand(id: number): string {
  return `echo vmdesk-events-sync ${Math.trunc(id)}\n`;
}

/** Read one output line (without its newline). */
export function parseDomainEventLine(raw: string): DomainEventLine {
  const line = raw.replace(/\r$/, '').replace(TIMESTAMP, '');
  if (line.trim() === '') return { kind: 'blank' };
  if (line === 'vmdesk-events-started') return { kind: 'started' };
  const sync = /^vmdesk-events-sync (\d+)$/.exec(line);
  if (sync) return { kind: 'sync', id: Number(sync[1]) };
  const exit = /^vmdesk-events-exit (\d+)$/.exec(line);
  if (exit) return { kind: 'exit', code: Number(exit[1]) };
  const summary = /^events received: (\d+)$/.exec(line);
  if (summary) return { kind: 'summary', count: Number(summary[1]) };
  const m = DOMAIN_EVENT.exec(line);
  if (m) {
    const rest = line.slice(m[0].length);
    // A whole line ends with the closing quote or carries `': DETAIL`; a cut one (a newline in a name) does neither.
    if (rest.endsWith("'") || rest.includes("': ")) return { kind: 'domain', event: m[1]!, rest };
  }
  return { kind: 'unknown', line };
}

/** Whether a domain event line could be about the domain named `name` (several names can fit one line; all of them may be meant). */
export function mayName(e: { rest: string }, name: string): boolean {
  return e.rest === `${name}'` || e.rest.startsWith(`${name}': `);
}

/**
 * Events that cannot move a console or a guest address: a VNC client
 * connecting (`graphics`, sent for each of our own connections) or a balloon
 * or clock change. Every other event, including ones this list does not know,
 * is taken to move them.
 */
const ENDPOINT_NEUTRAL = new Set(['graphics', 'balloon-change', 'rtc-change', 'block-threshold', 'migration-iteration', 'job-completed']);

/** True when the event can change where a domain's console or guest address is. */
export function movesEndpoints(e: { event: string }): boolean {
  return !ENDPOINT_NEUTRAL.has(e.event);
}
