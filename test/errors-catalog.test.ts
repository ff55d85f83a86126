/**
 * One error catalog (issue 26): every error answer, the traffic listener's and the admin
 * API's, raw or not, names a catalog entry and has that entry's status.
 */
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { startApp } from '../src/app.js';
import { ERRORS, parserError, type ErrorName } from '../src/common/errors.js';
import { MAX_HEADERS } from '../src/proxy/handler.js';
import { freePort, rawExchange, send, silentLog, startTestProxy, startUpstream } from './helpers/net.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TOKEN = 'ops-token-0123456789';

t.test('the catalog: snake_case names, each an error status with a message', async (t) => {
  for (const [name, { status, message }] of Object.entries(ERRORS)) {
    t.match(name, /^[a-z]+(?:_[a-z]+)*$/, name);
    t.ok(Number.isInteger(status) && status >= 400 && status < 600, `${name}: ${status} is an error status`);
    t.ok(message.length > 0, `${name}: a message`);
  }
});

t.test("the README's Errors table lists the catalog: each name once, with its status", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Errors'), readme.indexOf('\n### ', readme.indexOf('### Errors') + 1));
  const rows = [...section.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map(([, name, status]) => [name!, Number(status)] as const);
  t.same(rows.map(([name]) => name).sort(), Object.keys(ERRORS).sort(), 'every entry, once');
  for (const [name, status] of rows) t.equal(status, ERRORS[name as ErrorName]?.status, `${name}: ${status}`);
});

t.test("parserError: what a request Node's parser rejected gets", async (t) => {
  const cases: [string | undefined, ErrorName, number, RegExp][] = [
    ['HPE_HEADER_OVERFLOW', 'headers_too_large', 431, /^the request headers are over \d+ bytes \(HPE_HEADER_OVERFLOW\)$/],
    ['ERR_HTTP_REQUEST_TIMEOUT', 'request_timeout', 408, /did not all arrive in time \(ERR_HTTP_REQUEST_TIMEOUT\)$/],
    ['HPE_INVALID_METHOD', 'bad_request', 400, /^malformed request: HPE_INVALID_METHOD$/],
    [undefined, 'bad_request', 400, /^malformed request/],
  ];
  for (const [code, name, status, message] of cases) {
    const [got, text] = parserError(code);
    t.equal(got, name, `${code} → ${name}`);
    t.equal(ERRORS[got].status, status, `${code} → ${status}`);
    t.match(text, message);
  }
});

t.test('no answer in src/ names an error or an error status outside the catalog', async (t) => {
  const src = join(ROOT, 'src');
  const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  // The stand-in imitates a model server's errors, not ours; the catalog is where names and statuses live.
  const exempt = new Set(['common/errors.ts', 'cli/standin.ts']);
  // An answer's body or status written out by hand; a name alone (an ErrorName, which the compiler checks) is fine.
  const literal = /\berror: '[a-z_]+', message\b|\.code\([45]\d\d\)|writeHead\([45]\d\d\b|HTTP\/1\.1 [45]\d\d/;
  const found = files.filter((f) => !exempt.has(f)).flatMap((f) => readFileSync(join(src, f), 'utf8').split('\n').filter((line) => literal.test(line)).map((line) => `${f}: ${line.trim()}`));
  t.ok(files.length > 50, 'read the sources');
  t.strictSame(found, []);
  t.ok(['reply.code(409).send(body)', "send({ error: 'conflict', message })", 'socket.end(`HTTP/1.1 400 Bad Request'].every((line) => literal.test(line)), 'the check sees one');
});

/** An answer as the client got it: its status and its JSON body. */
interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

const fromRaw = (raw: string): Answer => ({ status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(raw)?.[1]), body: JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Record<string, unknown> });
const fromReply = (r: { status: number; body: Buffer }): Answer => ({ status: r.status, body: JSON.parse(r.body.toString()) as Record<string, unknown> });

/**
 * What a listener answers when Node gives up on a request's headers (after its 60 s
 * headersTimeout): Node's own 'clientError' event, with its code, emitted on a real connection
 * rather than waited for.
 */
async function headersTimedOut(server: Server, port: number): Promise<Answer> {
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  client.on('data', (c: Buffer) => chunks.push(c));
  const [socket] = await accepted;
  client.write('GET / HTTP/1.1\r\nHost: localh');
  server.emit('clientError', Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket);
  await once(client, 'close');
  return fromRaw(Buffer.concat(chunks).toString());
}

/** Checks each answer against the name it should carry, and that name's status in the catalog. */
function check(t: Test, answers: readonly (readonly [string, ErrorName, Answer])[]): void {
  for (const [label, name, { status, body }] of answers) {
    t.equal(body.error, name, `${label}: ${name}`);
    t.equal(status, ERRORS[name].status, `${label}: ${ERRORS[name].status}`);
    t.type(body.message, 'string', `${label}: a message`);
  }
}

