/**
 * The whole inventory of a hypervisor in one SSH exec: a POSIX sh script that
 * runs every virsh command the inventory needs and prints their outputs in
 * frames, and the parser that splits the frames apart again.
 *
 * Framing. Every frame line starts with `@@` + a boundary of 128 random bits
 * chosen per run, so no output can contain one by accident, and a VM name
 * (which reaches the output inside dumpxml) cannot forge one without knowing
 * the boundary in advance. A section is:
 *
 *     @@B begin KIND KEY\n
 *     <the command's stdout, byte for byte>\n
 *     @@B end EXIT_STATUS\n
 *     <the command's stderr, if any>\n
 *
 * and the script ends with `@@B done`, so a cut-off stream is detected. KEY
 * is a UUID or a fixed word: names never appear in frame lines and never pass
 * through the shell (domains are addressed by UUID from `list --uuid`), so the
 * script needs no escaping of anything it learns at run time.
 *
 * Passwords. `dumpxml --security-info` is the only way to learn that a console
 * has a password; the script replaces each `passwd='...'` value with
 * `(redacted)` with sed before printing, so the secret never leaves the host.
 * Without read-write access that call fails and a plain `dumpxml-public`
 * section follows, in which a password cannot be seen either way.
 *
 * Needs POSIX sh, sed, virsh, and `ip` (else `arp -n`, else /proc/net/arp).
 * Run it as `sh -c <quoteArg(script)>` or feed it to `sh -s` on stdin.
 */
import { randomBytes } from 'node:crypto';
import { VmdeskError } from '../errors.js';
import { quoteArg } from './shell-quote.js';

export const REDACTED = '(redacted)';

export type SectionKind =
  | 'version'
  | 'list'
  | 'dumpxml'
  | 'dumpxml-public'
  | 'domifaddr-agent'
  | 'net-list'
  | 'net-dumpxml'
  | 'net-dhcp-leases'
  | 'neigh';

export interface RawSection {
  kind: SectionKind | string;
  /** A domain or network UUID, a list filter (`all`, `running`, ...) or the neighbour source (`ip`, `arp`, `proc`). */
  key: string;
  stdout: string;
  stderr: string;
  /** Undefined when the stream ended inside this section. */
  exitCode: number | undefined;
}

export interface RawInventory {
  sections: RawSection[];
  /** False when the `done` frame is missing: the output was cut off. */
  isComplete: boolean;
  /** Whatever was printed before the first frame (a login banner from the user's shell rc files). */
  preamble: string;
}

export interface InventoryScriptOptions {
  /** Also ask the QEMU guest agent for addresses (`domifaddr --source agent`) of running domains. */
  agentAddresses?: boolean;
}

/** A fresh boundary: `vmdesk-` and 32 hex digits. */
export function newBoundary(): string {
  return `vmdesk-${randomBytes(16).toString('hex')}`;
}

function checkBoundary(boundary: string): void {
  if (!/^[A-Za-z0-9_-]{16,}$/.test(boundary)) throw new TypeError('boundary must be at least 16 characters of [A-Za-z0-9_-]');
}

/**
 * Builds the script. `uri` is quoted with quoteArg; `boundary` (from
 * newBoundary) must be passed to parseInventoryOutput.
 */
