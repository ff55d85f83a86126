// Golden vectors for split_clients parity: drives a real nginx with raw request bytes
// and records exactly which bytes it put in each variable and which bucket each split chose.
// Usage: node dist/scripts/nginx-golden.js [out.json]   (NGINX_BIN overrides the binary)
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { findNginx, nginxVersion, startNginx, type NginxInstance } from '../bench/nginx.js';
import { freePort, hostPort, installCleanup } from '../bench/proc.js';

const OUT = process.argv[2] ?? 'test/fixtures/nginx-golden.json';
const SEED = 0xd2a11;
const CASES = 12_000;
const CONCURRENCY = 32;
// Field separator in nginx's reply. A single byte, so a stray copy inside a value can only
// add fields (caught by the count check). The generator never picks it as a byte, and a
// request that would still carry it (raw, or %1F formed by adjacent pieces) is skipped.
const SEP = 0x1f;

const KEY = '${remote_addr}${uri}';
type Part = [percent: string, value: string];
const SPLITS: Record<string, { key: string; parts: Part[] }> = {
  s1: { key: KEY, parts: [['1', 'fastapi'], ['*', 'flask']] },
  s5: { key: KEY, parts: [['5', 'fastapi'], ['*', 'flask']] },
  s37: { key: KEY, parts: [['37.55', 'fastapi'], ['*', 'flask']] },
  s50: { key: KEY, parts: [['50', 'fastapi'], ['*', 'flask']] },
  s9999: { key: KEY, parts: [['99.99', 'fastapi'], ['*', 'flask']] },
  s3way: { key: KEY, parts: [['10', 'a'], ['25.5', 'b'], ['*', 'c']] },
  sfull: { key: KEY, parts: [['60', 'a'], ['40', 'b']] },
  svars: { key: '${http_x_user}|${arg_id}|${cookie_sid}|${host}|${request_uri}|${args}', parts: [['30', 'b'], ['*', 'a']] },
};
const VARS = ['remote_addr', 'uri', 'request_uri', 'args', 'arg_id', 'http_x_user', 'cookie_sid', 'host'] as const;

interface Req { client: string; target: string; headers: Record<string, string> }
interface Case extends Req { status: number; vars?: Record<string, string>; buckets?: Record<string, string> }

// ---- nginx process ----------------------------------------------------------------

function fail(msg: string): never {
  throw Object.assign(new Error(msg), { oneLine: true });
}

/** A one-line error from a multi-line one: the first line carries the reason. */
const oneLine = (e: Error): never => fail(e.message.split('\n')[0] ?? '');

/** Clients come from both loopbacks, so nginx listens on both. */
const HOSTS = ['127.0.0.1', '::1'] as const;

function goldenHttp(port: number): string {
  const splits = Object.entries(SPLITS).map(([name, s]) =>
    `  split_clients "${s.key}" $${name} { ${s.parts.map(([p, v]) => `${p === '*' ? '*' : `${p}%`} ${v};`).join(' ')} }`);
  const body = [...VARS, ...Object.keys(SPLITS)].map((v) => `\${${v}}`).join(String.fromCharCode(SEP));
  return `${splits.join('\n')}
  server {
${HOSTS.map((h) => `    listen ${hostPort(h, port)};`).join('\n')}
    location / { default_type application/octet-stream; return 200 "${body}"; }
  }`;
}

// ---- request generator ------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = mulberry32(SEED);
const int = (n: number): number => Math.floor(rnd() * n);
const chance = (p: number): boolean => rnd() < p;
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const times = (n: number, f: () => string): string[] => Array.from({ length: n }, f);

/** %XX in upper, lower or mixed hex: nginx must treat all alike, so the fixture should too. */
function pct(byte: number): string {
  const h = byte.toString(16).padStart(2, '0');
  const c = int(3);
  return `%${c === 0 ? h.toUpperCase() : c === 1 ? h : h[0]!.toUpperCase() + h[1]!}`;
}
function randomByte(): number {
  const b = int(255);
  return b >= SEP ? b + 1 : b; // 0..255 except SEP
}
const utf8 = (s: string): string => [...Buffer.from(s, 'utf8')].map(pct).join('');

const ROUTES = ['/predict/', '/predictions/', '/invocations', '/transform/', '/predictUnstructured/', '/ping', '/health/', '/info/', '/stats/', '/'];
const WORDS = ['model', 'v1', 'api', 'x', 'a.b', 'data', 'file.json', 'Foo', 'predict', 'ping', 'index.html', '~user'];
const PCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@";
const NON_ASCII = ['é', '€', '😀', 'ü', 'ñ', 'Ω', '中', 'ß', '\u00a0'];
const SPECIAL = ['%2F', '%2f', '%2E', '%2e', '%25', '%3F', '%3f', '%23', '%20', '%2B', '+', '%00', '%5C', '%7e', '%2e%2e'];
const INVALID = ['%zz', '%g0', '%1', '%G1', '%%', '%2', '%-1', '%ZZ'];
const DOTS = ['.', '..', '.', '..', '%2e', '%2E%2e', '.%2e', '%2e.', '...'];

