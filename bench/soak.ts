// `npm run soak` (not CI): drum-splitter's memory under steady load, against the gate "RSS flat
// over a 10-minute soak" (its level against the bare proxy's is bench:memory's gate). The proxy
// runs as users run it in phase 1 (recording 1% of predictions; --no-record turns that off) in
// front of the bench's near-free upstream, and wrk drives it in back-to-back 30 s runs, so every
// run has its own throughput figure; meanwhile the proxy's RSS is read from /proc every 5 s.
// Markdown goes to stdout, progress to stderr. Exit 1 when the gate fails (or the soak breaks).
// Env: SOAK_MINUTES (10), SOAK_CONNECTIONS (32), NGINX_BIN. Flag: --no-record.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DRUM_SPLITTER_CLI, REQUEST_BODY, REQUEST_PATH, countLines, drumSplitterArgs, envInt, machineLine, median, reportGate, signed, startNode, startUpstream,
} from './common.js';
import { findNginx, nginxVersion } from './nginx.js';
import { freePort, installCleanup, makeTempDir, track } from './proc.js';
import { postScript, runWrk, wrkArgs, wrkAvailable, type WrkOptions } from './wrk.js';
import { statusMb } from './usage.js';

/** One wrk run. It divides a minute, so every minute's throughput comes from its own runs. */
const RUN_SEC = 30;
const SAMPLE_MS = 5_000;
/** Growth allowed from minute 2 (minute 1 is warm-up: pools, JIT, recorder buffers) to the last minute. */
const GROWTH_BAR = 0.1;
const RECORD_SAMPLE = '0.01';

interface Minute { requests: number; seconds: number; errors: number; rss: number[] }

const mb = (n: number): string => n.toFixed(1);

