/** The V8 heap settings `serve` applies to itself (src/heap.ts); their effect is checked in alloc-budget.test.ts. */
import t from 'tap';
import { SERVE_HEAP_FLAGS, heapFlags, tuneHeap } from '../src/heap.js';

t.test('heapFlags: pretenuring off, unless node was told about it', async (t) => {
  const cases: [string[], readonly string[]][] = [
    [[], SERVE_HEAP_FLAGS],
    [['--import', 'x.js', '--enable-source-maps', '--max-semi-space-size=8'], SERVE_HEAP_FLAGS],
    [['--allocation-site-pretenuring'], []],
    [['--no-allocation-site-pretenuring'], []],
    [['--stack-size=900 --allocation-site-pretenuring'], []], // NODE_OPTIONS, whole
  ];
  for (const [args, flags] of cases) t.strictSame(heapFlags(args), flags, args.join(' ') || 'no arguments');
});

t.test('tuneHeap: sets what heapFlags chose', async (t) => {
  const run = (args: string[]): string[] => {
    const set: string[] = [];
    tuneHeap(args, (flag) => set.push(flag));
    return set;
  };
  t.strictSame(run([]), ['--no-allocation-site-pretenuring']);
  t.strictSame(run(['--allocation-site-pretenuring']), [], 'node was told');
});
