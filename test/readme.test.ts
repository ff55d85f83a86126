/**
 * The README's reference parts that are derived from the code: kept equal to it here, so a new
 * flag or setting cannot be left out of them.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import type { Flag } from '../src/common/flags.js';
import { SERVE_FLAGS } from '../src/config/settings.js';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** Table cells: | would end the cell. */
const cell = (text: string): string => text.replace(/\|/g, '\\|');

/** serve's flags as the README's table: flag, config key, default, help. */
export function serveFlagsTable(flags: readonly (Flag & { key?: string })[]): string {
  const rows = flags.map((f) => {
    const flag = `\`--${f.flag}${f.arg === undefined ? '' : ` ${f.arg}`}\``;
    const key = f.key === undefined ? '' : `\`${f.key}\``;
    const value = f.default === undefined ? '' : `\`${Array.isArray(f.default) ? f.default.join(',') : String(f.default)}\``;
    return `| ${cell(flag)} | ${key} | ${cell(value)} | ${cell(f.help)} |`;
  });
  return ['| Flag | Config key | Default | What it does |', '|---|---|---|---|', ...rows].join('\n');
}

t.test("the README's table of serve's options is every flag of `serve --help`, with its config key and default", async (t) => {
  const start = README.indexOf('<!-- serve-flags -->');
  const end = README.indexOf('<!-- /serve-flags -->');
  t.ok(start >= 0 && end > start, 'the table is marked');
  const shown = README.slice(start + '<!-- serve-flags -->'.length, end).trim();
  t.equal(shown, serveFlagsTable(SERVE_FLAGS), 'copy the expected table into the README when this fails');
});
