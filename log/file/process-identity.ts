import { readFile } from 'node:fs/promises';

/**
 * The kernel's boot id (Linux), or undefined elsewhere. A lock written under another boot id
 * belongs to a process that died with the previous boot, whatever its pid says now.
 */
export async function currentBootId(): Promise<string | undefined> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The start time of process `pid` in clock ticks since boot (Linux `/proc/<pid>/stat` field 22),
 * or undefined when it cannot be read. Pids are reused, notably in containers where every
 * restart gets the same small pid; pid plus start time names one process.
 */
export async function processStartTicks(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses, so count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/**
 * Whether a process with this pid exists on this host. EPERM means it exists but belongs to
 * another user; any unexpected error counts as alive, since wrongly taking over a live owner's
 * log is far worse than wrongly refusing to start.
 */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
