/**
 * The fixed sh scripts of vmdesk's definition edits (libvirt/edits.ts),
 * recognised word for word so the demo hypervisor can answer them without a
 * shell: the backup writer (stdin to a new file under
 * ~/.local/state/vmdesk/backups, its path printed) and the temporary-file
 * wrapper around `virsh define --file "$f"`. Anything else is not one of
 * them. Pure; a demo, never used by a real code path.
 */
import { BACKUP_DIR, backupScript, withTempFileScript } from '../libvirt/edits.js';
import { quoteArg } from '../libvirt/shell-quote.js';
import { splitCommandLine } from './command-line.js';

export type HostScript =
  /** Write stdin to a new `$HOME/.local/state/vmdesk/backups/NAME` (umask 077, never over an existing file) and print that path. */
  | { kind: 'backup'; name: string }
  /** Write stdin to a fresh `mktemp` file, run `argv` (the file's path in place of `"$f"`), remove the file, exit with argv's status. */
  | { kind: 'with-temp-file'; argv: string[] };

export { BACKUP_DIR };

// The scripts' fixed parts, taken from the product's own builders around a marker, so the demo follows any change to them.
const MARK = 'vmdesk-demo-marker';
const [BACKUP_HEAD, BACKUP_TAIL] = backupScript(MARK).split(quoteArg(MARK)) as [string, string];
const [TEMP_HEAD, TEMP_TAIL] = withTempFileScript(MARK).split(MARK) as [string, string];
const TEMP_WORD = '"$f"';

/** Which of vmdesk's edit scripts `script` is; `tempPath` stands in for the temporary file's name. */
export function recognizeHostScript(script: string, tempPath: string): HostScript | undefined {
  if (script.startsWith(BACKUP_HEAD) && script.endsWith(BACKUP_TAIL)) {
    const words = splitCommandLine(script.slice(BACKUP_HEAD.length, script.length - BACKUP_TAIL.length));
    const name = words?.length === 1 && words[0]!.length === 1 ? words[0]![0]! : undefined;
    if (name === undefined || name === '' || name === '.' || name === '..' || name.includes('/')) return undefined;
    return { kind: 'backup', name };
  }
  if (script.startsWith(TEMP_HEAD) && script.endsWith(TEMP_TAIL)) {
    const line = script.slice(TEMP_HEAD.length, script.length - TEMP_TAIL.length);
    // "$f" is the one shell expansion in the line; with the path put in its place the rest is plain words.
    if (!/^[A-Za-z0-9/._-]+$/.test(tempPath)) return undefined;
    const words = splitCommandLine(line.split(TEMP_WORD).join(tempPath));
    if (words?.length !== 1) return undefined;
    return { kind: 'with-temp-file', argv: words[0]! };
  }
  return undefined;
}