function table(minutes: Minute[]): string {
  const head = ['minute', 'req/s', 'RSS min MB', 'RSS median MB', 'RSS max MB', 'errors'];
  const body = minutes.map((m, i) => [String(i + 1), (m.requests / m.seconds).toFixed(0),
    mb(Math.min(...m.rss)), mb(median(m.rss)), mb(Math.max(...m.rss)), String(m.errors)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(w[i] ?? 0)).join(' | ')} |`;
  return [line(head), `|${w.map((n) => `${'-'.repeat(n + 1)}:`).join('|')}|`, ...body.map(line)].join('\n');
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const bad = argv.find((a) => a !== '--no-record');
  if (bad !== undefined) throw new Error(`unknown argument ${bad} (use --no-record)`);
  const record = !argv.includes('--no-record');
  if (!wrkAvailable()) {
    process.stderr.write('soak: wrk not found on PATH (Debian/Ubuntu: apt-get install wrk)\n');
    return 2;
  }
  if (!existsSync(DRUM_SPLITTER_CLI)) {
    process.stderr.write('soak: dist/src/cli/main.js missing: run `npx tsc -p tsconfig.json` first\n');
    return 2;
  }
  installCleanup();
  const soakMinutes = envInt('SOAK_MINUTES', 10);
  const connections = envInt('SOAK_CONNECTIONS', 32);
  const logDir = makeTempDir('soak-');
  const script = join(logDir, 'predict.lua');
  writeFileSync(script, postScript(REQUEST_BODY, 'text/csv'));
  const recordFile = join(logDir, 'recorded.jsonl');
  const wrkBase: Omit<WrkOptions, 'url'> = { threads: 1, connections, durationSec: RUN_SEC, script };

  const nginx = findNginx();
  if (!nginx) process.stderr.write('soak: nginx not found, the upstream is node:http\n');
  const upstream = await startUpstream(nginx, logDir);
  const port = await freePort();
  const proxyArgs = [...drumSplitterArgs(port, upstream.url), ...(record ? ['--record', recordFile, '--record-sample', RECORD_SAMPLE] : [])];
  const minutes: Minute[] = Array.from({ length: soakMinutes }, () => ({ requests: 0, seconds: 0, errors: 0, rss: [] }));
  let hwm: number | null = null;
  let lines = 0;
  try {
    const proxy = await startNode(logDir, 'drum-splitter', DRUM_SPLITTER_CLI, proxyArgs, port);
    const pid = proxy.child.proc.pid!; // startNode saw it answer, so it was spawned
    let current = 0; // the minute whose wrk runs are under way: samples belong to it
    // The first sample is the idle proxy, so minute 1's min shows where the warm-up started.
    const sample = (): void => { const v = statusMb(pid, 'VmRSS'); if (v !== null) minutes[current]!.rss.push(v); };
    sample();
    const timer = setInterval(sample, SAMPLE_MS);
    try {
      const runs = (soakMinutes * 60) / RUN_SEC;
      for (let run = 0; run < runs; run++) {
        current = Math.floor((run * RUN_SEC) / 60);
        const r = await runWrk({ ...wrkBase, url: proxy.url + REQUEST_PATH }, 'wrk', track);
        const s = r.socketErrors;
        const m = minutes[current]!;
        m.requests += r.requests;
        m.seconds += RUN_SEC;
        m.errors += r.non2xx + s.connect + s.read + s.write + s.timeout;
        // A dead proxy would otherwise show up only as a row of errors and a frozen RSS.
        if (proxy.child.proc.exitCode !== null || proxy.child.proc.signalCode !== null) {
          throw new Error(`drum-splitter exited during the soak:\n${proxy.child.logTail()}`);
        }
        process.stderr.write(`soak: run ${run + 1}/${runs}: ${r.rps.toFixed(0)} req/s, RSS ${mb(statusMb(pid, 'VmRSS') ?? NaN)} MB\n`);
      }
      sample(); // the last minute's closing value
      hwm = statusMb(pid, 'VmHWM');
    } finally {
      clearInterval(timer);
      await proxy.stop(); // SIGTERM flushes the recorder, so the line count below is complete
    }
    if (record) lines = countLines(recordFile);
  } finally {
    await upstream.stop();
  }

  const first = minutes[0]!;
  const last = minutes[minutes.length - 1]!;
  const end1 = first.rss[first.rss.length - 1]!;
  const endN = last.rss[last.rss.length - 1]!;
  const peak = hwm ?? Math.max(...minutes.flatMap((m) => m.rss));
  const total = minutes.reduce((a, m) => a + m.requests, 0);
  const errors = minutes.reduce((a, m) => a + m.errors, 0);

  const command = `SOAK_MINUTES=${soakMinutes} SOAK_CONNECTIONS=${connections} npm run soak${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
  const base = minutes.length >= 3 ? median(minutes[1]!.rss) : NaN;
  const growth = median(last.rss) / base - 1;
  const gate = reportGate({
    name: `memory: RSS flat over a ${soakMinutes}-minute soak (median of minute 2 to median of the last)`,
    bar: `≤ +${100 * GROWTH_BAR}%`,
    figure: minutes.length >= 3 ? `${mb(base)} → ${mb(median(last.rss))} MB (${signed(100 * growth, 1)}%)` : 'needs SOAK_MINUTES ≥ 3 (minute 1 is warm-up, minute 2 the base)',
    met: minutes.length >= 3 ? growth <= GROWTH_BAR : 'not measured',
    command,
  });

  const out = [
    `command: \`${command}\``,
    `proxy: \`node dist/src/cli/main.js ${proxyArgs.join(' ')}\``,
    `load: \`wrk ${wrkArgs({ ...wrkBase, script: 'predict.lua', url: `<proxy>/${REQUEST_PATH}` }).join(' ')}\` (POST, \`Content-Type: text/csv\`, ${REQUEST_BODY.length}-byte CSV body), ${(soakMinutes * 60) / RUN_SEC} runs back to back; RSS: VmRSS of the proxy's node process, every ${SAMPLE_MS / 1000} s`,
    `upstream: ${upstream.desc}`,
    machineLine(nginx ? nginxVersion(nginx) ?? 'unknown' : null),
    '',
    table(minutes),
    '',
    `- RSS end of minute 1 → end of minute ${soakMinutes}: ${mb(end1)} → ${mb(endN)} MB (${signed(endN - end1, 1)} MB, ${signed(100 * (endN / end1 - 1), 1)}%)`,
    `- peak RSS (VmHWM): ${mb(peak)} MB`,
    `- requests: ${total}; errors (non-2xx and socket errors): ${errors}`,
    `- recorded: ${record ? `${lines} lines (sample ${RECORD_SAMPLE})` : 'off (--no-record)'}`,
    '',
    gate,
    '',
  ].join('\n');
  process.stdout.write(out);
  return minutes.length >= 3 && growth > GROWTH_BAR ? 1 : 0;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`soak: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