function plain(): string {
  return chance(0.6) ? pick(WORDS) : times(1 + int(5), () => pick([...PCHAR])).join('');
}

function segment(): string {
  return times(1 + int(2), () => {
    const r = rnd();
    if (r < 0.45) return plain();
    if (r < 0.62) return pct(randomByte());
    if (r < 0.76) return utf8(pick(NON_ASCII));
    if (r < 0.92) return pick(SPECIAL);
    if (r < 0.935) return pick(INVALID); // each of these costs a 400, so keep them rare
    return '+';
  }).join('');
}

function path(): string {
  const segs = chance(0.6) ? pick(ROUTES).slice(1).split('/') : times(1 + int(3), segment);
  const mutations = chance(0.4) ? 0 : 1 + int(2);
  for (let i = 0; i < mutations; i++) {
    const at = int(segs.length + 1);
    switch (int(4)) {
      case 0: segs.splice(at, 0, segment()); break;
      case 1: segs.splice(at, 0, pick(DOTS)); break; // at 0 (or after too few segments) climbs above the root
      case 2: segs.splice(at, 0, ...times(1 + int(2), () => '')); break; // '//' or '///'
      default: { const j = int(segs.length); segs[j] = `${segs[j] ?? ''}${segment()}`; }
    }
  }
  return `/${segs.join('/')}${chance(0.01) ? '%' : ''}`; // a lone trailing '%'
}

function value(): string {
  return times(chance(0.7) ? 1 : 2, () => {
    const r = rnd();
    if (r < 0.35) return String(int(1000));
    if (r < 0.55) return plain();
    if (r < 0.7) return pct(randomByte());
    if (r < 0.8) return utf8(pick(NON_ASCII));
    return pick(['+', '/', '?', '%2B', '=', '%zz', '%26', '%3D']);
  }).join('');
}

function idParam(): string {
  const name = chance(0.7) ? 'id' : pick(['ID', 'Id', 'iD']);
  const r = rnd();
  return r < 0.8 ? `${name}=${value()}` : r < 0.9 ? `${name}=` : name;
}

function query(): string {
  const r = rnd();
  if (r < 0.4) return '';
  if (r < 0.47) return '?';
  const others = ['a=1', 'x=', '', 'idx=5', 'xid=4', 'q=a?b', 'uid=9', 'b=%41', 'id_=3', 'foo', 'sid=7'];
  const params = times(int(2) + int(2), () => (chance(0.5) ? pick(others) : `${plain()}=${value()}`));
  if (chance(0.75)) params.splice(int(params.length + 1), 0, idParam()); // id first, middle or last
  if (chance(0.15)) params.splice(int(params.length + 1), 0, idParam()); // a repeated id
  return `?${params.join('&')}`;
}

function host(): string {
  let h = pick(['example.com', 'api.example.com', 'localhost', 'drum.ai', '127.0.0.1', '[::1]', 'my-host']);
  const c = rnd();
  if (c < 0.35) h = [...h].map((ch) => (chance(0.5) ? ch.toUpperCase() : ch)).join('');
  else if (c < 0.5) h = h.toUpperCase();
  if (chance(0.03)) h += '.';
  if (chance(0.4)) h += `:${pick(['80', '8080', '443', '9000'])}`;
  return chance(0.01) ? '' : h;
}

function request(): Req {
  const r = rnd();
  const client = r < 0.05 ? '::1' : r < 0.15 ? '127.0.0.1' : `127.${int(256)}.${int(256)}.${1 + int(254)}`;
  const headers: Record<string, string> = { Host: host() };
  const u = rnd();
  if (u < 0.3) headers['X-User'] = pick(['alice', 'Bob', 'user-42', 'svc@x.io', 'John Smith', '  padded  ', 'a|b', '']);
  else if (u < 0.6) headers['X-User'] = pick(['josé', 'Müller', '北京', '😀', 'naïve café', 'Łódź', 'Ωmega']);
  if (chance(0.5)) {
    headers.Cookie = pick([`sid=${int(1e6)}`, `sid=${plain()}`, 'a=1; sid=xyz; b=2', 'sid=', 'SID=ABC', 'sid=1; sid=2',
      'sidx=9; sid=7', 'a=1;sid=2', 'x=1', 'sid="quoted"', ' sid=lead', 'sid=a b']);
  }
  return { client, target: path() + query(), headers };
}

