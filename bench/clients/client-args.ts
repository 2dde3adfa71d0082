/**
 * Argument parsing shared by the measuring clients. These scripts run as the
 * lab's client user from a temporary copy (see bench/client-scripts.ts), so
 * they import only node builtins and each other.
 */

/** `--name value` pairs into a map; a flag without a value is an error. */
export function parseArgs(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (!key?.startsWith('--') || value === undefined) throw new Error(`expected --name value pairs, got ${argv.slice(i).join(' ')}`);
    out.set(key.slice(2), value);
  }
  return out;
}

/** A required non-negative integer argument. */
export function intArg(args: Map<string, string>, name: string, fallback?: number): number {
  const raw = args.get(name);
  if (raw === undefined) {
    if (fallback !== undefined) return fallback;
    throw new Error(`missing --${name}`);
  }
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${raw}`);
  return n;
}

/** Runs `main`, prints its result as one JSON line on stdout, and exits 1 with the error on stderr if it fails. */
export function runMain(main: () => Promise<unknown>): void {
  main().then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
