/** The start-up precedence, as one table: which layer wins for settings, weights and recording. */
import t from 'tap';
import type { RawSettings } from '../src/config/config.js';
import { resolveStartup } from '../src/config/startup.js';
import { percentages, type Snapshot } from '../src/weights/shares.js';

const AT = '2026-11-29T00:00:00.000Z';
const UPSTREAMS = ['flask=http://127.0.0.1:8080', 'fastapi=http://127.0.0.1:8081'];
const stateAt = (fastapi: number): Snapshot => ({
  state: { shares: [['fastapi', fastapi * 100]], version: 7, updatedAt: AT, source: 'admin' },
  history: [],
});

interface Row {
  readonly name: string;
  readonly file?: RawSettings;
  readonly flags?: RawSettings;
  readonly state?: Snapshot;
  readonly env?: NodeJS.ProcessEnv;
  /** The canary's share once the start is applied, the version it starts from, the listen port, recording. */
  readonly want: { fastapi: number; version: number; restored: boolean; envChange: boolean; port: number; record: [enabled: boolean, rate: number] };
}

const ROWS: Row[] = [
  { name: 'defaults only', want: { fastapi: 0, version: 1, restored: false, envChange: false, port: 8000, record: [false, 0.01] } },
  { name: 'the file over the defaults', file: { listen: '127.0.0.1:9000', weights: { fastapi: 5 }, recordSample: 0.5 }, want: { fastapi: 5, version: 1, restored: false, envChange: false, port: 9000, record: [false, 0.5] } },
  {
    name: 'flags over the file',
    file: { listen: '127.0.0.1:9000', weights: { fastapi: 5 } },
    flags: { listen: '127.0.0.1:9001', weights: ['fastapi=10'] },
    want: { fastapi: 10, version: 1, restored: false, envChange: false, port: 9001, record: [false, 0.01] },
  },
  {
    name: 'the state file over flags and file (weights only)',
    file: { weights: { fastapi: 5 } },
    flags: { weights: ['fastapi=10'], state: '/state.json' },
    state: stateAt(25),
    want: { fastapi: 25, version: 7, restored: true, envChange: false, port: 8000, record: [false, 0.01] },
  },
  {
    name: 'no state file yet: the config weights, version 1',
    flags: { weights: ['fastapi=10'], state: '/state.json' },
    want: { fastapi: 10, version: 1, restored: false, envChange: false, port: 8000, record: [false, 0.01] },
  },
  {
    name: 'the environment over the state file',
    flags: { weights: ['fastapi=10'], state: '/state.json' },
    state: stateAt(25),
    env: { MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT: '50' },
    want: { fastapi: 50, version: 7, restored: true, envChange: true, port: 8000, record: [false, 0.01] },
  },
  {
    name: "DRUM_SERVER_TYPE over the canary percent (the seed's level-1 rollback)",
    flags: { weights: ['fastapi=10'] },
    env: { MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT: '50', MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE: 'flask' },
    want: { fastapi: 0, version: 1, restored: false, envChange: true, port: 8000, record: [false, 0.01] },
  },
  {
    name: "recording: the environment's switches over flags and file",
    file: { record: '/tmp/r.jsonl', recordSample: 0.5 },
    flags: { recordSample: 0.2 },
    env: { DRUM_RECORD_REQUESTS: 'false', DRUM_RECORD_SAMPLE_RATE: '0.05' },
    want: { fastapi: 0, version: 1, restored: false, envChange: false, port: 8000, record: [false, 0.05] },
  },
  {
    name: 'recording: flags over the file when the environment says nothing',
    file: { record: '/tmp/r.jsonl', recordSample: 0.5 },
    flags: { recordSample: 0.2 },
    want: { fastapi: 0, version: 1, restored: false, envChange: false, port: 8000, record: [true, 0.2] },
  },
];

for (const row of ROWS) {
  t.test(row.name, async (t) => {
    const read: string[] = [];
    const start = resolveStartup({
      file: { upstreams: UPSTREAMS, ...row.file },
      flags: row.flags ?? {},
      env: row.env ?? {},
      at: AT,
      readState: (path) => {
        read.push(path);
        return row.state;
      },
    });
    const shares = start.envChange?.shares ?? start.snapshot.state.shares;
    t.equal(percentages(['flask', 'fastapi'], shares).fastapi, row.want.fastapi, 'canary share');
    t.equal(start.snapshot.state.version, row.want.version, 'version started from');
    t.equal(start.restored, row.want.restored, 'restored');
    t.equal(start.envChange !== undefined, row.want.envChange, 'an environment change to audit');
    t.equal(start.config.listen.port, row.want.port, 'listen port');
    t.strictSame([start.config.record.enabled, start.config.record.sampleRate], row.want.record, 'recording');
    t.strictSame(read, start.config.state === undefined ? [] : [start.config.state], 'the state file read only when configured');
  });
}

t.test('a fresh start records its first audit entry at the given time', async (t) => {
  const start = resolveStartup({ flags: { upstreams: UPSTREAMS, weights: ['fastapi=5'] }, env: {}, at: AT });
  t.strictSame(start.snapshot.history, [{ at: AT, version: 1, source: 'startup', who: 'startup', reason: 'initial weights', from: {}, to: { flask: 95, fastapi: 5 } }]);
});
