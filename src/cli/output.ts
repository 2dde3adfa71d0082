/** Terminal output of the CLI: tables, the forward summary, one-line errors. */
import { isVmdeskError, VmdeskError } from '../errors.js';
import type { ForwardStats } from '../forward/forwarder.js';
import type { ForwardTarget } from '../forward/types.js';
import { exitCodeFor } from './exit-codes.js';

/** Render rows as a left-aligned table with a header. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function formatTarget(t: ForwardTarget): string {
  if (t.kind === 'tcp') return `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
  if (t.kind === 'unix') return `unix:${t.path}`;
  return `${t.service} of ${JSON.stringify(t.vm)}`;
}

function hostPort(host: string, port: number | string): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Forward rows with consecutive ports folded into ranges (101 VNC ports print as one line). */
export function forwardRows(forwards: ForwardStats[]): { local: string; remote: string }[] {
  const rows: { local: string; remote: string }[] = [];
  let i = 0;
  while (i < forwards.length) {
    const first = forwards[i]!;
    let j = i;
    while (j + 1 < forwards.length) {
      const a = forwards[j]!;
      const b = forwards[j + 1]!;
      if (
        a.target.kind === 'tcp' &&
        b.target.kind === 'tcp' &&
        b.bindAddress === a.bindAddress &&
        b.localPort === a.localPort + 1 &&
        b.target.host === a.target.host &&
        b.target.port === a.target.port + 1
      ) {
        j++;
      } else break;
    }
    const last = forwards[j]!;
    if (j === i) rows.push({ local: hostPort(first.bindAddress, first.localPort), remote: formatTarget(first.target) });
    else {
      const t1 = first.target as { host: string; port: number };
      const t2 = last.target as { port: number };
      rows.push({ local: hostPort(first.bindAddress, `${first.localPort}-${last.localPort}`), remote: hostPort(t1.host, `${t1.port}-${t2.port}`) });
    }
    i = j + 1;
  }
  return rows;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function formatAge(sinceMs: number, nowMs = Date.now()): string {
  const s = Math.max(0, Math.round((nowMs - sinceMs) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Print an error the one way the CLI does; returns the exit code. */
export function reportError(err: unknown, json: boolean): number {
  const e = isVmdeskError(err)
    ? err
    : new VmdeskError('INTERNAL', `internal error: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  if (json) {
    process.stdout.write(`${JSON.stringify({ error: e.toJSON() })}\n`);
  } else {
    process.stderr.write(`vmdesk: ${e.message} [${e.code}]\n`);
    if (e.hint) process.stderr.write(`  hint: ${e.hint}\n`);
    if (e.code === 'INTERNAL' && process.env.VMDESK_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
  }
  return exitCodeFor(e.code);
}
