/**
 * The dashboard's files (`dist/web`, built by scripts/build-web.mjs), read
 * into memory once when the server starts: a handful of small files served
 * from memory is the fastest first paint there is.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VmdeskError } from '../errors.js';

export interface StaticFile {
  body: Buffer;
  contentType: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  // WebAssembly.instantiateStreaming (IronRDP's client) accepts nothing else.
  '.wasm': 'application/wasm',
};

/** The package root: the nearest folder above this module with vmdesk's package.json (works from src/ under tsx and from dist/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'vmdesk') return dir;
    const up = dirname(dir);
    if (up === dir) throw new VmdeskError('INTERNAL', 'cannot find the vmdesk package folder');
    dir = up;
  }
}

/** The built web bundle, keyed by URL path (`/index.html`, `/assets/console.js`). */
export function loadStaticFiles(root = join(packageRoot(), 'dist', 'web')): Map<string, StaticFile> {
  if (!existsSync(join(root, 'index.html'))) {
    throw new VmdeskError('INTERNAL', `the web bundle is missing (${root})`, { hint: 'run `npm run build` in the vmdesk folder' });
  }
  const files = new Map<string, StaticFile>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else files.set(`/${relative(root, p).split(sep).join('/')}`, { body: readFileSync(p), contentType: CONTENT_TYPES[extname(name)] ?? 'application/octet-stream' });
    }
  };
  walk(root);
  return files;
}
