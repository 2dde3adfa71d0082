/**
 * The lab's two people. `labuser` logs in to the jump host and the KVM host
 * (namespaces share /etc/passwd, so one account serves both servers).
 * `vmdclient` sits at the client machine: OpenSSH finds `~` from the passwd
 * entry, not $HOME, so the client side needs its own account and home.
 */
import { chown, chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked, runProcess } from './exec.js';
import { ADDRESSES } from './netns.js';

export const SERVER_USER = 'labuser';
export const CLIENT_USER = 'vmdclient';
export const CLIENT_HOME = '/home/vmdclient';
const SERVER_HOME = '/home/labuser';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Looks the user up in passwd; undefined when missing. */
export async function lookupUser(name: string): Promise<Account | undefined> {
  const r = await runProcess(['getent', 'passwd', name]);
  if (r.code !== 0) return undefined;
  const f = r.stdout.trim().split(':');
  return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '' };
}

/** Creates the user with `useradd` unless it exists; checks its home is the one the lab expects. */
export async function ensureUser(name: string, home: string): Promise<Account> {
  let acct = await lookupUser(name);
  if (!acct) {
    await runChecked(['useradd', '--no-create-home', '--home-dir', home, '--shell', '/bin/bash', '--comment', 'vmdesk lab', name]);
    acct = await lookupUser(name);
  }
  if (!acct) throw new Error(`useradd ${name} did not create the user`);
  if (acct.home !== home) throw new Error(`user ${name} exists with home ${acct.home}, but the lab needs ${home}; remove the user or fix its home`);
  return acct;
}

/** The argv prefix that runs a command as `acct` (uid, gid, its groups), exec'ing in place. */
export function asUser(acct: Account): string[] {
  return ['setpriv', `--reuid=${acct.uid}`, `--regid=${acct.gid}`, '--init-groups', '--'];
}

/** Sets the password (sshd runs with UsePAM no, and refuses pubkey logins to a locked `!` account too). */
export async function setPassword(name: string, password: string): Promise<void> {
  if (/[:\n]/.test(password)) throw new Error('password must not contain ":" or a newline (chpasswd format)');
  await runChecked(['chpasswd'], { input: `${name}:${password}\n` });
}

export async function prepareServerUser(password: string): Promise<Account> {
  const acct = await ensureUser(SERVER_USER, SERVER_HOME);
  await mkdir(acct.home, { recursive: true, mode: 0o755 });
  await chown(acct.home, acct.uid, acct.gid);
  await setPassword(SERVER_USER, password);
  return acct;
}

export interface ClientFiles {
  sshDir: string;
  config: string;
  identityFile: string;
  knownHosts: string;
  /** XDG_RUNTIME_DIR handed to the client's processes, as a login session would. */
  runtimeDir: string;
}

export function clientFiles(acct: Account): ClientFiles {
  const sshDir = join(acct.home, '.ssh');
  return {
    sshDir,
    config: join(sshDir, 'config'),
    identityFile: join(sshDir, 'id_ed25519'),
    knownHosts: join(sshDir, 'known_hosts'),
    runtimeDir: `/run/user/${acct.uid}`,
  };
}

/** The client's `~/.ssh/config`: the seed's two machines, the KVM host reached through the jump host. */
export function clientSshConfig(): string {
  return [
    'Host jump',
    `  HostName ${ADDRESSES.jumpOuter}`,
    `  User ${SERVER_USER}`,
    '',
    'Host kvmhost',
    `  HostName ${ADDRESSES.host}`,
    `  User ${SERVER_USER}`,
    '  ProxyJump jump',
    '',
    // Written the way people write them: `~` paths, expanded by the client.
    'Host *',
    '  IdentityFile ~/.ssh/id_ed25519',
    '  UserKnownHostsFile ~/.ssh/known_hosts',
    '',
  ].join('\n');
}

/**
 * Recreates the client's home from scratch: config, a passphrase-less
 * ed25519 key, known_hosts with both servers' keys. Returns the public key line.
 */
export async function prepareClientHome(acct: Account, hostKeys: { jump: string; host: string }): Promise<{ files: ClientFiles; publicKey: string }> {
  if (acct.home !== CLIENT_HOME) throw new Error(`refusing to recreate ${acct.home}: not the lab's client home`);
  const files = clientFiles(acct);
  await rm(acct.home, { recursive: true, force: true });
  await mkdir(files.sshDir, { recursive: true, mode: 0o700 });
  await chmod(acct.home, 0o700);
  await writeFile(files.config, clientSshConfig(), { mode: 0o600 });
  await runChecked(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `${CLIENT_USER}@vmd-client`, '-f', files.identityFile]);
  const knownHosts = [`${ADDRESSES.jumpOuter} ${keyOnly(hostKeys.jump)}`, `${ADDRESSES.host} ${keyOnly(hostKeys.host)}`, ''].join('\n');
  await writeFile(files.knownHosts, knownHosts, { mode: 0o644 });
  for (const p of [acct.home, files.sshDir, files.config, files.identityFile, `${files.identityFile}.pub`, files.knownHosts]) {
    await chown(p, acct.uid, acct.gid);
  }
  await rm(files.runtimeDir, { recursive: true, force: true });
  await mkdir(files.runtimeDir, { recursive: true, mode: 0o700 });
  await chown(files.runtimeDir, acct.uid, acct.gid);
  const publicKey = (await readFile(`${files.identityFile}.pub`, 'utf8')).trim();
  return { files, publicKey };
}

/** `ssh-ed25519 AAAA... comment` -> `ssh-ed25519 AAAA...` */
export function keyOnly(publicLine: string): string {
  return publicLine.trim().split(/\s+/).slice(0, 2).join(' ');
}
