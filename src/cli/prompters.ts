/**
 * Prompters at the CLI edge: the terminal (secrets typed without echo), or
 * OpenSSH's SSH_ASKPASS program when there is no terminal. Neither exists in
 * batch use, and then nothing is asked.
 */
import { execFile } from 'node:child_process';
import { VmdeskError } from '../errors.js';
import type { Prompter } from '../ssh/prompter.js';

/** Asks on the controlling terminal; one question at a time. */
export class TtyPrompter implements Prompter {
  private queue: Promise<unknown> = Promise.resolve();

  ask(question: string, opts: { echo: boolean }): Promise<string> {
    const next = this.queue.then(() => this.askNow(question, opts));
    this.queue = next.catch(() => {});
    return next;
  }

  private askNow(question: string, { echo }: { echo: boolean }): Promise<string> {
    const input = process.stdin;
    const out = process.stderr;
    out.write(question);
    return new Promise<string>((resolve, reject) => {
      let answer = '';
      const wasRaw = input.isRaw;
      input.setRawMode(true);
      input.resume();
      input.setEncoding('utf8');
      const finish = (err?: Error) => {
        input.off('data', onData);
        input.setRawMode(wasRaw);
        input.pause();
        out.write('\n');
        if (err) reject(err);
        else resolve(answer);
      };
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n') return finish();
          if (ch === '\u0003') return finish(new VmdeskError('INTERRUPTED', 'interrupted'));
          if (ch === '\u0004' && answer === '') return finish(new VmdeskError('INTERRUPTED', 'no answer (end of input)'));
          if (ch === '\u007f' || ch === '\b') {
            if (answer.length > 0) {
              answer = answer.slice(0, -1);
              if (echo) out.write('\b \b');
            }
            continue;
          }
          answer += ch;
          if (echo) out.write(ch);
        }
      };
      input.on('data', onData);
    });
  }
}

/** Asks through SSH_ASKPASS, as OpenSSH does (the question is argv[1], the answer its stdout). */
export class AskpassPrompter implements Prompter {
  constructor(private readonly program: string) {}

  ask(question: string, { echo }: { echo: boolean }): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(this.program, [question], { env: { ...process.env, ...(echo ? { SSH_ASKPASS_PROMPT: 'confirm' } : {}) }, timeout: 300_000 }, (err, stdout) => {
        if (err) reject(new VmdeskError('INTERRUPTED', `SSH_ASKPASS program ${this.program} gave no answer`, { cause: err }));
        else resolve(stdout.replace(/\r?\n$/, ''));
      });
    });
  }
}

/** The prompter for this process, or undefined in batch mode. Like OpenSSH: SSH_ASKPASS_REQUIRE=force prefers askpass; without a terminal askpass needs DISPLAY. */
export function choosePrompter(env: NodeJS.ProcessEnv = process.env): Prompter | undefined {
  const askpass = env.SSH_ASKPASS;
  const require = env.SSH_ASKPASS_REQUIRE;
  if (askpass && require === 'force') return new AskpassPrompter(askpass);
  if (process.stdin.isTTY && process.stderr.isTTY) return new TtyPrompter();
  if (askpass && require !== 'never' && (env.DISPLAY || env.WAYLAND_DISPLAY || require === 'prefer')) return new AskpassPrompter(askpass);
  return undefined;
}