// ---- aimed cases --------------------------------------------------------------------
// Random keys almost never hit a bucket boundary or a 0.01% bucket, so some keys are built
// backwards: nginx's ngx_murmur_hash2 (MurmurHash2, seed 0) can be inverted through its
// last 4-byte block, which we set via four %XX at the end of $uri. This is only aiming:
// the fixture records whatever nginx answers.
const MM = 0x5bd1e995;
const MM_INV = [0, 1, 2, 3, 4].reduce((x) => Math.imul(x, 2 - Math.imul(MM, x)), MM); // Newton: MM * MM_INV = 1 mod 2^32
const unxorshift = (y: number, s: number): number => { let x = y; for (let t = s; t < 32; t += s) x ^= y >>> t; return x; };
const fmix = (h: number): number => { h ^= h >>> 13; h = Math.imul(h, MM); return (h ^ (h >>> 15)) >>> 0; };

/** Murmur state after the whole 4-byte blocks of `bytes`, for a key of `len` bytes. */
function murmurBlocks(bytes: Buffer, len: number): number {
  let h = len;
  for (let i = 0; i + 4 <= bytes.length; i += 4) {
    const k = Math.imul(bytes.readUInt32LE(i), MM);
    h = Math.imul(h, MM) ^ Math.imul(k ^ (k >>> 24), MM);
  }
  return h;
}

/** The last block that takes murmur state `h` to final hash `want`. */
function lastBlock(h: number, want: number): Buffer {
  const x = unxorshift(Math.imul(unxorshift(want, 15), MM_INV), 13) ^ Math.imul(h, MM);
  const k = Math.imul(unxorshift(Math.imul(x, MM_INV), 24), MM_INV);
  const b = Buffer.alloc(4);
  b.writeUInt32LE(k >>> 0);
  return b;
}

/** Hashes worth hitting: 0, 2^32-1, and both sides of every bound, computed as nginx does. */
function edgeHashes(): number[] {
  const out = new Set([0, 0xffffffff]);
  for (const s of Object.values(SPLITS)) {
    if (s.key !== KEY) continue; // svars' key ends in raw $args, so it cannot be aimed
    let bound = 0;
    for (const [p] of s.parts) {
      if (p === '*') continue;
      bound += Math.floor((Math.round(Number(p) * 100) * 0xffffffff) / 10000);
      out.add(bound - 1).add(bound);
    }
  }
  return [...out].sort((a, b) => a - b);
}

// Decoded bytes that nginx would not copy into $uri verbatim (or that we reserve).
const UNAIMABLE = new Set([0x00, SEP, 0x23, 0x25, 0x2e, 0x2f, 0x3f]);

function aimed(want: number, v6: boolean): Req {
  for (;;) {
    const client = v6 ? '::1' : `127.${int(256)}.${int(256)}.${1 + int(254)}`;
    let uri = `${pick(ROUTES)}edge${int(1000)}`;
    while ((client.length + uri.length) % 4) uri += '_';
    const key = Buffer.from(client + uri);
    const block = lastBlock(murmurBlocks(key, key.length + 4), want);
    if (block.some((b) => UNAIMABLE.has(b))) continue;
    const full = Buffer.concat([key, block]);
    if (fmix(murmurBlocks(full, full.length)) !== want) throw new Error('murmur inversion is wrong');
    return { client, target: uri + [...block].map(pct).join('') + query(), headers: { Host: host() } };
  }
}

/** Hand-picked cases first, so the obvious ones are easy to find in the fixture. */
const CANON = ['/predict/', '/predict/?id=3', '/predict?a=1&&id=2', '/predict/?ID=7', '/ping', '/../x', '/a/%2e%2e/%2e%2e/b',
  '/caf%C3%A9', '/x%2Fy', '/%00', '/a%zz', '/a%', '/a+b', '//predict///x/./y/../z', '/?', '/?q=a?b&id=5'];

function* requests(): Generator<Req> {
  for (const target of CANON) yield { client: '127.0.0.1', target, headers: { Host: 'example.com' } };
  for (const h of edgeHashes()) { yield aimed(h, false); yield aimed(h, true); }
  for (;;) yield request();
}

function rawRequest(q: Req): Buffer {
  const lines = [`GET ${q.target} HTTP/1.1`, ...Object.entries(q.headers).map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''];
  return Buffer.from(lines.join('\r\n'), 'utf8');
}

/** A copy of SEP in $uri can only come from a literal %1F: nginx decodes exactly once. */
const hasSep = (q: Req): boolean => /%1f/i.test(q.target) || rawRequest(q).includes(SEP);

// ---- exchange ---------------------------------------------------------------------

