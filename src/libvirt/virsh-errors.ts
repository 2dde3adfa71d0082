/**
 * Turns a failed virsh run into a VmdeskError with a stable code. virsh has no
 * machine-readable errors, so this reads its stderr (the inventory runs it
 * with LC_ALL=C) and the exit status; anything unrecognised is
 * LIBVIRT_COMMAND_FAILED with virsh's own words kept in the message.
 */
import { VmdeskError, type ErrorCode, type ErrorContext } from '../errors.js';

export type VirshErrorCode = Extract<
  ErrorCode,
  'VM_NOT_FOUND' | 'LIBVIRT_PERMISSION_DENIED' | 'LIBVIRT_UNAVAILABLE' | 'VIRSH_MISSING' | 'LIBVIRT_COMMAND_FAILED'
>;

export interface VirshFailure {
  /** Exit status; 127 is the shell's "command not found". */
  exitCode: number | null;
  stderr: string;
}

const HINTS: Record<VirshErrorCode, string> = {
  VM_NOT_FOUND: '`vmdesk ls HOST` lists the VMs that host has',
  LIBVIRT_PERMISSION_DENIED: "add the SSH user to the hypervisor's `libvirt` group (then log in again), or use a user that has it",
  LIBVIRT_UNAVAILABLE: 'libvirtd is not running on the hypervisor: start it (`systemctl start libvirtd`)',
  VIRSH_MISSING: 'install the libvirt client on the hypervisor (Debian: libvirt-clients; RHEL: libvirt-client)',
  LIBVIRT_COMMAND_FAILED: 'run the virsh command shown on the hypervisor to see why it fails',
};

/** The stable code for a virsh failure (order matters: "not found" wins over the generic connect error). */
export function classifyVirshFailure(f: VirshFailure): VirshErrorCode {
  const e = f.stderr;
  if (f.exitCode === 127 || /(^|\n)(\S+: )*(\d+: )?virsh: (command )?not found/i.test(e) || /virsh: No such file or directory/.test(e)) {
    return 'VIRSH_MISSING';
  }
  // By name virsh says only "failed to get domain 'x'"; by UUID it adds "Domain not found: ...".
  if (/failed to get domain|Domain not found|no domain with matching (name|uuid|id)/i.test(e)) return 'VM_NOT_FOUND';
  // Socket mode 0770 root:libvirt -> EACCES; polkit (Debian's default auth_unix_rw) and ACLs say so in words.
  if (/Failed to connect socket to '[^']*': Permission denied|authentication (unavailable|failed)|access denied|polkit|not authorized/i.test(e)) {
    return 'LIBVIRT_PERMISSION_DENIED';
  }
  if (/Failed to connect socket to '[^']*': (No such file or directory|Connection refused)|failed to connect to the hypervisor|Cannot recv data|End of file while reading data/i.test(e)) {
    return 'LIBVIRT_UNAVAILABLE';
  }
  return 'LIBVIRT_COMMAND_FAILED';
}

/** virsh's own message, without its `error: ` prefixes, on one line. */
export function virshMessage(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.replace(/^error:\s*/, '').trim())
    .filter(Boolean)
    .join('; ');
}

/** A VmdeskError for a failed virsh command; `command` names it for the message (e.g. `dumpxml`). */
export function virshError(command: string, f: VirshFailure, context: ErrorContext = {}): VmdeskError {
  const code = classifyVirshFailure(f);
  const said = virshMessage(f.stderr) || `exit status ${f.exitCode ?? 'unknown'}`;
  return new VmdeskError(code, `virsh ${command} failed: ${said}`, {
    cause: Object.assign(new Error(f.stderr.trim() || `exit ${f.exitCode}`), { exitCode: f.exitCode }),
    context,
    hint: HINTS[code],
  });
}
