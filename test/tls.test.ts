import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { watchKeyPair, readKeyPair } from '../src/common/tls.js';
import { buildConfig } from '../src/config/config.js';
import { startTestApp } from './helpers/app.js';
import { assertInputError, logLines, serveCli } from './helpers/cli.js';
import { runCli, startTestProxy } from './helpers/net.js';
import { until } from './helpers/wait.js';

/** A directory removed when the test ends. */
function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'drum-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const openssl = (args: string[], cwd: string): void => void execFileSync('openssl', args, { cwd, stdio: 'ignore' });

/** A CA in `dir` (ca.crt, ca.key), made by openssl. */
function makeCa(dir: string): { cert: string; key: string } {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=drum test CA', '-days', '2', '-keyout', 'ca.key', '-out', 'ca.crt'], dir);
  return { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
}

/** A certificate for 127.0.0.1 and localhost signed by the CA in `dir`, as NAME.crt and NAME.key. */
function makeLeaf(dir: string, name: string): { cert: string; key: string; fingerprint: string } {
  writeFileSync(join(dir, `${name}.ext`), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`], dir);
  const cert = join(dir, `${name}.crt`);
  return { cert, key: join(dir, `${name}.key`), fingerprint: new X509Certificate(readFileSync(cert)).fingerprint256 };
}

/**
 * A Kubernetes Secret volume as the kubelet writes it: the files in a timestamped directory,
 * `..data` a symlink to it, and tls.crt / tls.key symlinks through `..data`. put() writes a new
 * directory and swaps `..data` over to it in one rename, as an update does.
 */
function secretVolume(dir: string): { cert: string; key: string; put(cert: string, key: string): void } {
  let n = 0;
  const put = (cert: string, key: string): void => {
    const version = `..2026_12_07_${n++}`;
    mkdirSync(join(dir, version));
    writeFileSync(join(dir, version, 'tls.crt'), readFileSync(cert));
    writeFileSync(join(dir, version, 'tls.key'), readFileSync(key));
    symlinkSync(version, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  return { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key'), put };
}

/** The SHA-256 fingerprint of the certificate a new TLS connection to `port` is served. */
function servedFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(ca), servername: 'localhost' }, () => {
      const peer: PeerCertificate = socket.getPeerCertificate();
      socket.end();
      resolve(peer.fingerprint256);
    });
    socket.on('error', reject);
  });
}

/** An HTTPS GET trusting `ca`: status, headers, body. */
function httpsGet(url: string, ca: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca: readFileSync(ca), agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { log: pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) }), lines };
}

t.test('a certificate without its key, or a key without its certificate, is refused at start-up: one line, exit 2', async (t) => {
  const dir = tempDir(t);
  makeCa(dir);
  const leaf = makeLeaf(dir, 'a');
  const other = makeLeaf(dir, 'b');
  const cases: [string, string[], RegExp][] = [
    ['cert alone', ['--tls-cert', leaf.cert], /tlsCert: needs tlsKey too/],
    ['key alone', ['--tls-key', leaf.key], /tlsKey: needs tlsCert too/],
    ['admin cert alone', ['--admin-tls-cert', leaf.cert], /adminTlsCert: needs adminTlsKey too/],
    ['admin key alone', ['--admin-tls-key', leaf.key], /adminTlsKey: needs adminTlsCert too/],
    ['a key that is not the certificate\'s', ['--tls-cert', leaf.cert, '--tls-key', other.key], /tlsCert: .* do not load as a certificate and its key: .*key values mismatch/],
    ['an admin certificate that is not PEM', ['--admin-tls-cert', leaf.key, '--admin-tls-key', leaf.key], /adminTlsCert: .* do not load/],
    ['an upstream CA that cannot be read', ['--upstream-ca', join(dir, 'missing.pem')], /upstreams\.\w+\.ca: cannot read .*missing\.pem/],
    ['an upstream CA that is not PEM', ['--upstream-ca', join(dir, 'a.ext')], /upstreams\.\w+\.ca: .*a\.ext is not a PEM certificate/],
  ];
  for (const [name, args, message] of cases) {
    const r = await runCli(['serve', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...args], {}, 15_000);
    assertInputError(t, r, message, name);
  }
  // The same in process: nothing is left listening (the traffic side closes when the admin API cannot start).
  await t.rejects(startTestProxy({ upstreams: ['flask=https://127.0.0.1:1'], upstreamCa: join(dir, 'missing.pem') }), /upstreams\.flask\.ca: cannot read/);
  await t.rejects(startTestProxy({ upstreams: { flask: { url: 'https://127.0.0.1:1', ca: join(dir, 'a.ext') } } }), /upstreams\.flask\.ca: .* is not a PEM certificate/);
  await t.rejects(startTestApp(t, { adminTlsCert: leaf.cert, adminTlsKey: other.key }), /adminTlsCert: .*key values mismatch/);
  // The config file's form: a certificate without its key in YAML is the same refusal.
  t.throws(() => buildConfig({ adminTlsKey: leaf.key }), /adminTlsKey: needs adminTlsCert too/);
  t.throws(() => buildConfig({ upstreams: { flask: { url: 'https://127.0.0.1:1', ca: '' } } }), /upstreams\.flask\.ca: must be a file path/);
});

t.test('traffic and admin over TLS; a rotated Secret is served on new connections without a restart; a bad pair keeps the old one', async (t) => {
  const dir = tempDir(t);
  const ca = makeCa(dir).cert;
  const first = makeLeaf(dir, 'first');
  const second = makeLeaf(dir, 'second');
  const secretDir = join(dir, 'secret');
  mkdirSync(secretDir);
  const secret = secretVolume(secretDir);
  secret.put(first.cert, first.key);
  symlinkSync('..data/tls.crt', secret.cert);
  symlinkSync('..data/tls.key', secret.key);

  const { log, lines } = capture();
  const upstream = createHttpsServer({ cert: readFileSync(first.cert), key: readFileSync(first.key) }, (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ proto: req.headers['x-forwarded-proto'] }));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => upstream.close(() => r())));
  const app = await startTestApp(
    t,
    {
      tlsCert: secret.cert, tlsKey: secret.key, adminTlsCert: secret.cert, adminTlsKey: secret.key,
      // Upstream trust per upstream in the config's form.
      upstreams: { flask: { url: `https://127.0.0.1:${(upstream.address() as AddressInfo).port}`, ca } },
    },
    { log },
  );
  const traffic = app.proxy.address.port;
  const admin = app.adminAddress.port;

  const r = await httpsGet(`https://localhost:${traffic}/predict/`, ca);
  t.equal(r.status, 200, 'the traffic listener answers over TLS, through an https upstream trusted by its own CA');
  t.same(JSON.parse(r.body), { proto: 'https' }, 'X-Forwarded-Proto says https');
  t.equal(r.headers['x-drum-splitter-upstream'], 'flask');
  const health = await httpsGet(`https://localhost:${admin}/healthz`, ca);
  t.equal(health.status, 200, 'the admin API answers over TLS');
  t.equal(await servedFingerprint(traffic, ca), first.fingerprint);
  t.equal(await servedFingerprint(admin, ca), first.fingerprint);
  const served = lines.filter((l) => l.msg === 'TLS certificate served');
  t.same(served.map((l) => l.listener).sort(), ['admin', 'traffic'], 'each listener logs the certificate it serves');
  t.equal(served[0]!.fingerprint, first.fingerprint);
  t.match(served[0]!.notAfter, /^\d{4}-\d\d-\d\dT/);

  // cert-manager renews: the Secret's ..data swapped to a new directory.
  secret.put(second.cert, second.key);
  await until(async () => (await servedFingerprint(traffic, ca)) === second.fingerprint && (await servedFingerprint(admin, ca)) === second.fingerprint, 10_000);
  t.pass('the renewed certificate is served on new connections of both listeners, the process not restarted');
  t.equal((await httpsGet(`https://localhost:${traffic}/predict/`, ca)).status, 200, 'traffic still flows');
  const reloaded = lines.filter((l) => l.msg === 'TLS certificate reloaded');
  t.same(reloaded.map((l) => l.fingerprint), [second.fingerprint, second.fingerprint], 'the reload is logged with the new certificate');

  // A pair that does not load (the key of another certificate): logged, the served one kept.
  secret.put(first.cert, second.key);
  await until(() => lines.filter((l) => l.msg === 'TLS certificate change rejected: the pair does not load; keeping the served certificate').length === 2, 10_000);
  t.equal(await servedFingerprint(traffic, ca), second.fingerprint, 'the traffic listener still serves the last good pair');
  t.equal(await servedFingerprint(admin, ca), second.fingerprint, 'and so does the admin API');

  // The files gone: logged once it has lasted, the served pair kept.
  rmSync(join(secretDir, '..data'));
  await until(() => lines.filter((l) => l.msg === 'TLS certificate change rejected: cannot read it; keeping the served certificate').length === 2, 10_000);
  t.equal(await servedFingerprint(traffic, ca), second.fingerprint, 'still served');
});

