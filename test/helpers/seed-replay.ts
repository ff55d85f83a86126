import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Runs the seed's "Option A" replay script (CANARY_DEPLOYMENT.md, the ```python block that
 * starts `# scripts/shadow_replay_test.py`) exactly as written, against files we record.
 *
 * The seeds sit beside the repo: ../shared/seeds from the repo root, locally and in CI.
 */
export const SEED_FILE = fileURLToPath(new URL('../../../shared/seeds/CANARY_DEPLOYMENT.md', import.meta.url));

/**
 * Debian's interpreter, by full path, on purpose: `python3` on PATH may be a pyenv build
 * (/root/.pyenv/shims/python3) that does not see /usr/lib/python3/dist-packages, where
 * apt's python3-httpx and python3-deepdiff (the script's only imports besides the stdlib) live.
 */
export const PYTHON = '/usr/bin/python3';

const FIRST_LINE = '# scripts/shadow_replay_test.py';

/** The script's text, verbatim: the lines between the fence that opens it and the next fence. */
export function extractSeedScript(markdown: string, source = 'the seed'): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l, i) => l.trimEnd() === '```python' && lines[i + 1]?.trimEnd() === FIRST_LINE);
  if (start < 0) {
    throw new Error(`${source} has no \`\`\`python block starting "${FIRST_LINE}" (the Option A replay script)`);
  }
  const end = lines.findIndex((l, i) => i > start && l.trimEnd() === '```');
  if (end < 0) throw new Error(`${source}: the "${FIRST_LINE}" block is never closed with \`\`\``);
  return lines.slice(start + 1, end).join('\n') + '\n';
}

/** Undefined when the seed script can run here; otherwise why not (for tap's `skip`). */
export function seedReplayAvailable(seedFile = SEED_FILE): string | undefined {
  if (!existsSync(seedFile)) return `seed file not found: ${seedFile}`;
  if (!existsSync(PYTHON)) return `${PYTHON} not found (apt-get install python3)`;
  const probe = spawnSync(PYTHON, ['-c', 'import httpx, deepdiff'], { encoding: 'utf8', timeout: 30_000 });
  if (probe.status !== 0) {
    return `${PYTHON} cannot import httpx and deepdiff (apt-get install python3-httpx python3-deepdiff): ${(probe.stderr || probe.error?.message || '').trim().split('\n').pop()}`;
  }
  return undefined;
}

export interface SeedReplayOptions {
  /** Path of the JSONL file to replay. */
  jsonl: string;
  flaskUrl: string;
  fastapiUrl: string;
  /** Where the script and its output go (the script runs with this as its cwd). */
  workDir: string;
  seedFile?: string;
  /** Kills the script after this long. */
  timeoutMs?: number;
}

export interface SeedReplayResult {
  /** The output file's `summary` (what the script calls its report). */
  report: Record<string, unknown>;
  /** The output file's `results`, one per JSONL line, in file order. */
  results: Record<string, unknown>[];
  stdout: string;
}

export async function runSeedReplay(opts: SeedReplayOptions): Promise<SeedReplayResult> {
  const seedFile = opts.seedFile ?? SEED_FILE;
  let markdown: string;
  try {
    markdown = await readFile(seedFile, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the seed file ${seedFile}: ${(err as Error).message}`);
  }
  const script = join(opts.workDir, 'shadow_replay_test.py');
  const output = join(opts.workDir, 'out.json');
  await writeFile(script, extractSeedScript(markdown, seedFile));

  // The script's httpx.AsyncClient trusts the environment: an HTTP(S)_PROXY or ALL_PROXY
  // in CI would send our 127.0.0.1 requests through a proxy (or fail for want of socksio).
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' };
  for (const k of Object.keys(env)) {
    if (/^(https?|all)_proxy$/i.test(k) || k === 'PYTHONHOME' || k === 'PYTHONPATH') delete env[k];
  }
  const args = ['shadow_replay_test.py', '--flask-url', opts.flaskUrl, '--fastapi-url', opts.fastapiUrl, '--requests-file', opts.jsonl, '--output', output];
  const timeoutMs = opts.timeoutMs ?? 60_000;

  const { code, signal, stdout, stderr, timedOut } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; timedOut: boolean }>(
    (resolve, reject) => {
      const child = spawn(PYTHON, args, { cwd: opts.workDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let timedOut = false;
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot start ${PYTHON}: ${e.message}`));
      });
      child.on('close', (c, s) => {
        clearTimeout(timer);
        resolve({ code: c, signal: s, stdout: out, stderr: err, timedOut });
      });
    },
  );
  if (timedOut || code !== 0) {
    const why = timedOut ? `timed out after ${timeoutMs} ms` : `exited with ${code ?? signal}`;
    throw new Error(`seed replay script ${why}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`);
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(output, 'utf8'));
  } catch (err) {
    throw new Error(`seed replay script wrote no readable ${output}: ${(err as Error).message}\n--- stdout ---\n${stdout}`);
  }
  const { summary, results } = parsed as { summary?: unknown; results?: unknown };
  if (typeof summary !== 'object' || summary === null || !Array.isArray(results)) {
    throw new Error(`unexpected shape in ${output}: ${JSON.stringify(parsed).slice(0, 500)}`);
  }
  return { report: summary as Record<string, unknown>, results: results as Record<string, unknown>[], stdout };
}
