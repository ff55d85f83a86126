/**
 * The split against real nginx: test/fixtures/nginx-golden.json was recorded from Debian's
 * nginx by scripts/nginx-golden.ts (`npm run golden`), so this test needs no nginx.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { compileKey, argValue, cookieValue, type RequestFacts } from '../src/proxy/key.js';
import { parseHost, parsePath } from '../src/proxy/nginx-uri.js';
import { parsePercent } from '../src/common/percent.js';
import { UPSTREAM_HEADER } from '../src/proxy/handler.js';
import { compileSplit, hashKey, pickByHash } from '../src/proxy/split.js';
import type { Share } from '../src/weights/shares.js';
import { rawExchange, startTestProxy, startUpstream } from './helpers/net.js';

interface Golden {
  nginx: string;
  splits: Record<string, { key: string; parts: [string, string][] }>;
  cases: {
    client: string;
    target: string;
    headers: Record<string, string>;
    status: number;
    vars?: Record<string, string>;
    buckets?: Record<string, string>;
  }[];
}

const golden = JSON.parse(readFileSync(new URL('fixtures/nginx-golden.json', import.meta.url), 'utf8')) as Golden;
const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');
/**
 * Header values went out as UTF-8 bytes; Node hands them to us one char per byte, with
 * surrounding spaces and tabs trimmed (as nginx does too).
 */
const asReceived = (v: string): string => Buffer.from(v, 'utf8').toString('latin1').replace(/^[ \t]+|[ \t]+$/g, '');

function sharesOf(parts: [string, string][]): { shares: Share[]; rest: string | undefined } {
  const shares: Share[] = [];
  let rest: string | undefined;
  for (const [percent, name] of parts) {
    if (percent === '*') rest = name;
    else shares.push([name, parsePercent(percent, name)]);
  }
  return { shares, rest };
}

function factsOf(c: Golden['cases'][number]): RequestFacts | null {
  const parsed = parsePath(c.target);
  const host = parseHost(asReceived(c.headers.Host ?? ''));
  if (parsed === null || host === null) return null;
  const headers = Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k.toLowerCase(), asReceived(v)]));
  return { remoteAddr: c.client, requestUri: c.target, uri: parsed.uri, args: parsed.args, host, headers };
}

t.test(`fixture is large and varied (${golden.nginx})`, async (t) => {
  t.ok(golden.cases.length >= 10_000, `${golden.cases.length} cases`);
  t.ok(golden.cases.some((c) => c.status === 400), 'some requests nginx rejects');
  t.ok(golden.cases.some((c) => c.client === '::1'), 'some IPv6 clients');
  t.ok(golden.cases.some((c) => /%[89a-f][0-9a-f]/i.test(c.target)), 'percent-encoded non-ASCII');
  t.ok(golden.cases.some((c) => /[^\x20-\x7e]/.test(c.headers['X-User'] ?? '')), 'non-ASCII header values');
});

t.test('every variable and every bucket agrees with nginx', async (t) => {
  const splits = Object.entries(golden.splits).map(([name, s]) => {
    const { shares, rest } = sharesOf(s.parts);
    return { name, key: compileKey(s.key), table: compileSplit(shares, rest) };
  });
  // nginx refuses 0%; ours must bucket exactly like nginx's config without that line.
  for (const name of ['s5', 's3way']) {
    const { shares, rest } = sharesOf(golden.splits[name]!.parts);
    const withZero: Share[] = [['zero', 0], ...shares.slice(0, 1), ['zero2', 0], ...shares.slice(1)];
    splits.push({ name, key: compileKey(golden.splits[name]!.key), table: compileSplit(withZero, rest) });
  }
  let mismatches = 0;
  const report = (what: string, c: Golden['cases'][number], got: unknown, want: unknown): void => {
    if (++mismatches <= 20) t.fail(`${what} for ${c.client} ${JSON.stringify(c.target)}`, { got, want });
  };
  for (const c of golden.cases) {
    const facts = factsOf(c);
    if (c.status !== 200) {
      if (facts !== null) report('nginx answered 400, we accept', c, facts, null);
      continue;
    }
    if (facts === null) {
      report('we reject what nginx accepts', c, null, c.vars);
      continue;
    }
    const ours: Record<string, string> = {
      remote_addr: facts.remoteAddr,
      uri: facts.uri,
      request_uri: facts.requestUri,
      args: facts.args,
      arg_id: argValue(facts.args, 'id'),
      http_x_user: String(facts.headers['x-user'] ?? ''),
      cookie_sid: cookieValue(facts.headers.cookie as string | undefined, 'sid'),
      host: facts.host,
    };
    for (const [name, want] of Object.entries(c.vars!)) {
      if (hex(ours[name]!) !== want) report(`$${name}`, c, hex(ours[name]!), want);
    }
    for (const s of splits) {
      const got = pickByHash(s.table, hashKey(Buffer.from(s.key(facts), 'latin1'))) ?? '';
      if (got !== c.buckets![s.name]) report(`split ${s.name}`, c, got, c.buckets![s.name]);
    }
  }
  t.equal(mismatches, 0, `${golden.cases.length} cases × ${splits.length} splits, no mismatch`);
});

t.test('through the proxy, on real sockets, X-Drum-Splitter-Upstream is nginx\'s bucket', async (t) => {
  const upstream = await startUpstream('any');
  t.teardown(() => upstream.close());
  // Every other case, so both IPv4 (arriving as ::ffff:a.b.c.d on the dual-stack socket) and ::1.
  const sample = golden.cases.filter((_, i) => i % 4 === 0);
  for (const split of ['s3way', 'svars']) {
    const { shares, rest } = sharesOf(golden.splits[split]!.parts);
    const names = [rest!, ...shares.map(([n]) => n)];
    const proxy = await startTestProxy({
      listen: '[::]:0',
      upstreams: names.map((n) => `${n}=${upstream.url}`),
      weights: shares.map(([n, h]) => `${n}=${h / 100}`),
      key: golden.splits[split]!.key,
    });
    t.teardown(() => proxy.close());
    let mismatches = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < sample.length) {
        const c = sample[next++]!;
        const head = Object.entries(c.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
        const v6 = c.client === '::1';
        const reply = await rawExchange(
          proxy.address.port,
          Buffer.from(`GET ${c.target} HTTP/1.1\r\n${head}Connection: close\r\n\r\n`, 'utf8'),
          v6 ? undefined : c.client,
          v6 ? '::1' : '127.0.0.1',
        );
        const status = Number(reply.slice(9, 12));
        const served = new RegExp(`\r\n${UPSTREAM_HEADER}: (\\w+)\r\n`, 'i').exec(reply)?.[1];
        const want = c.status === 200 ? c.buckets![split] : undefined;
        if (status !== c.status || served !== want) {
          if (++mismatches <= 10) t.fail(`${split}: ${c.client} ${c.target}`, { status, served, want, wantStatus: c.status });
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    t.equal(mismatches, 0, `${split}: ${sample.length} requests served by nginx's choice`);
  }
});
