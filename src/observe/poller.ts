import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import { Subscribers } from '../common/subscribers.js';
import { drumMemory, getStatus, memoryMb, MiB, readIdentity, readMemInfo, type Backend, type DrumMemory } from './health.js';
import type { Metrics } from './metrics.js';


/** DRUM's /stats/ memory fields (reported in MB) and the `type` label each becomes. */
const MEMORY_FIELDS = [['drum_rss', 'rss'], ['container_used', 'container_used']] as const;

/**
 * One poll of one upstream: whether it answered /ping, what /stats/ said (undefined: no usable
 * /stats/), or which server and model /info/ names (undefined: no usable /info/).
 */
export type PollSample =
  | { readonly upstream: string; readonly at: number; readonly kind: 'ping'; readonly answered: boolean }
  | { readonly upstream: string; readonly at: number; readonly kind: 'stats'; readonly memory: DrumMemory | undefined }
  | { readonly upstream: string; readonly at: number; readonly kind: 'info'; readonly identity: string | undefined };

export interface PollerOptions {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Milliseconds, for the down-time gauge; injected so a test can drive the clock. */
  readonly now: () => number;
  readonly log: Logger;
}

/**
 * Polls every upstream's GET /ping (health), DRUM's GET /stats/ (memory) and GET /info/ (which
 * server and model answer: the rollout restarts a hold when the canary's changes) and exports
 * drum_upstream_up, drum_upstream_down_seconds and drum_memory_bytes — the seed's
 * "no response to /ping > 30 s" and memory triggers read these. An upstream without a usable
 * /stats/ (not DRUM) simply has no memory series, and is logged once.
 */
export class UpstreamPoller {
  readonly #backends: readonly Backend[];
  readonly #up: Gauge<'server_type'>;
  readonly #memory: Gauge<'server_type' | 'type'>;
  /** When each upstream last answered /ping (ms); the start time until it first does. */
  readonly #lastAnswered = new Map<string, number>();
  readonly #answering = new Set<string>();
  readonly #noStats = new Set<string>();
  readonly #listeners: Subscribers<PollSample>;
  #timer: NodeJS.Timeout | undefined;

  constructor(backends: Iterable<Backend>, metrics: Metrics, private readonly opts: PollerOptions) {
    this.#backends = [...backends];
    // A listener's fault must not stop the polling (pollAll's promise is not awaited): Subscribers logs and counts it.
    this.#listeners = new Subscribers('polls', { log: opts.log, errors: metrics.subscriberErrors, now: opts.now });
    const started = opts.now();
    for (const b of this.#backends) this.#lastAnswered.set(b.name, started);
    const registers = [metrics.registry];
    this.#up = new Gauge({ name: 'drum_upstream_up', help: 'Whether the upstream answered its last GET /ping (1) or not (0).', labelNames: ['server_type'], registers });
    this.#memory = new Gauge({ name: 'drum_memory_bytes', help: "The upstream's memory from DRUM's /stats/ (type rss or container_used).", labelNames: ['server_type', 'type'], registers });
    const { lastAnswered, answering } = { lastAnswered: this.#lastAnswered, answering: this.#answering };
    new Gauge({
      name: 'drum_upstream_down_seconds',
      help: 'Seconds since the upstream last answered GET /ping; 0 while it answers.',
      labelNames: ['server_type'],
      registers,
      collect() {
        const now = opts.now();
        for (const [name, at] of lastAnswered) this.set({ server_type: name }, answering.has(name) ? 0 : (now - at) / 1000);
      },
    });
  }

  start(): void {
    void this.pollAll();
    this.#timer = setInterval(() => void this.pollAll(), this.opts.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Hears every poll's result (the rollout's watchdog does); returns the function that unsubscribes. */
  subscribe(name: string, listener: (sample: PollSample) => void): () => void {
    return this.#listeners.subscribe(name, listener);
  }

  /** How long `upstream` (one of the polled) has not answered /ping, in ms (since the start if never); 0 while it answers. */
  downMs(upstream: string): number {
    return this.#answering.has(upstream) ? 0 : this.opts.now() - this.#lastAnswered.get(upstream)!;
  }


  /** One round over every upstream; resolves when all answered or timed out. */
  async pollAll(): Promise<void> {
    await Promise.all(this.#backends.map((b) => Promise.all([this.#ping(b), this.#stats(b), this.#info(b)])));
  }

  async #ping(b: Backend): Promise<void> {
    let answered = false;
    try {
      answered = (await getStatus(b, '/ping', this.opts.timeoutMs)) < 500;
    } catch {
      // refused, reset or timed out: down
    }
    this.#up.set({ server_type: b.name }, answered ? 1 : 0);
    if (answered) {
      this.#answering.add(b.name);
      this.#lastAnswered.set(b.name, this.opts.now());
    } else {
      this.#answering.delete(b.name);
    }
    this.#listeners.publish({ upstream: b.name, at: this.opts.now(), kind: 'ping', answered });
  }

  async #stats(b: Backend): Promise<void> {
    const mem = await readMemInfo(b, this.opts.timeoutMs);
    for (const [field, type] of MEMORY_FIELDS) {
      const mb = memoryMb(mem, field);
      if (mb !== undefined) this.#memory.set({ server_type: b.name, type }, mb * MiB);
      else this.#memory.remove({ server_type: b.name, type });
    }
    const memory = drumMemory(mem);
    if (memory === undefined && !this.#noStats.has(b.name)) {
      this.#noStats.add(b.name);
      this.opts.log.info({ upstream: b.name }, 'no DRUM /stats/ memory from this upstream; drum_memory_bytes has no series for it');
    } else if (memory !== undefined) {
      this.#noStats.delete(b.name);
    }
    this.#listeners.publish({ upstream: b.name, at: this.opts.now(), kind: 'stats', memory });
  }

  async #info(b: Backend): Promise<void> {
    const identity = await readIdentity(b, this.opts.timeoutMs);
    this.#listeners.publish({ upstream: b.name, at: this.opts.now(), kind: 'info', identity });
  }
}
