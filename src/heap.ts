import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/**
 * V8's heap sized for a small proxy process rather than for a batch job (issue 15: steady RSS
 * ≤ 110 MB and peak ≤ 140 MB under load; `npm run bench:memory`). With V8's defaults the RSS
 * under load was mostly garbage: in about two runs of three each scavenge promoted ~1.5 MB of
 * objects dead by the next full collection (in the others ~0.05 MB), which piled up in old space
 * until it held 4× what the last full collection left (17 → 72 MB); the young generation grew to
 * two 16 MB semi-spaces; and recompiling undici's llhttp WebAssembly with TurboFan, after the
 * first upstream request, took ~30 MB for a moment. Applied once, first thing in `serve` (the
 * primary and every worker); a V8 flag given to node itself wins. The price is collector CPU: the
 * bare proxy under these settings takes ~40% more CPU a request (README, Performance, Memory);
 * `node --heap-growing-percent=0 --max-semi-space-size=16` trades it back for RSS.
 */
export const HEAP = {
  /** A full collection once old space has grown by half of what the last one left, not by up to 3×. */
  growingPercent: 50,
  /** Semi-spaces grow (doubling, from 1 MB) up to this; V8's default is 16 MB. */
  maxSemiSpaceMb: 8,
} as const;

/** The flags to set now, given the arguments node was started with (its command line and NODE_OPTIONS). */
export function heapFlags(nodeArgs: readonly string[]): { flags: string[]; capSemiSpace: boolean } {
  const given = (name: string): boolean => nodeArgs.some((a) => a.includes(name));
  const flags: string[] = [];
  if (!given('heap-growing-percent')) flags.push(`--heap-growing-percent=${HEAP.growingPercent}`);
  // llhttp stays in Liftoff's code (TurboFan remains the fallback Liftoff needs); parsing an
  // upstream's answer measured no slower.
  if (!given('wasm-tier-up') && !given('wasm-dynamic-tiering')) flags.push('--no-wasm-tier-up', '--no-wasm-dynamic-tiering');
  return { flags, capSemiSpace: !given('semi-space-size') };
}

/**
 * Sets heapFlags' flags in this process, and caps the young generation unless node was told its
 * size. Node's arguments: its command line's, and NODE_OPTIONS whole ("undefined" names no flag).
 */
export function tuneHeap(
  nodeArgs: readonly string[] = [...process.execArgv, String(process.env.NODE_OPTIONS)],
  setFlag: (flag: string) => void = setFlagsFromString,
  cap: (mb: number) => unknown = capYoungGeneration,
): void {
  const { flags, capSemiSpace } = heapFlags(nodeArgs);
  for (const flag of flags) setFlag(flag);
  if (capSemiSpace) cap(HEAP.maxSemiSpaceMb);
}

/** The young generation's size now: both semi-spaces, in bytes. */
const newSpaceBytes = (): number => getHeapSpaceStatistics().reduce((n, s) => (s.space_name === 'new_space' ? s.space_size : n), 0);

/**
 * --max-semi-space-size is read once, when the heap is set up; the growth factor is read each
 * time the young generation grows. So after each collection growth is allowed (factor 2) while
 * a semi-space is under `mb`, and stopped (1) once it is not; a shrink (V8 shrinks an idle
 * process's young generation) allows it again. Returns the check, run after each collection.
 */
export function youngGenerationCap(mb: number, read = newSpaceBytes, setFlag = setFlagsFromString): () => void {
  const cap = 2 * mb * 1024 * 1024;
  let growing = true;
  return () => {
    const grow = read() < cap;
    if (grow === growing) return;
    growing = grow;
    setFlag(`--semi-space-growth-factor=${grow ? 2 : 1}`);
  };
}

/** youngGenerationCap's check after every collection (a 'gc' entry comes a tick after it). */
export function capYoungGeneration(mb: number): PerformanceObserver {
  const observer = new PerformanceObserver(youngGenerationCap(mb));
  observer.observe({ entryTypes: ['gc'] });
  return observer;
}
