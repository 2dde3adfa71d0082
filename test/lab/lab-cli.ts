/**
 * The lab by hand (see docs/lab.md):
 *   node --import tsx test/lab/lab-cli.ts up      build it and leave it running
 *   node --import tsx test/lab/lab-cli.ts down    stop everything, delete the namespaces
 *   node --import tsx test/lab/lab-cli.ts purge   down, plus remove /opt/vmdesk-lab and the lab users
 *   node --import tsx test/lab/lab-cli.ts status  what is there now
 */
import { labDown, labUp, STATE_DIR } from './lab.js';
import { listLabNamespaces, pidsIn } from './netns.js';
import { processName } from './processes.js';

async function status(): Promise<void> {
  const names = await listLabNamespaces();
  if (names.length === 0) {
    console.log('lab is down (no vmd-* namespaces)');
    return;
  }
  for (const ns of names) {
    const procs: string[] = [];
    for (const pid of await pidsIn(ns)) procs.push(`${pid}:${(await processName(pid)) ?? '?'}`);
    console.log(`${ns}: ${procs.join(' ') || '(no processes)'}`);
  }
  console.log(`state: ${STATE_DIR}`);
}

async function main(): Promise<void> {
  const cmd = process.argv[2];
  if (cmd === 'up') {
    const t0 = Date.now();
    const lab = await labUp();
    console.log(`lab up in ${Date.now() - t0} ms`);
    const { name, files } = lab.users.client;
    console.log(`  be the client user: ip netns exec ${lab.namespaces.client} runuser -u ${name} -- env XDG_RUNTIME_DIR=${files.runtimeDir} PATH=${lab.paths.appPathDir}:/usr/local/bin:/usr/bin:/bin bash`);
    console.log(`  server user ${lab.users.server.name}, password ${lab.password}`);
    console.log(`  sshd logs: ${lab.paths.stateDir}/sshd/{jump,host}/sshd.log`);
    if (!lab.app.isBuilt) console.log('  note: dist/ is missing; run `npm run build`, then `lab-cli.ts up` again, before using vmdesk');
  } else if (cmd === 'down' || cmd === 'purge') {
    await labDown({ purge: cmd === 'purge' });
    console.log(cmd === 'purge' ? 'lab purged' : 'lab down');
  } else if (cmd === 'status') {
    await status();
  } else {
    console.error('usage: lab-cli.ts up|down|purge|status');
    process.exitCode = 2;
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
