/** For tests that run the real `ssh -G`: a skip reason when this machine has no OpenSSH client. */
import { execFileSync } from 'node:child_process';

function hasSsh(): boolean {
  try {
    execFileSync('ssh', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `false` when `ssh` runs here, else why the test is skipped (node:test's `skip` option). */
export const NO_SSH: false | string = hasSsh() ? false : 'no OpenSSH client installed';
