/** The V8 heap settings `serve` applies to itself (src/heap.ts). */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { HEAP, heapFlags, tuneHeap, youngGenerationCap } from '../src/heap.js';

const HEAP_JS = new URL('../dist/src/heap.js', import.meta.url).href;

const ALL = [`--heap-growing-percent=${HEAP.growingPercent}`, '--no-wasm-tier-up', '--no-wasm-dynamic-tiering'];

t.test('heapFlags: every setting, unless node was given its own', async (t) => {
  const cases: [string[], string[], boolean][] = [
    [[], ALL, true],
    [['--import', 'x.js', '--enable-source-maps'], ALL, true],
    [['--heap-growing-percent=20'], ALL.slice(1), true],
    [['--no-wasm-tier-up'], ALL.slice(0, 1), true],
    [['--wasm-dynamic-tiering'], ALL.slice(0, 1), true],
    [['--max-semi-space-size=16'], ALL, false],
    [['--min-semi-space-size=4', '--heap-growing-percent=0'], ALL.slice(1), false],
  ];
  for (const [args, flags, capSemiSpace] of cases) t.strictSame(heapFlags(args), { flags, capSemiSpace }, args.join(' ') || 'no arguments');
});

t.test('youngGenerationCap: growth stops at the cap and is allowed again below it', async (t) => {
  const set: string[] = [];
  let size = 2 * 1024 * 1024;
  const check = youngGenerationCap(4, () => size, (flag) => set.push(flag));
  check();
  t.strictSame(set, [], 'under the cap: V8 grows it as it would');
  size = 8 * 1024 * 1024; // two 4 MB semi-spaces
  check();
  check();
  t.strictSame(set, ['--semi-space-growth-factor=1'], 'at the cap: growth stops, said once');
  size = 4 * 1024 * 1024; // shrunk
  check();
  t.strictSame(set, ['--semi-space-growth-factor=1', '--semi-space-growth-factor=2'], 'shrunk: it may grow again');
});

t.test('capYoungGeneration: in a fresh process, the young generation stays at the cap under allocation', async (t) => {
  // The compiled module (`npm test` builds it first) in a process of its own: this one's young
  // generation has long grown (tap's TypeScript loader), and a cap does not shrink it.
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    const { capYoungGeneration } = await import(${JSON.stringify(HEAP_JS)});
    if (process.argv[1] === 'cap') capYoungGeneration(2);
    // Objects that live through a collection or two, as a proxy's requests in flight do: what makes V8 grow it.
    let kept = [];
    for (let batch = 0; batch < 400; batch++) {
      for (let i = 0; i < 2000; i++) kept.push({ batch, i, tag: 'x' + i });
      if (kept.length > 40000) kept = kept.slice(20000);
      await new Promise((r) => setImmediate(r)); // a tick: the observer sees each collection
    }
    console.log(getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576);`;
  const newSpaceMb = (arg: string): number => Number(execFileSync(process.execPath, ['--input-type=module', '-e', script, arg], { encoding: 'utf8' }));
  t.equal(newSpaceMb('cap'), 4, 'capped: two 2 MB semi-spaces');
  t.ok(newSpaceMb('none') > 4, 'without the cap the same allocation grows it further');
});

t.test('tuneHeap: sets the flags it is not told of, and caps the young generation unless told its size', async (t) => {
  const run = (args: string[]): { set: string[]; capped: number[] } => {
    const set: string[] = [];
    const capped: number[] = [];
    tuneHeap(args, (flag) => set.push(flag), (mb) => capped.push(mb));
    return { set, capped };
  };
  t.strictSame(run([]), { set: ALL, capped: [HEAP.maxSemiSpaceMb] });
  t.strictSame(run(['--heap-growing-percent=0', '--wasm-tier-up', '--max-semi-space-size=16']), { set: [], capped: [] }, 'node was given every setting');
});
