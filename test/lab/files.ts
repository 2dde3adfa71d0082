import { access } from 'node:fs/promises';

/** Whether a path exists (any type), for the lab's checks and waits. */
export async function fileExists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
