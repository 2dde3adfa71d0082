/**
 * The measuring clients (bench/clients/*.ts) run as the lab's client user
 * inside vmd-client. That user may not be able to enter the checkout (CI
 * clones under /root), and has no tsx, so the scripts are transpiled to
 * plain ES modules in a temporary directory everyone can read.
 */
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const CLIENTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'clients');

export interface ClientScripts {
  dir: string;
  /** Absolute path of the transpiled script, e.g. path('stream-to-sink') */
  path(name: string): string;
  remove(): Promise<void>;
}

export async function installClientScripts(): Promise<ClientScripts> {
  const dir = await mkdtemp(join(tmpdir(), 'vmdesk-bench-'));
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n', { mode: 0o644 });
  const names = new Set<string>();
  for (const file of await readdir(CLIENTS_DIR)) {
    if (!file.endsWith('.ts')) continue;
    const source = await readFile(join(CLIENTS_DIR, file), 'utf8');
    const out = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    });
    const name = file.slice(0, -'.ts'.length);
    await writeFile(join(dir, `${name}.js`), out.outputText, { mode: 0o644 });
    names.add(name);
  }
  return {
    dir,
    path(name) {
      if (!names.has(name)) throw new Error(`no client script ${name} in ${CLIENTS_DIR}`);
      return join(dir, `${name}.js`);
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
