// Loaded into a process with `node --import dist/bench/alloc-probe.js` (bench/alloc.ts and the
// allocation-budget tests do): counts the bytes its JavaScript heap has allocated, which, unlike
// CPU time, repeats on a noisy machine, and what its young-generation collections promoted and
// cost. On SIGUSR2 it writes the counts since it was loaded, as JSON, to the file named by
// DRUM_ALLOC_PROBE.
//
// Bytes allocated are the heap's growth between collections: before each collection, what is
// in use less what the previous one left, plus what has grown since the last one. Promoted: old
// space's growth across each scavenge. V8's GCProfiler reports every collection's before and
// after; it hands them over only when stopped, so each reading stops it and starts another.
import { writeFileSync } from 'node:fs';
import { GCProfiler, getHeapStatistics } from 'node:v8';

export interface AllocCounts {
  allocated: number;
  collections: number;
  scavenges: number;
  /** Bytes moved to old space by scavenges. */
  promoted: number;
  /** Time spent in collections, µs. */
  pauseUs: number;
}

const oldSpace = (spaces: readonly { spaceName: string; spaceUsedSize: number }[]): number =>
  spaces.find((s) => s.spaceName === 'old_space')?.spaceUsedSize ?? 0;

const file = process.env.DRUM_ALLOC_PROBE;
if (file !== undefined && file !== '') {
  const counts: AllocCounts = { allocated: 0, collections: 0, scavenges: 0, promoted: 0, pauseUs: 0 };
  let left = getHeapStatistics().used_heap_size;
  let profiler = new GCProfiler();
  profiler.start();
  process.on('SIGUSR2', () => {
    for (const gc of profiler.stop()?.statistics ?? []) {
      counts.allocated += gc.beforeGC.heapStatistics.usedHeapSize - left;
      left = gc.afterGC.heapStatistics.usedHeapSize;
      counts.collections++;
      counts.pauseUs += gc.cost;
      if (gc.gcType === 'Scavenge') {
        counts.scavenges++;
        counts.promoted += oldSpace(gc.afterGC.heapSpaceStatistics) - oldSpace(gc.beforeGC.heapSpaceStatistics);
      }
    }
    const used = getHeapStatistics().used_heap_size;
    profiler = new GCProfiler();
    profiler.start();
    writeFileSync(file, JSON.stringify({ ...counts, allocated: counts.allocated + used - left }));
  });
}
