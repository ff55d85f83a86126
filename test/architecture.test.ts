/** The rule of docs/architecture.md: a folder imports only from folders below it; and the map names every layer and file. */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
/** Bottom to top; a top-level file (app.ts, cluster.ts) is the layer "." */
const LAYERS = ['common', 'weights', 'record', 'compare', 'observe', 'proxy', 'shadow', 'rollout', 'config', 'admin', 'control', 'replay', 'fleet', '.', 'cli'];

const layerOf = (file: string): string => {
  const rel = relative(SRC, file);
  return rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : '.';
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

const files = sources(SRC);

t.test('every source file is in a known layer', async (t) => {
  t.strictSame(files.map(layerOf).filter((l) => !LAYERS.includes(l)), []);
});

/** The relative imports of `file` (given its text), and which of them reach a layer above. */
function imports(file: string, text: string): { all: number; upward: string[] } {
  const from = LAYERS.indexOf(layerOf(file));
  // Static imports and dynamic ones (a command's module, loaded when it runs): the rule is the same.
  const targets = [...text.matchAll(/(?:\bfrom |\bimport\()'(\.{1,2}\/[^']+)'/g)].map(([, spec]) => resolve(dirname(file), spec!));
  const upward = targets.filter((target) => LAYERS.indexOf(layerOf(target)) > from).map((target) => `${relative(SRC, file)} imports ${relative(SRC, target)}`);
  return { all: targets.length, upward };
}

t.test('no file imports from a layer above its own', async (t) => {
  const found = files.map((file) => imports(file, readFileSync(file, 'utf8')));
  t.ok(found.reduce((n, f) => n + f.all, 0) > 50, 'read the imports');
  t.strictSame(found.flatMap((f) => f.upward), []);
});

t.test('the check sees an upward import, and lets a downward or sideways one pass', async (t) => {
  const handler = join(SRC, 'proxy/handler.ts');
  t.strictSame(imports(handler, "import { x } from '../config/config.js';").upward, ['proxy/handler.ts imports config/config.js']);
  t.strictSame(imports(handler, "import { x } from '../app.js';").upward, ['proxy/handler.ts imports app.js']);
  t.strictSame(imports(handler, "const { x } = await import('../app.js');").upward, ['proxy/handler.ts imports app.js'], 'a dynamic import too');
  t.strictSame(imports(handler, "import { x } from './split.js';\nimport { y } from '../weights/shares.js';").upward, []);
});

t.test('docs/architecture.md: its layers table has every layer, top to bottom, and names every source file', async (t) => {
  const doc = readFileSync(new URL('../docs/architecture.md', import.meta.url), 'utf8');
  const rows = [...doc.matchAll(/^\| (\d+) \| (.+?) \| (.+) \|$/gm)];
  const folder = (cell: string): string => (cell.startsWith('`app.ts`') ? '.' : cell.replaceAll('`', '').replace(/\/$/, ''));
  t.strictSame(rows.map((r) => folder(r[2]!)), [...LAYERS].reverse(), 'one row a layer, in order');
  t.strictSame(rows.map((r) => Number(r[1])), rows.map((_, i) => LAYERS.length - 1 - i), 'numbered from the bottom');
  for (const file of files) {
    const layer = layerOf(file);
    const row = rows.find((r) => folder(r[2]!) === layer)!;
    const name = relative(layer === '.' ? SRC : join(SRC, layer), file);
    t.ok(row[0].includes(`\`${name}\``), `${relative(SRC, file)} is on the map`);
  }
});
