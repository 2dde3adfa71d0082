/**
 * POSIX shell quoting for the one place vmdesk cannot avoid a shell: an SSH
 * exec request carries a single command string that the remote user's shell
 * parses (RFC 4254 section 6.5). Every word is single-quoted, because inside
 * '...' no character is special (POSIX.1-2017 XCU 2.2.2) except `'` itself,
 * which is written as `'\''` (close, escaped quote, reopen).
 */

/** Quotes one argument so a POSIX shell reads it back as exactly this word. */
export function quoteArg(s: string): string {
  if (s.includes('\0')) throw new TypeError('a shell argument cannot contain a NUL byte');
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Joins argv into one command line for `sh -c`; each word quoted, none interpreted. */
export function commandLine(argv: readonly string[]): string {
  if (argv.length === 0) throw new TypeError('commandLine: empty argv');
  return argv.map(quoteArg).join(' ');
}

/** A word as a person would paste it into a shell: left bare when plainly safe, else quoted (copy-safe commands in `ls`, `audit`, the dashboard). */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9._/:@%+=,-]+$/.test(s) ? s : quoteArg(s);
}