t.test('the traffic listener: every refusal and failure, raw or not, carries its catalog name and status', async (t) => {
  const live = await startUpstream('live');
  const silent = await startUpstream('silent', () => {});
  const dead = await freePort();
  const proxy = await startTestProxy({
    upstreams: [`live=${live.url}`, `silent=${silent.url}`, `dead=http://127.0.0.1:${dead}`],
    weights: ['silent=0', 'dead=0'],
    overrideHeader: 'X-Canary',
    bodyLimit: '1000',
    timeout: '300ms',
  });
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([live.close(), silent.close()]);
  });
  const { port } = proxy.address;
  const raw = async (bytes: string): Promise<Answer> => fromRaw(await rawExchange(port, bytes));
  const headers = (n: number): string => Array.from({ length: n }, (_, i) => `X-${i}: 1\r\n`).join('');
  check(t, [
    ["a request Node's parser rejects", 'bad_request', await raw('GARBAGE\r\n\r\n')],
    ['headers over 16 KB', 'headers_too_large', await raw(`GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`)],
    ['headers not all in before the timeout', 'request_timeout', await headersTimedOut(proxy.server, port)],
    [`more than ${MAX_HEADERS} headers`, 'too_many_headers', await raw(`GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n${headers(MAX_HEADERS)}\r\n`)],
    ['CONNECT', 'bad_request', await raw('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')],
    ['two Host headers', 'bad_request', await raw('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n')],
    ['an override naming no upstream', 'unknown_upstream', fromReply(await send(`${proxy.url}/`, { headers: { 'x-canary': 'django' } }))],
    ['a body over the limit', 'payload_too_large', fromReply(await send(`${proxy.url}/`, { method: 'POST', body: Buffer.alloc(1001) }))],
    ['an upstream that refuses', 'bad_gateway', fromReply(await send(`${proxy.url}/`, { headers: { 'x-canary': 'dead' } }))],
    ['an upstream that does not answer', 'gateway_timeout', fromReply(await send(`${proxy.url}/`, { headers: { 'x-canary': 'silent' } }))],
  ]);
});

t.test('the admin API: its refusals, fastify\'s and Node\'s parser\'s, carry catalog names and statuses', async (t) => {
  const upstream = await startUpstream('flask');
  const start = (env: NodeJS.ProcessEnv) => startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${upstream.url}`, `fastapi=${upstream.url}`] } }, { env, log: silentLog });
  const open = await start({});
  const guarded = await start({ DRUM_SPLITTER_ADMIN_TOKEN: TOKEN });
  t.teardown(async () => {
    await Promise.all([open.close(), guarded.close()]);
    await upstream.close();
  });
  const { port } = open.adminAddress;
  const url = `http://127.0.0.1:${port}`;
  const raw = async (bytes: string): Promise<Answer> => fromRaw(await rawExchange(port, bytes));
  const put = async (path: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Answer> =>
    fromReply(await send(`${url}${path}`, { method: 'PUT', headers, body }));
  check(t, [
    ['no such route', 'not_found', fromReply(await send(`${url}/nope`))],
    ['a write without the token', 'unauthorized', fromReply(await send(`http://127.0.0.1:${guarded.adminAddress.port}/rollback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }))],
    ['no token and a Host that is not loopback', 'forbidden', fromReply(await send(`${url}/weights`, { headers: { host: 'attacker.example' } }))],
    ['a write that is not JSON', 'unsupported_media_type', await put('/weights', 'fastapi=1', { 'content-type': 'text/plain' })],
    ['a field the schema refuses', 'invalid', await put('/weights', '{"weights": {"fastapi": 1}, "weight": 2}')],
    ['a value the checks refuse', 'invalid', await put('/weights', '{"weights": {"fastapi": 101}}')],
    ['malformed JSON', 'invalid', await put('/weights', '{"weights": {')],
    ['an empty JSON body', 'invalid', await put('/weights', '')],
    ['a body over 64 KiB', 'payload_too_large', await put('/weights', JSON.stringify({ weights: {}, reason: 'x'.repeat(70_000) }))],
    ['a stale version', 'conflict', await put('/weights', '{"weights": {"fastapi": 1}, "version": 7}')],
    ['a path the router cannot decode', 'bad_request', await raw('GET /%zz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')],
    ["a request Node's parser rejects", 'bad_request', await raw('GARBAGE\r\n\r\n')],
    ['headers over 16 KB', 'headers_too_large', await raw(`GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`)],
    ['headers not all in before the timeout', 'request_timeout', await headersTimedOut(open.admin.server, port)],
  ]);
});
