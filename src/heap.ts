import { setFlagsFromString } from 'node:v8';

/**
 * V8's heap as V8 sizes it, but for one setting: allocation-site pretenuring off. CPU a request
 * comes before resident memory (docs/performance.md, Heap settings), and this is the one setting
 * measured to cost none — it saved 5–20% of CPU a request.
 *
 * Why: V8 watches which object literals' objects survive young collections and, past a ratio,
 * allocates that literal's objects straight in old space. Under load a proxy's exchanges are
 * young objects that live a few milliseconds; in the first collections, when the young
 * generation is still small, most of them are in flight and so "survive", and V8 pretenures
 * their literals. From then on each exchange has an object in old space pointing at its young
 * request and response, and the young collector keeps everything such an object points at alive
 * until the next full collection: the whole exchange survives and is promoted (4.4 KB a request
 * with --no-request-buffering; GC pauses 7.6 instead of 2.4 µs a request; `npm run bench:alloc`).
 * Applied once, first thing in `serve` (the primary and every worker); a flag given to node wins.
 */
export const SERVE_HEAP_FLAGS = ['--no-allocation-site-pretenuring'] as const;

/** The flags to set now, given the arguments node was started with (its command line and NODE_OPTIONS). */
export function heapFlags(nodeArgs: readonly string[]): string[] {
  return nodeArgs.some((a) => a.includes('allocation-site-pretenuring')) ? [] : [...SERVE_HEAP_FLAGS];
}

/** Sets heapFlags' flags in this process. Node's arguments: its command line's, and NODE_OPTIONS whole ("undefined" names no flag). */
export function tuneHeap(
  nodeArgs: readonly string[] = [...process.execArgv, String(process.env.NODE_OPTIONS)],
  setFlag: (flag: string) => void = setFlagsFromString,
): void {
  for (const flag of heapFlags(nodeArgs)) setFlag(flag);
}