t.test('--workers: every worker serves the rotated certificate', async (t) => {
  const dir = tempDir(t);
  const ca = makeCa(dir).cert;
  const first = makeLeaf(dir, 'first');
  const second = makeLeaf(dir, 'second');
  const secret = secretVolume(dir);
  secret.put(first.cert, first.key);
  symlinkSync('..data/tls.crt', secret.cert);
  symlinkSync('..data/tls.key', secret.key);
  const served = serveCli(t, ['--listen', '127.0.0.1:0', '--workers', '2', '--poll-interval', '1h', '--upstream', 'flask=http://127.0.0.1:1', '--tls-cert', secret.cert, '--tls-key', secret.key]);
  const port = Number((await served.listening).listen.split(':').pop());
  // The primary deals new connections to the workers in turn: a few in a row reach both.
  const fingerprints = async (): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < 6; i++) out.push(await servedFingerprint(port, ca));
    return [...new Set(out)];
  };
  t.same(await fingerprints(), [first.fingerprint]);
  secret.put(second.cert, second.key);
  await until(async () => (await fingerprints()).join() === second.fingerprint, 15_000);
  t.same(await fingerprints(), [second.fingerprint], 'each new connection, whichever worker takes it, gets the renewed certificate');
  t.equal(logLines(served, 'TLS certificate reloaded').length, 2, 'each worker logs its reload');
});

