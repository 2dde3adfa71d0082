/**
 * vmdesk's own configuration (`~/.config/vmdesk/config.yaml`): named
 * hypervisors and defaults. Loading is the only I/O here; validation is pure
 * and reports the file, line and key of every mistake.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { LineCounter, parseDocument, isMap, isScalar, type Node as YamlNode, type Pair } from 'yaml';
import { VmdeskError } from '../errors.js';

/** One hypervisor vmdesk knows by name. */
export interface HostConfig {
  name: string;
  /** ssh_config alias or [user@]host[:port]. */
  ssh: string;
  /** Jump hosts like `ssh -J` (overrides ProxyJump). */
  jump?: string;
  /** ssh_config file (like `ssh -F`). */
  sshConfig?: string;
  libvirtUri: string;
}

export interface VmdeskConfig {
  /** Where it was read from; undefined when no file exists (defaults only). */
  file: string | undefined;
  hosts: HostConfig[];
  defaults: { libvirtUri: string };
}

export const DEFAULT_LIBVIRT_URI = 'qemu:///system';

/** The config file path: --config, $VMDESK_CONFIG, $XDG_CONFIG_HOME/vmdesk/config.yaml, ~/.config/vmdesk/config.yaml. */
export function configPath(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return explicit;
  if (env.VMDESK_CONFIG) return env.VMDESK_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'vmdesk', 'config.yaml');
}

const HOST_KEYS = new Set(['ssh', 'jump', 'sshConfig', 'libvirtUri']);
const TOP_KEYS = new Set(['hosts', 'defaults']);
const DEFAULT_KEYS = new Set(['libvirtUri']);

/** Parse and validate config text; `file` is used in messages. */
export function parseConfig(text: string, file: string): VmdeskConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  const lineOf = (node: YamlNode | null | undefined): number | undefined => (node?.range ? lineCounter.linePos(node.range[0]).line : undefined);
  const fail = (message: string, node: YamlNode | null | undefined, key: string): never => {
    const line = lineOf(node);
    throw new VmdeskError('CONFIG_INVALID', `${file}${line ? `:${line}` : ''}: ${key}: ${message}`, {
      context: { file, ...(line ? { line } : {}), key },
      hint: 'see docs/config.md for the format',
    });
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new VmdeskError('CONFIG_INVALID', `${file}${line ? `:${line}` : ''}: ${e.message.split('\n')[0]}`, { context: { file, ...(line ? { line } : {}) } });
  }
  const config: VmdeskConfig = { file, hosts: [], defaults: { libvirtUri: DEFAULT_LIBVIRT_URI } };
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return config;
  if (!isMap(root)) return fail('the file must be a mapping with `hosts:` and optional `defaults:`', root, '(top)');
  const str = (pair: Pair, path: string): string => {
    const v = pair.value as YamlNode | null;
    if (!isScalar(v) || typeof v.value !== 'string' || v.value.trim() === '') return fail('must be a non-empty string', v ?? (pair.key as YamlNode), path);
    return v.value;
  };
  for (const pair of root.items) {
    const key = String((pair.key as { value?: unknown })?.value);
    if (!TOP_KEYS.has(key)) fail(`unknown key (expected one of: ${[...TOP_KEYS].join(', ')})`, pair.key as YamlNode, key);
    const value = pair.value as YamlNode | null;
    if (key === 'defaults') {
      if (!isMap(value)) fail('must be a mapping', value ?? (pair.key as YamlNode), 'defaults');
      for (const p of (value as unknown as { items: Pair[] }).items) {
        const k = String((p.key as { value?: unknown })?.value);
        if (!DEFAULT_KEYS.has(k)) fail(`unknown key (expected: ${[...DEFAULT_KEYS].join(', ')})`, p.key as YamlNode, `defaults.${k}`);
        config.defaults.libvirtUri = str(p, `defaults.${k}`);
      }
    }
  }
  const hostsPair = root.items.find((p) => (p.key as { value?: unknown })?.value === 'hosts');
  if (hostsPair) {
    const hosts = hostsPair.value as YamlNode | null;
    if (hosts !== null && !(isScalar(hosts) && hosts.value === null)) {
      if (!isMap(hosts)) fail('must be a mapping of host names to settings', hosts, 'hosts');
      for (const hp of (hosts as unknown as { items: Pair[] }).items) {
        const name = String((hp.key as { value?: unknown })?.value);
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) fail('host names use letters, digits, . _ - (they appear in HOST/VM)', hp.key as YamlNode, `hosts.${name}`);
        const v = hp.value as YamlNode | null;
        const host: Partial<HostConfig> & { name: string } = { name };
        if (isScalar(v) && typeof v.value === 'string') {
          host.ssh = v.value;
        } else if (isMap(v)) {
          for (const p of v.items) {
            const k = String((p.key as { value?: unknown })?.value);
            if (!HOST_KEYS.has(k)) fail(`unknown key (expected one of: ${[...HOST_KEYS].join(', ')})`, p.key as YamlNode, `hosts.${name}.${k}`);
            (host as Record<string, string>)[k] = str(p, `hosts.${name}.${k}`);
          }
        } else {
          fail('must be an ssh destination string or a mapping with `ssh:`', v ?? (hp.key as YamlNode), `hosts.${name}`);
        }
        if (!host.ssh) fail('`ssh:` is required (an ssh_config alias or user@host)', v ?? (hp.key as YamlNode), `hosts.${name}.ssh`);
        config.hosts.push({ libvirtUri: config.defaults.libvirtUri, ...host } as HostConfig);
      }
    }
  }
  return config;
}

/** Read the config; a missing file is an empty config, an unreadable or invalid one an error. */
export function loadConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env): VmdeskConfig {
  const file = configPath(explicit, env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return { file: undefined, hosts: [], defaults: { libvirtUri: DEFAULT_LIBVIRT_URI } };
    throw new VmdeskError('CONFIG_INVALID', `cannot read ${file}: ${(err as Error).message}`, { cause: err, context: { file } });
  }
  return parseConfig(text, file);
}
