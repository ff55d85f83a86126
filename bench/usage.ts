// What a target costs the machine while wrk runs, read from Linux's /proc: CPU time (user +
// system, every thread) and peak RSS of the target's process and its children (--workers).
// Throughput on a shared 2-core box moves with whatever else runs; CPU per request is what the
// target itself spent, so it compares targets (and recording on/off) somewhat more steadily.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** The fields of /proc/PID/stat after the command name, which may itself hold spaces and ')'. */
function statFields(pid: number): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null; // gone, or not Linux
  }
}

/** `pid` and all its descendants alive now. */
export function processTree(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    const p = Number(entry);
    const f = Number.isInteger(p) ? statFields(p) : null;
    if (f !== null) parentOf.set(p, Number(f[1])); // field 4 (ppid), after state
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [p, parent] of parentOf) if (parent === tree[i]) tree.push(p);
  return tree;
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

/** CPU seconds the processes have used so far, in user space and in the kernel. */
export function cpuSeconds(pids: readonly number[]): { user: number; system: number } {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (f === null) continue;
    user += Number(f[11]); // utime (field 14)
    system += Number(f[12]); // stime (field 15)
  }
  return { user: user / clockTicks(), system: system / clockTicks() };
}

/**
 * A /proc/PID/status field in MB, or null once the process is gone. The kernel's view rather
 * than process.memoryUsage(): it is what a container's memory limit sees, and VmHWM (the
 * high-water mark) catches a spike that falls between two samples.
 */
export function statusMb(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** What a run cost: CPU per request (and the kernel's part of it), and the tree's summed peak RSS. */
export interface Usage { cpuUsPerRequest: number; systemUsPerRequest: number; peakRssMb: number }

/**
 * Starts counting the tree's CPU; `stop(requests)` gives the cost of what ran in between.
 * Undefined where there is no /proc to read (not Linux): the columns then show "–".
 */
export function meter(pid: number): { stop(requests: number): Usage } | undefined {
  if (statFields(pid) === null) return undefined;
  const before = cpuSeconds(processTree(pid));
  return {
    stop(requests) {
      const tree = processTree(pid);
      const peak = tree.reduce((sum, p) => sum + (statusMb(p, 'VmHWM') ?? 0), 0);
      const after = cpuSeconds(tree);
      const perRequest = (seconds: number): number => (seconds * 1e6) / requests;
      return {
        cpuUsPerRequest: perRequest(after.user + after.system - before.user - before.system),
        systemUsPerRequest: perRequest(after.system - before.system),
        peakRssMb: peak,
      };
    },
  };
}
