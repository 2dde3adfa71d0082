/**
 * How a POSIX sh script runs on a host whatever the SSH user's login shell is.
 * sshd hands an exec request's string to that shell (`$SHELL -c STRING`; RFC
 * 4254 s6.5 leaves its meaning to the server), and fish, tcsh and others read
 * quoting their own way: fish takes `\'` inside '...' as an escape, tcsh
 * expands `!` there. So the exec string is always REMOTE_SHELL_COMMAND, an
 * absolute path and one flag that every shell reads alike and that holds
 * nothing from the user, and the script goes to that `/bin/sh` over the
 * channel's stdin, followed by EOF:
 *
 *     {
 *     SCRIPT
 *     } </dev/null
 *
 * or, when the script has standard input (a domain XML for `virsh define`):
 *
 *     { printf '%s' 'DATA' 2>/dev/null | {
 *     SCRIPT
 *     }
 *     } </dev/null
 *
 * The outer brace group is one compound command, which sh reads whole before
 * it runs any of it (POSIX.1-2017 XCU 2.10, the grammar), so a command inside
 * that reads stdin finds /dev/null (or DATA), never the rest of the script;
 * and a stream cut short is a syntax error that runs nothing. DATA is
 * quoteArg's single quoting (nothing is special inside '...', XCU 2.2.2), byte
 * for byte; printf is a builtin of dash, bash, busybox ash and ksh, so DATA
 * (secrets included) never reaches a command line that `ps` shows, and its
 * stderr is dropped so a script that stops reading early adds no broken-pipe
 * message. /bin/sh exits at EOF with the status of the group's last command:
 * the script's status and output are exactly the script's. SCRIPT must be a
 * complete sh program (balanced, no trailing `\`): a broken one fails as a
 * syntax error. Pure: no ssh here.
 */
import { VmdeskError } from '../errors.js';
import { quoteArg } from '../libvirt/shell-quote.js';

/** The exec request vmdesk sends, always: the script follows on stdin. */
export const REMOTE_SHELL_COMMAND = '/bin/sh -s';

const PLAIN_HEAD = '{\n';
const PLAIN_TAIL = '\n} </dev/null\n';
const DATA_HEAD = "{ printf '%s' ";
const DATA_PIPE = ' 2>/dev/null | {\n';
const DATA_TAIL = '\n}\n} </dev/null\n';

function refuseNul(what: string, b: Buffer): void {
  if (b.includes(0)) {
    throw new VmdeskError('INTERNAL', `a remote ${what} cannot carry a NUL byte (a shell string ends there)`, {
      hint: 'this is a bug in vmdesk; please report the command that failed',
    });
  }
}

/** The bytes to send on the stdin of REMOTE_SHELL_COMMAND so that /bin/sh runs `script` with `stdin` as its standard input. */
export function encodeRemoteScript(script: string, stdin?: string | Buffer): Buffer {
  const body = Buffer.from(script, 'utf8');
  refuseNul('script', body);
  if (stdin === undefined) return Buffer.concat([Buffer.from(PLAIN_HEAD), body, Buffer.from(PLAIN_TAIL)]);
  const data = typeof stdin === 'string' ? Buffer.from(stdin, 'utf8') : stdin;
  refuseNul('script\'s standard input', data);
  // latin1 maps every byte to one code unit and back, so quoting works on arbitrary bytes.
  const quoted = Buffer.from(quoteArg(data.toString('latin1')), 'latin1');
  return Buffer.concat([Buffer.from(DATA_HEAD), quoted, Buffer.from(DATA_PIPE), body, Buffer.from(DATA_TAIL)]);
}

/** A script and its standard input, as encodeRemoteScript got them. */
export interface RemoteScript {
  script: string;
  stdin?: Buffer;
}

/** Reads quoteArg's output at `at` (`'...'` pieces joined by `\'`); the text and where it ends, or undefined. */
function readQuoted(text: string, at: number): { value: string; end: number } | undefined {
  let value = '';
  let i = at;
  for (;;) {
    if (text[i] !== "'") return undefined;
    const close = text.indexOf("'", i + 1);
    if (close < 0) return undefined;
    value += text.slice(i + 1, close);
    i = close + 1;
    if (!text.startsWith("\\''", i)) return { value, end: i };
    value += "'";
    i += 2;
  }
}

/**
 * The script and standard input that encodeRemoteScript framed into `input`,
 * or undefined for anything else. For in-process servers that answer
 * vmdesk's commands without a shell (the demo).
 */
export function decodeRemoteScript(input: Buffer): RemoteScript | undefined {
  const text = input.toString('latin1');
  if (text.includes('\0')) return undefined;
  const utf8 = (s: string) => Buffer.from(s, 'latin1').toString('utf8');
  if (text.startsWith(DATA_HEAD)) {
    const data = readQuoted(text, DATA_HEAD.length);
    if (!data || !text.startsWith(DATA_PIPE, data.end) || !text.endsWith(DATA_TAIL)) return undefined;
    const start = data.end + DATA_PIPE.length;
    if (start > text.length - DATA_TAIL.length) return undefined;
    return { script: utf8(text.slice(start, text.length - DATA_TAIL.length)), stdin: Buffer.from(data.value, 'latin1') };
  }
  if (text.startsWith(PLAIN_HEAD) && text.endsWith(PLAIN_TAIL) && text.length >= PLAIN_HEAD.length + PLAIN_TAIL.length) {
    return { script: utf8(text.slice(PLAIN_HEAD.length, text.length - PLAIN_TAIL.length)) };
  }
  return undefined;
}
