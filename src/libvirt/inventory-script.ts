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
 * Batches. virsh runs many commands in one process and one libvirt
 * connection when they come as one argument separated by `;`, so the script
 * makes a whole inventory from a few virsh processes (two for up to 31
 * domains, three for a read-only user), not one per domain: a quiet one for
 * the UUIDs of domains and networks, then one (per 200 sections) with every
 * command, each between virsh `echo` frames that awk turns into the sections
 * above. From 32 domains on, the commands are shared between two such
 * batches running side by side (libvirtd serves connections in parallel),
 * each writing its already redacted sections to a file in a private
 * `mktemp -d` directory that is removed on exit; the sections are printed in
 * the order they were queued. Without mktemp the batches run one after the
 * other. virsh goes on after a failing command and
 * exits with the last command's status (libvirt 9), so a batched section gets
 * `end 0` only when it is known to have succeeded: the batch wrote nothing on
 * stderr, or the section's output is not blank (a failed command prints only a
 * newline). The rest are run again: a failed `dumpxml --security-info` as
 * plain dumpxml in one more batch (read-only users), anything still failing in
 * a virsh process of its own, so a failure carries its own exit status and
 * stderr. A `batch N` section (N commands) keeps each batch's exit status and
 * its stderr, which cannot be pinned on one command. Sections therefore do not
 * come in a fixed order. If the quiet listing fails, `list all` runs alone
 * and its error is the result.
 *
 * Passwords. `dumpxml --security-info` is the only way to learn that a console
 * has a password; the script replaces each `passwd='...'` value with
 * `(redacted)` with sed before printing (a batch's whole output goes through
 * sed), so the secret never leaves the host.
 * Without read-write access that call fails and the domain gets a plain
 * `dumpxml-public` section instead (from the second batch, with no `dumpxml`
 * section; alone, after its failed `dumpxml` section), in which a password
 * cannot be seen either way.
 *
 * Needs POSIX sh, sed, awk, virsh (mktemp helps), and `ip` (else `arp -n`, else /proc/net/arp).
 * Run it through a RemoteExec (which feeds it to the host's `/bin/sh -s`), or as `sh -c <quoteArg(script)>`.
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
  const agent = opts.agentAddresses ? '1' : '';
  return `# vmdesk inventory (src/libvirt/inventory-script.ts)
LC_ALL=C
export LC_ALL
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export PATH
set -f
vmd_b=${quoteArg(`@@${boundary}`)}
vmd_uri=${quoteArg(uri)}
vmd_agent=${agent}
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
  vmd_err=$( { vmd_out=$("$@" 2>&3 3>&-); vmd_st=$?; printf '%s\\n' "$vmd_out" | vmd_redact >&4; exit "$vmd_st"; } 3>&1 )
  vmd_rc=$?
  printf '\\n%s end %s\\n' "$vmd_b" "$vmd_rc"
  if [ -n "$vmd_err" ]; then printf '%s\\n' "$vmd_err"; fi
  return 0
}
vmd_redact() {
  sed "s/ passwd='[^']*'/ passwd='${REDACTED}'/g"
}
vmd_is_uuid() {
  case "$1" in
    ????????-????-????-????-????????????) case "$1" in *[!0-9a-fA-F-]*) return 1 ;; esac; return 0 ;;
  esac
  return 1
}
# vmd_cmd KIND KEY: the virsh command of a section, fixed words and a checked UUID only.
vmd_cmd() {
  case "$1 $2" in
    'version -') vmd_c='version' ;;
    'list all') vmd_c='list --all --uuid' ;;
    'list running') vmd_c='list --uuid --state-running' ;;
    'list paused') vmd_c='list --uuid --state-paused' ;;
    'list shutoff') vmd_c='list --uuid --state-shutoff' ;;
    'list other') vmd_c='list --uuid --state-other' ;;
    'net-list all') vmd_c='net-list --all --uuid' ;;
    *)
      vmd_is_uuid "$2" || return 1
      case "$1" in
        dumpxml) vmd_c="dumpxml --domain $2 --security-info" ;;
        dumpxml-public) vmd_c="dumpxml --domain $2" ;;
        domifaddr-agent) vmd_c="domifaddr --domain $2 --source agent" ;;
        net-dumpxml) vmd_c="net-dumpxml --network $2" ;;
        net-dhcp-leases) vmd_c="net-dhcp-leases --network $2" ;;
        *) return 1 ;;
      esac ;;
  esac
  return 0
}
# vmd_one KIND KEY: one section in a virsh process of its own (exact exit status and stderr).
vmd_one() {
  vmd_cmd "$1" "$2" || return 0
  case "$1" in
    dumpxml)
      vmd_run_xml dumpxml "$2" virsh -c "$vmd_uri" $vmd_c
      if [ "$vmd_rc" -ne 0 ]; then vmd_run dumpxml-public "$2" virsh -c "$vmd_uri" dumpxml --domain "$2"; fi ;;
    dumpxml-public) vmd_run_xml dumpxml-public "$2" virsh -c "$vmd_uri" $vmd_c ;;
    *) vmd_run "$1" "$2" virsh -c "$vmd_uri" $vmd_c ;;
  esac
}
# Batches: many sections from one virsh process (one connection), each command
# framed with virsh's own echo. virsh goes on after a failing command and
# exits with the last command's status, so a section is trusted when the batch
# wrote nothing on stderr, or when its output is not blank (a failed command
# prints nothing but a newline); every other section is left out and named on
# vmd_redo ("KIND KEY" pairs) to be run again. vmd_add KIND KEY queues one;
# vmd_flush starts the queue as a batch (in the background when there is a
# private temp dir: libvirtd serves several connections at once), vmd_join
# waits for the batches and prints their sections in the order they were queued.
vmd_q=''
vmd_qn=0
vmd_want=''
vmd_redo=''
vmd_fn=0
# One argument must stay under Linux's 128 KiB MAX_ARG_STRLEN.
vmd_chunk=200
vmd_add() {
  vmd_cmd "$1" "$2" || return 0
  # Without a working awk, every section in a virsh process of its own (slow, but whole).
  if [ -n "$vmd_noawk" ]; then vmd_one "$1" "$2"; return 0; fi
  vmd_q="$vmd_q echo $vmd_b begin $1 $2; $vmd_c; echo $vmd_b end -;"
  vmd_want="$vmd_want $1/$2"
  vmd_qn=$((vmd_qn + 1))
  if [ "$vmd_qn" -ge "$vmd_chunk" ]; then vmd_flush; fi
}
# vmd_batch: the queued batch's sections on stdout, the ones to run again on stderr.
vmd_batch() {
  { vmd_e=$(virsh -c "$vmd_uri" "$vmd_q" 2>&1 1>&3 3>&- 4>&-); vmd_s=$?
    printf '%s batch-end %s\\n' "$vmd_b" "$vmd_s"
    if [ -n "$vmd_e" ]; then printf '%s\\n' "$vmd_e"; fi; } 3>&1 | vmd_redact | awk -v b="$vmd_b" -v want="$vmd_want" '
  BEGIN { n = 0; part = 0; tail = 0; err = ""; st = "" }
  tail { err = err $0 "\\n"; next }
  index($0, b " batch-end ") == 1 { st = substr($0, length(b) + 12); tail = 1; part = 0; next }
  part && $0 == b " end -" { done[n] = 1; part = 0; next }
  index($0, b " begin ") == 1 { n++; hdr[n] = $0; body[n] = ""; part = 1; next }
  part { body[n] = body[n] $0 "\\n"; next }
  END {
    clean = (st == "0" && err == "")
    for (i = 1; i <= n; i++) {
      if (!done[i] || !(clean || body[i] ~ /[^ \\t\\n]/)) continue
      printf "%s\\n%s\\n%s end 0\\n", hdr[i], body[i], b
      w = substr(hdr[i], length(b) + 8); sub(/ /, "/", w); ok[w] = 1
    }
    printf "%s begin batch %d\\n\\n%s end %s\\n%s", b, n, b, (st == "" ? "-1" : st), err
    c = split(want, ws, " ")
    for (i = 1; i <= c; i++) if (!(ws[i] in ok)) { w = ws[i]; sub(/\\//, " ", w); print w > "/dev/stderr" }
  }'
}
vmd_flush() {
  [ "$vmd_qn" -gt 0 ] || return 0
  if [ -n "$vmd_tmp" ]; then
    vmd_fn=$((vmd_fn + 1))
    vmd_batch >"$vmd_tmp/$vmd_fn.out" 2>"$vmd_tmp/$vmd_fn.redo" &
  else
    vmd_redo="$vmd_redo
$(vmd_batch 2>&1 1>&4 4>&-)"
  fi
  vmd_q=''
  vmd_qn=0
  vmd_want=''
}
vmd_join() {
  vmd_flush
  [ -n "$vmd_tmp" ] || return 0
  wait
  vmd_i=1
  while [ "$vmd_i" -le "$vmd_fn" ]; do
    cat "$vmd_tmp/$vmd_i.out"
    vmd_redo="$vmd_redo
$(cat "$vmd_tmp/$vmd_i.redo")"
    rm -f "$vmd_tmp/$vmd_i.out" "$vmd_tmp/$vmd_i.redo"
    vmd_i=$((vmd_i + 1))
  done
  vmd_fn=0
}
printf '\\n'
# The UUIDs the batch is made of (quiet; the batch lists them again, framed).
vmd_ids=$(virsh -c "$vmd_uri" "list --all --uuid; echo $vmd_b nets; net-list --all --uuid; echo $vmd_b running; list --uuid --state-running" 2>/dev/null)
if [ "$?" -ne 0 ]; then
  vmd_run list all virsh -c "$vmd_uri" list --all --uuid
  vmd_ok=$vmd_rc
  vmd_ids=''
else
  vmd_ok=0
fi
vmd_tmp=''
vmd_noawk=''
if [ "$vmd_ok" -eq 0 ]; then
  echo | awk '{ print }' >/dev/null 2>&1 || vmd_noawk=1
  set -- $vmd_ids
  # Two batches side by side once there is enough to share (the output only ever holds redacted text).
  if [ "$#" -ge 32 ]; then
    vmd_tmp=$(mktemp -d "\${TMPDIR:-/tmp}/vmdesk-inv.XXXXXX" 2>/dev/null) || vmd_tmp=''
  fi
  if [ -n "$vmd_tmp" ] && [ -d "$vmd_tmp" ]; then
    trap 'rm -rf "$vmd_tmp"' EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
    vmd_chunk=$(( ($# + 7 + 1) / 2 ))
    if [ "$vmd_chunk" -gt 200 ]; then vmd_chunk=200; fi
  else
    vmd_tmp=''
  fi
  for vmd_k in 'version -' 'list all' 'list running' 'list paused' 'list shutoff' 'list other' 'net-list all'; do
    vmd_add $vmd_k
  done
  vmd_m=domains
  vmd_next=''
  for vmd_w in $vmd_ids; do
    if [ -n "$vmd_next" ]; then vmd_m=$vmd_w; vmd_next=''; continue; fi
    if [ "$vmd_w" = "$vmd_b" ]; then vmd_next=1; continue; fi
    vmd_is_uuid "$vmd_w" || continue
    case "$vmd_m" in
      domains) vmd_add dumpxml "$vmd_w" ;;
      nets) vmd_add net-dumpxml "$vmd_w"; vmd_add net-dhcp-leases "$vmd_w" ;;
      running) if [ -n "$vmd_agent" ]; then vmd_add domifaddr-agent "$vmd_w"; fi ;;
    esac
  done
  vmd_join
  # What failed in a batch: a domain's secure dumpxml goes to one more batch as plain dumpxml (read-only access), the rest runs alone.
  vmd_chunk=200
  vmd_again=$vmd_redo
  vmd_redo=''
  set -- $vmd_again
  while [ "$#" -ge 2 ]; do
    if [ "$1" = dumpxml ]; then vmd_add dumpxml-public "$2"; else vmd_one "$1" "$2"; fi
    shift 2
  done
  vmd_join
  # A plain dumpxml that failed in a batch too: both again, alone, so the error is this domain's own.
  set -- $vmd_redo
  while [ "$#" -ge 2 ]; do
    if [ "$1" = dumpxml-public ]; then vmd_one dumpxml "$2"; else vmd_one "$1" "$2"; fi
    shift 2
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
