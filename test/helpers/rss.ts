import { readFileSync } from 'node:fs';

/** A field of a process's /proc status in bytes: VmRSS (resident now), VmHWM (its peak so far). */
export function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) * 1024;
}

export const rssOf = (pid: number): number => statusBytes(pid, 'VmRSS');

/** Samples a process's RSS every 25 ms until stopped; resolves to the peak. */
export function watchRss(pid: number): { stop(): number } {
  let peak = rssOf(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 25);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssOf(pid));
    },
  };
}
