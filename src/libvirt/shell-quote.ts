/**
 * POSIX shell quoting for the one place vmdesk cannot avoid a shell: the
 * scripts it runs on a host. Those are parsed by the host's `/bin/sh`, never by
 * the SSH user's login shell (fish, tcsh... read quotes otherwise): the SSH
 * exec request is a fixed `/bin/sh -s` and the script follows on stdin
 * (ssh/remote-script.ts). Every word is single-quoted, because inside '...' no
 * character is special (POSIX.1-2017 XCU 2.2.2) except `'` itself, which is
 * written as `'\''` (close, escaped quote, reopen).
 */

/** Quotes one argument so a POSIX shell reads it back as exactly this word. */
export function quoteArg(s: string): string {
  if (s.includes('\0')) throw new TypeError('a shell argument cannot contain a NUL byte');
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Joins argv into one command line for /bin/sh; each word quoted, none interpreted. */
export function commandLine(argv: readonly string[]): string {
  if (argv.length === 0) throw new TypeError('commandLine: empty argv');
  return argv.map(quoteArg).join(' ');
}

/** A word as a person would paste it into a shell: left bare when plainly safe, else quoted (copy-safe commands in `ls`, `audit`, the dashboard). */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9._/:@%+=,-]+$/.test(s) ? s : quoteArg(s);
}