function exchange(port: number, q: Req): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const v6 = q.client === '::1';
    const sock = net.connect({ host: v6 ? '::1' : '127.0.0.1', port, localAddress: q.client, family: v6 ? 6 : 4 });
    const chunks: Buffer[] = [];
    let err: Error | undefined;
    sock.setTimeout(10_000, () => sock.destroy(new Error('timeout')));
    sock.on('connect', () => sock.write(rawRequest(q)));
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', (e) => { err = e; });
    // A reset after a complete reply (nginx closing on a bad request) still leaves the reply.
    sock.on('close', () => (chunks.length ? resolve(Buffer.concat(chunks)) : reject(err ?? new Error('closed without reply'))));
  });
}

function parse(q: Req, reply: Buffer): Case {
  const head = reply.indexOf('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(reply.subarray(0, 16).toString('latin1'))?.[1]);
  if (head < 0 || !status) fail(`unparsable reply to ${q.target}`);
  const c: Case = { ...q, status };
  if (status !== 200) return c;
  const body = reply.subarray(head + 4);
  const len = Number(/\r\ncontent-length: *(\d+)/i.exec(reply.subarray(0, head).toString('latin1'))?.[1]);
  if (len !== body.length) fail(`short reply to ${q.target}`);
  const fields: Buffer[] = [];
  for (let at = 0; ; ) {
    const end = body.indexOf(SEP, at);
    fields.push(body.subarray(at, end < 0 ? body.length : end));
    if (end < 0) break;
    at = end + 1;
  }
  const names = Object.keys(SPLITS);
  if (fields.length !== VARS.length + names.length) fail(`separator leaked into a value for ${q.target}`);
  c.vars = Object.fromEntries(VARS.map((v, i) => [v, fields[i]!.toString('hex')]));
  c.buckets = Object.fromEntries(names.map((n, i) => [n, fields[VARS.length + i]!.toString('latin1')]));
  return c;
}

// ---- main -------------------------------------------------------------------------

async function main(): Promise<void> {
  const bin = findNginx() ?? fail(`nginx not found (${process.env.NGINX_BIN || 'nginx, /usr/sbin/nginx'}); set NGINX_BIN`);
  const version = `nginx/${nginxVersion(bin) ?? fail(`cannot read version from ${bin} -v`)}`;

  const reqs: Req[] = [];
  let skipped = 0;
  for (const q of requests()) {
    if (reqs.length === CASES) break;
    if (hasSep(q)) skipped++;
    else reqs.push(q);
  }

  installCleanup(); // a signal or a crash still kills nginx and removes its prefix dir
  let nginx: NginxInstance | undefined;
  const cases: Case[] = [];
  try {
    const port = await freePort(HOSTS).catch(oneLine);
    nginx = await startNginx(bin, 'golden', port, goldenHttp(port), HOSTS).catch(oneLine);
    let next = 0;
    const worker = async () => {
      while (next < reqs.length) {
        const i = next++;
        const q = reqs[i]!;
        for (let attempt = 1; ; attempt++) {
          try { cases[i] = parse(q, await exchange(port, q)); break; } catch (e) {
            if ((e as { oneLine?: boolean }).oneLine || attempt === 3) throw e;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  } finally {
    await nginx?.stop();
  }

  const json = ['{', `  "nginx": ${JSON.stringify(version)},`, '  "generator": "scripts/nginx-golden.ts",', '  "splits": {',
    Object.entries(SPLITS).map(([k, s]) => `    ${JSON.stringify(k)}: ${JSON.stringify(s)}`).join(',\n'),
    '  },', '  "cases": [', cases.map((c) => JSON.stringify(c)).join(',\n'), '  ]', '}', ''].join('\n');
  writeFileSync(OUT, json);

  const statuses: Record<string, number> = {};
  const counts: Record<string, Record<string, number>> = {};
  for (const c of cases) {
    statuses[c.status] = (statuses[c.status] ?? 0) + 1;
    for (const [s, b] of Object.entries(c.buckets ?? {})) (counts[s] ??= {})[b || '""'] = (counts[s]?.[b || '""'] ?? 0) + 1;
  }
  const fmt = (o: Record<string, number>) => Object.entries(o).map(([k, n]) => `${k}=${n}`).join(' ');
  console.log(`${OUT}: ${cases.length} cases (${skipped} skipped, ${cases.filter((c) => c.client === '::1').length} from ::1), `
    + `status ${fmt(statuses)}; ${Object.entries(counts).map(([s, o]) => `${s}: ${fmt(o)}`).join('; ')}; ${Buffer.byteLength(json)} bytes`);
}

main().catch((e: Error & { oneLine?: boolean }) => {
  console.error(`nginx-golden: ${e.oneLine ? e.message : String(e.stack ?? e)}`);
  process.exit(1);
});