export function buildInventoryScript(uri: string, boundary: string, opts: InventoryScriptOptions = {}): string {
  checkBoundary(boundary);
  const agent = opts.agentAddresses
    ? `  for vmd_d in $vmd_running; do
    vmd_is_uuid "$vmd_d" || continue
    vmd_run domifaddr-agent "$vmd_d" virsh -c "$vmd_uri" domifaddr --domain "$vmd_d" --source agent
  done
`
    : '';
  return `# vmdesk inventory (src/libvirt/inventory-script.ts)
LC_ALL=C
export LC_ALL
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export PATH
set -f
vmd_b=${quoteArg(`@@${boundary}`)}
vmd_uri=${quoteArg(uri)}
exec 4>&1
# vmd_run KIND KEY CMD...: stdout straight through, stderr captured, then the exit status.
vmd_run() {
  printf '%s begin %s %s\\n' "$vmd_b" "$1" "$2"
  shift 2
  vmd_err=$("$@" 2>&1 1>&4 4>&-)
  vmd_rc=$?
  printf '\\n%s end %s\\n' "$vmd_b" "$vmd_rc"
  if [ -n "$vmd_err" ]; then printf '%s\\n' "$vmd_err"; fi
  return 0
}
# vmd_run_xml KIND KEY CMD...: like vmd_run, with passwd values replaced before they are printed.
vmd_run_xml() {
  printf '%s begin %s %s\\n' "$vmd_b" "$1" "$2"
  shift 2
  vmd_err=$( { vmd_out=$("$@" 2>&3 3>&-); vmd_st=$?; printf '%s\\n' "$vmd_out" | sed "s/ passwd='[^']*'/ passwd='${REDACTED}'/g" >&4; exit "$vmd_st"; } 3>&1 )
  vmd_rc=$?
  printf '\\n%s end %s\\n' "$vmd_b" "$vmd_rc"
  if [ -n "$vmd_err" ]; then printf '%s\\n' "$vmd_err"; fi
  return 0
}
vmd_is_uuid() {
  case "$1" in
    ????????-????-????-????-????????????) case "$1" in *[!0-9a-fA-F-]*) return 1 ;; esac; return 0 ;;
  esac
  return 1
}
printf '\\n'
vmd_run version - virsh -c "$vmd_uri" version
vmd_run list all virsh -c "$vmd_uri" list --all --uuid
if [ "$vmd_rc" -eq 0 ]; then
  vmd_run list running virsh -c "$vmd_uri" list --uuid --state-running
  vmd_run list paused virsh -c "$vmd_uri" list --uuid --state-paused
  vmd_run list shutoff virsh -c "$vmd_uri" list --uuid --state-shutoff
  vmd_run list other virsh -c "$vmd_uri" list --uuid --state-other
  # A second, quiet listing feeds the loops (a section's stdout is not kept by the shell).
  vmd_all=$(virsh -c "$vmd_uri" list --all --uuid 2>/dev/null)
  vmd_running=$(virsh -c "$vmd_uri" list --uuid --state-running 2>/dev/null)
  for vmd_d in $vmd_all; do
    vmd_is_uuid "$vmd_d" || continue
    vmd_run_xml dumpxml "$vmd_d" virsh -c "$vmd_uri" dumpxml --domain "$vmd_d" --security-info
    if [ "$vmd_rc" -ne 0 ]; then
      vmd_run dumpxml-public "$vmd_d" virsh -c "$vmd_uri" dumpxml --domain "$vmd_d"
    fi
  done
${agent}  vmd_run net-list all virsh -c "$vmd_uri" net-list --all --uuid
  vmd_nets=$(virsh -c "$vmd_uri" net-list --all --uuid 2>/dev/null)
  for vmd_n in $vmd_nets; do
    vmd_is_uuid "$vmd_n" || continue
    vmd_run net-dumpxml "$vmd_n" virsh -c "$vmd_uri" net-dumpxml --network "$vmd_n"
    vmd_run net-dhcp-leases "$vmd_n" virsh -c "$vmd_uri" net-dhcp-leases --network "$vmd_n"
  done
fi
if command -v ip >/dev/null 2>&1; then
  vmd_run neigh ip ip neigh show
elif command -v arp >/dev/null 2>&1; then
  vmd_run neigh arp arp -n
else
  vmd_run neigh proc cat /proc/net/arp
fi
printf '%s done\\n' "$vmd_b"
`;
}

/**
 * Splits the script's stdout back into sections. Throws
 * LIBVIRT_OUTPUT_INVALID when no frame with this boundary is found at all
 * (the script did not run: wrong shell, or the command failed before it).
 */
export function parseInventoryOutput(text: string, boundary: string): RawInventory {
  checkBoundary(boundary);
  const marker = `\n@@${boundary} `;
  const pieces = text.split(marker);
  const preamble = pieces.shift() ?? '';
  if (pieces.length === 0) {
    throw new VmdeskError('LIBVIRT_OUTPUT_INVALID', 'the inventory script printed no frame: it did not run, or its output was lost', {
      context: { preamble: preamble.slice(0, 500) },
    });
  }
  const sections: RawSection[] = [];
  let current: RawSection | undefined;
  let isComplete = false;
  for (const piece of pieces) {
    const nl = piece.indexOf('\n');
    const header = nl < 0 ? piece : piece.slice(0, nl);
    const body = nl < 0 ? '' : piece.slice(nl + 1);
    const words = header.split(' ');
    if (words[0] === 'begin' && words.length === 3) {
      current = { kind: words[1] ?? '', key: words[2] ?? '', stdout: body, stderr: '', exitCode: undefined };
      sections.push(current);
    } else if (words[0] === 'end' && words.length === 2 && current && /^\d+$/.test(words[1] ?? '')) {
      current.exitCode = Number(words[1]);
      // The newline vmd_run prints after stderr belongs to the next frame's marker.
      current.stderr = body;
      current = undefined;
    } else if (words[0] === 'done' && words.length === 1) {
      isComplete = true;
    } else {
      throw new VmdeskError('LIBVIRT_OUTPUT_INVALID', `the inventory output has a malformed frame line: ${JSON.stringify(header.slice(0, 100))}`);
    }
  }
  return { sections, isComplete, preamble };
}
