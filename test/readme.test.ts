/**
 * The README's reference parts that are derived from the code: kept equal to it here, so a new
 * flag or setting cannot be left out of them.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import type { Flag } from '../src/common/flags.js';
import { buildConfig, parseConfigText } from '../src/config/config.js';
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

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens; repeats numbered. */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : /^#{1,6} (.*)$/.exec(line);
    if (m === null) continue;
    const base = m[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

t.test('every link in the README and docs/ reaches a file, and a heading where it names one', async (t) => {
  const root = new URL('../', import.meta.url);
  const files = ['README.md', ...readdirSync(new URL('docs/', root)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  for (const file of files) {
    const text = readFileSync(new URL(file, root), 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue; // http(s), mailto
      const [path, anchor] = target!.split('#') as [string, string | undefined];
      const into = path === '' ? new URL(file, root) : new URL(path, new URL(file, root));
      t.ok(existsSync(into), `${file}: ${target} exists`);
      if (anchor !== undefined && into.pathname.endsWith('.md')) t.ok(anchors(readFileSync(into, 'utf8')).has(anchor), `${file}: ${target} names a heading`);
    }
  }
});

/** The README's table of contents: each ## and ### heading after Contents, linked. */
export function contents(markdown: string): string {
  const slugs = [...anchors(markdown)];
  const lines: string[] = [];
  let fenced = false;
  let index = -1;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : /^(#{1,6}) (.*)$/.exec(line);
    if (m === null) continue;
    index++;
    const title = m[2]!.trim();
    if (m[1]!.length < 2 || m[1]!.length > 3 || title === 'Contents') continue;
    lines.push(`${m[1]!.length === 2 ? '' : '  '}- [${title}](#${slugs[index]!})`);
  }
  return lines.join('\n');
}

t.test("the README's contents list every ## and ### heading", async (t) => {
  const start = README.indexOf('<!-- contents -->');
  const end = README.indexOf('<!-- /contents -->');
  t.ok(start >= 0 && end > start, 'the contents are marked');
  t.equal(README.slice(start + '<!-- contents -->'.length, end).trim(), contents(README), 'copy the expected list into the README when this fails');
});

t.test("the walkthrough's plan is a config serve takes", async (t) => {
  const walkthrough = README.slice(README.indexOf('## Walkthrough'));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(walkthrough)![1]!;
  const config = buildConfig(parseConfigText(yaml, 'walkthrough.yaml'));
  t.same(config.rollout?.steps.map((s) => s.weight), [10, 50, 100]);
});