t.test('upstream trust: an https upstream signed by a private CA is refused without --upstream-ca (502, the log says certificate) and served with it', async (t) => {
  const dir = tempDir(t);
  const ca = makeCa(dir).cert;
  const leaf = makeLeaf(dir, 'upstream');
  const upstream = createHttpsServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (_req, res) => res.end('{"ok":true}'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => upstream.close(() => r())));
  const url = `https://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

  const { log, lines } = capture();
  const refused = await startTestApp(t, { upstreams: [`flask=${url}`] }, { log });
  const res = await fetch(`${refused.traffic}/predict/`);
  t.equal(res.status, 502, "the system's trust does not know the private CA");
  t.match(await res.json(), { error: 'bad_gateway', message: /^upstream's TLS certificate not accepted: .*certificate/, upstream: 'flask' }, "the catalog's error, naming the certificate");
  const warned = lines.find((l) => l.upstream === 'flask' && l.status === 502);
  t.match(warned?.msg, /^upstream's TLS certificate not accepted: .*certificate.* \(its CA: --upstream-ca\)$/, 'the log says it is the certificate, and what to do');
  await refused.close();

  const trusted = await startTestApp(t, { upstreams: [`flask=${url}`], upstreamCa: ca });
  const ok = await fetch(`${trusted.traffic}/predict/`);
  t.equal(ok.status, 200, 'served with --upstream-ca');
  t.equal(await ok.text(), '{"ok":true}');
});

t.test('the shadow copies to an https canary over a pool trusting its CA', async (t) => {
  const dir = tempDir(t);
  const ca = makeCa(dir).cert;
  const leaf = makeLeaf(dir, 'canary');
  let copies = 0;
  const canary = createHttpsServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (req, res) => {
    if (req.method === 'POST') copies++;
    res.end('{"p":1}');
  });
  await new Promise<void>((r) => canary.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => canary.close(() => r())));
  const baseline = createHttpsServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (_req, res) => res.end('{"p":1}'));
  await new Promise<void>((r) => baseline.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => baseline.close(() => r())));
  const port = (s: typeof canary): number => (s.address() as AddressInfo).port;
  const app = await startTestApp(t, {
    upstreams: [`flask=https://127.0.0.1:${port(baseline)}`, `fastapi=https://127.0.0.1:${port(canary)}`],
    upstreamCa: ca,
    shadowSample: '1',
    shadowPaths: ['/predict/'],
  });
  t.equal((await fetch(`${app.traffic}/predict/`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status, 200);
  await until(() => copies > 0, 5000);
  t.equal(copies, 1, 'the copy reached the https canary');
});

t.test('a certificate directory that cannot be watched is logged: reload is off, the pair still served', async (t) => {
  const dir = tempDir(t);
  makeCa(dir);
  const leaf = makeLeaf(dir, 'leaf');
  const pair = readKeyPair(leaf, 'tlsCert');
  const { log, lines } = capture();
  const missing = { cert: join(dir, 'gone', 'tls.crt'), key: join(dir, 'gone', 'tls.key') };
  const watcher = watchKeyPair(missing, pair, () => t.fail('nothing to reload'), { log, listener: 'traffic' });
  t.teardown(() => watcher.close());
  await until(() => lines.some((l) => l.msg === 'cannot watch the TLS certificate for changes; reload is off'));
  t.pass();
});

t.test('plain HTTP stays plain: no TLS settings, no TLS', async (t) => {
  const proxy = await startTestProxy({ upstreams: ['flask=http://127.0.0.1:1'] });
  t.teardown(() => proxy.close());
  t.notOk('setSecureContext' in proxy.server, 'node:http, not node:https');
});
