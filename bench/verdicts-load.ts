// Steady traffic for the verdict bench: predictions at a fixed rate (open loop: sent on schedule,
// whatever the answers take, so a slow upstream cannot slow the load that judges it), each from
// the next of many client addresses so the split key varies, each answer noted with the
// upstream that served it (X-Drum-Splitter-Upstream).
import { Agent, request } from 'node:http';

/** One answered (or failed) prediction as the client saw it. */
export interface Exchange {
  /** When the answer ended (ms since the epoch). */
  readonly end: number;
  /** The upstream named by the answer's header; '' when there was no answer. */
  readonly upstream: string;
  /** The HTTP status; 0 when the request failed without one. */
  readonly status: number;
  readonly ms: number;
}

const CSV = 'x1,x2,x3\n1,2,3\n4,5,6\n';
const TICK_MS = 5;
const TIMEOUT_MS = 10_000;

/** `count` loopback addresses, 127.0.1.1 onwards, 250 to a /24. */
export const clientAddresses = (count: number): string[] =>
  Array.from({ length: count }, (_, i) => `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`);

export class FixedRateLoad {
  readonly exchanges: Exchange[] = [];
  readonly #agent = new Agent({ keepAlive: true });
  readonly #addresses: string[];
  #timer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #sent = 0;

  constructor(private readonly url: string, private readonly rate: number, clients: number) {
    this.#addresses = clientAddresses(clients);
  }

  start(): void {
    const t0 = performance.now();
    this.#timer = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) * this.rate) / 1000);
      while (this.#sent < due) this.#send(this.#addresses[this.#sent++ % this.#addresses.length]!);
    }, TICK_MS);
  }

  /** Stops sending; resolves once the requests in flight have ended (or after 2 s). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    const deadline = Date.now() + 2000;
    while (this.#inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.#agent.destroy();
  }

  #send(localAddress: string): void {
    const started = performance.now();
    this.#inFlight++;
    let done = false;
    const end = (status: number, upstream: string): void => {
      if (done) return;
      done = true;
      this.#inFlight--;
      this.exchanges.push({ end: Date.now(), upstream, status, ms: performance.now() - started });
    };
    const req = request(this.url, { method: 'POST', agent: this.#agent, localAddress, headers: { 'content-type': 'text/csv' }, timeout: TIMEOUT_MS }, (res) => {
      const upstream = String(res.headers['x-drum-splitter-upstream'] ?? '');
      res.resume();
      res.on('end', () => end(res.statusCode ?? 0, upstream));
      res.on('error', () => end(0, upstream));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => end(0, ''));
    req.end(CSV);
  }
}
