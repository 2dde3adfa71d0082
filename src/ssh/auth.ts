/**
 * Client authentication for one hop, in OpenSSH's order: agent keys, then
 * identity files (passphrase asked through the prompter), then
 * keyboard-interactive and password when a prompter exists (RFC 4252 s5,
 * RFC 4256). What succeeded is cached per hop so a reconnect in the
 * background needs no person.
 */
import { readFile, access } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthHandlerMiddleware, AuthenticationType, ParsedKey, Prompt } from 'ssh2';
import { VmdeskError } from '../errors.js';
import type { Prompter } from './prompter.js';
import type { HopSpec } from './types.js';

const { utils } = ssh2;

/** Secrets kept in memory for one hop for the tunnel's life, so reconnects need no prompt. */
export interface CredentialCache {
  keys: Map<string, ParsedKey>;
  password?: string;
  kbdAnswers?: string[];
}

export function newCredentialCache(): CredentialCache {
  return { keys: new Map() };
}

export interface AuthOptions {
  hop: HopSpec;
  hopIndex: number;
  hopCount: number;
  prompter: Prompter | undefined;
  cache: CredentialCache;
  /** The agent socket; undefined or 'none' disables agent auth. */
  agentSocket: string | undefined;
}

export interface AuthSession {
  handler: AuthHandlerMiddleware;
  /** The error to report when the server closes with every method exhausted. */
  failure(): VmdeskError;
  /** Record that authentication succeeded (commits the in-flight secrets to the cache). */
  succeeded(): void;
}

type Step = { kind: 'none' } | { kind: 'agent' } | { kind: 'key'; path: string } | { kind: 'kbd' } | { kind: 'password' };

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function isEncryptedKeyError(err: Error): boolean {
  return /encrypted|passphrase|bad decrypt/i.test(err.message);
}

/** Builds ssh2's authHandler middleware for one hop. */
export function createAuth(opts: AuthOptions): AuthSession {
  const { hop, prompter, cache } = opts;
  const host = hop.host;
  const tried: string[] = [];
  let certSeen = false;
  let pendingPassword: string | undefined;
  let pendingKbd: string[] | undefined;
  const steps: Step[] = [{ kind: 'none' }];
  const agent = opts.agentSocket && opts.agentSocket !== 'none' ? opts.agentSocket : undefined;
  if (host.pubkeyAuthentication) {
    if (agent && !host.identitiesOnly) steps.push({ kind: 'agent' });
    for (const path of host.identityFiles) steps.push({ kind: 'key', path });
  }
  if (host.kbdInteractiveAuthentication && (prompter || cache.kbdAnswers)) steps.push({ kind: 'kbd' });
  if (host.passwordAuthentication && (prompter || cache.password !== undefined)) steps.push({ kind: 'password' });

  const username = host.user;
  const where = `${hop.label} (hop ${opts.hopIndex + 1} of ${opts.hopCount}, ${host.user}@${host.hostName}:${host.port})`;

  async function loadKey(path: string): Promise<ParsedKey | undefined> {
    const cached = cache.keys.get(path);
    if (cached) return cached;
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch {
      return undefined; // OpenSSH silently skips identity files that do not exist
    }
    if (host.certificateFiles.length > 0 || (await exists(`${path}-cert.pub`))) certSeen = true;
    let parsed = utils.parseKey(data);
    for (let attempt = 0; parsed instanceof Error && isEncryptedKeyError(parsed) && prompter && attempt < 3; attempt++) {
      const passphrase = await prompter.ask(`Enter passphrase for key '${path}': `, { echo: false });
      parsed = utils.parseKey(data, passphrase);
    }
    if (parsed instanceof Error) {
      tried.push(`${path} (${isEncryptedKeyError(parsed) ? 'encrypted, no passphrase' : 'unreadable'})`);
      return undefined;
    }
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!key) return undefined;
    cache.keys.set(path, key);
    return key;
  }

  async function nextMethod(allowed: AuthenticationType[] | null): Promise<AnyAuthMethod | false> {
    for (;;) {
      const step = steps.shift();
      if (!step) return false;
      switch (step.kind) {
        case 'none':
          return { type: 'none', username };
        case 'agent':
          if (allowed && !allowed.includes('publickey')) continue;
          tried.push('agent');
          return { type: 'agent', username, agent: agent! };
        case 'key': {
          if (allowed && !allowed.includes('publickey')) continue;
          const key = await loadKey(step.path);
          if (!key) continue;
          tried.push(step.path);
          return { type: 'publickey', username, key };
        }
        case 'kbd': {
          if (allowed && !allowed.includes('keyboard-interactive')) continue;
          tried.push('keyboard-interactive');
          return {
            type: 'keyboard-interactive',
            username,
            prompt: (_name: string, instructions: string, _lang: string, prompts: Prompt[], finish: (answers: string[]) => void) => {
              if (cache.kbdAnswers && cache.kbdAnswers.length === prompts.length) {
                finish(cache.kbdAnswers);
                return;
              }
              void (async () => {
                const answers: string[] = [];
                for (const p of prompts) {
                  const q = `${instructions ? `${instructions}\n` : ''}(${hop.label}) ${p.prompt}`;
                  answers.push(prompter ? await prompter.ask(q, { echo: p.echo ?? false }).catch(() => '') : '');
                }
                pendingKbd = answers;
                finish(answers);
              })();
            },
          };
        }
        case 'password': {
          if (allowed && !allowed.includes('password')) continue;
          tried.push('password');
          let password = cache.password;
          if (password === undefined) {
            if (!prompter) continue;
            password = await prompter.ask(`${host.user}@${host.hostName}'s password: `, { echo: false });
          }
          pendingPassword = password;
          return { type: 'password', username, password };
        }
      }
    }
  }

  const handler: AuthHandlerMiddleware = (methodsLeft, _partial, next) => {
    nextMethod(methodsLeft).then(
      (m) => next(m as AnyAuthMethod),
      () => next(false as unknown as AnyAuthMethod),
    );
  };

  return {
    handler,
    succeeded() {
      if (pendingPassword !== undefined) cache.password = pendingPassword;
      if (pendingKbd) cache.kbdAnswers = pendingKbd;
    },
    failure() {
      if (certSeen) {
        return new VmdeskError('SSH_CERT_UNSUPPORTED', `authentication failed on ${where}: an OpenSSH certificate is configured, and vmdesk (ssh2) cannot use certificates`, {
          context: { hop: hop.label, hopIndex: opts.hopIndex, host: host.hostName, port: host.port },
          hint: 'add the plain public key to the server\'s authorized_keys, or load the key into ssh-agent',
        });
      }
      const list = tried.length ? tried.join(', ') : 'no usable method';
      return new VmdeskError('SSH_AUTH_FAILED', `permission denied on ${where}; tried: ${list}`, {
        context: { hop: hop.label, hopIndex: opts.hopIndex, host: host.hostName, port: host.port, user: host.user },
        hint: prompter
          ? `check the user name and key for '${hop.label}' (ssh -v ${hop.label} shows what OpenSSH does)`
          : `no terminal to ask for a password or passphrase: load the key into ssh-agent, or run in a terminal (check: ssh -o BatchMode=yes ${hop.label} true)`,
      });
    },
  };
}
