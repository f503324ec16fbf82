// CPU seconds from Linux's /proc, for the benches that say where a machine's CPU went.
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ, the clock ticks per second of /proc's CPU times (100 on Linux). */
const TICKS = 100;

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces, in parentheses); undefined once it ended. */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of a process and its children, the live ones (their parent in /proc/<pid>/stat) and those it has
 * reaped (cutime, cstime): PostgreSQL's postmaster and its backends. 0 for an unknown pid.
 */
export function processTreeCpuSeconds(pid: number | undefined): number {
  const own = pid === undefined ? undefined : statFields(pid);
  if (own === undefined) return 0;
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry); // one that ended meanwhile is in its parent's cutime once reaped
    if (fields !== undefined && Number(fields[1]) === pid) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / TICKS;
}

/** The whole machine's busy and stolen CPU seconds so far (all cores, /proc/stat): what every process used, and what the hypervisor gave elsewhere. */
export function machineCpu(): { busy: number; steal: number } {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = ticks.map(Number);
  return { busy: (user + nice + system + irq + softirq) / TICKS, steal: steal / TICKS };
}
