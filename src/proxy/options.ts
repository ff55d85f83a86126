import type { RecordSettings } from '../record/policy.js';
import type { Share } from '../weights/shares.js';
import type { SplitHash } from './split.js';
import type { KeyPairFiles } from '../common/tls.js';
import type { FallbackMode } from './fallback.js';
import type { RouteRule } from '../weights/routes.js';

export interface Upstream {
  readonly name: string;
  readonly url: URL;
  /** Read the whole request body before connecting (nginx's proxy_request_buffering). */
  readonly requestBuffering: boolean;
  /** Take the answer as fast as the upstream sends it, holding it for a slow client (proxy_buffering). */
  readonly responseBuffering: boolean;
  /** A PEM file of the CAs its https certificate must chain to; undefined: the system's trust (Node's roots, NODE_EXTRA_CA_CERTS). */
  readonly ca: string | undefined;
}

/** Where bodies wait: per exchange and direction, this much in memory, the rest in a temp file in `dir`. */
export interface BufferConfig {
  readonly memory: number;
  readonly dir: string;
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** What the traffic side needs of the configuration. */
export interface ProxyConfig {
  readonly listen: HostPort;
  /** The traffic listener's certificate and key; undefined: plain HTTP. */
  readonly tls: KeyPairFiles | undefined;
  /** In the order given; the first is the baseline, which takes whatever the weights leave. */
  readonly upstreams: readonly Upstream[];
  /** Listed shares in hundredths of a percent, in the order given (the split_clients lines). */
  readonly weights: readonly Share[];
  /** Cohort rules, checked in order before the split: the config's at start. */
  readonly routes: readonly RouteRule[];
  readonly key: string;
  /** How the key picks its upstream: nginx's murmur2 split_clients, or the seed's md5 % 100. */
  readonly splitHash: SplitHash;
  /** Take $remote_addr from the last X-Forwarded-For entry, like nginx's realip module. */
  readonly trustProxy: boolean;
  /** Add X-Drum-Splitter-Upstream to every response. */
  readonly upstreamHeader: boolean;
  /** Request header that forces a named upstream; undefined = off. */
  readonly overrideHeader: string | undefined;
  /** What a request an upstream other than the baseline failed may do: go to the baseline (fallback.ts). */
  readonly fallback: FallbackMode;
  /** How long an upstream may take to send response headers, or between body chunks. */
  readonly timeoutMs: number;
  /** Largest request body accepted, in bytes. */
  readonly bodyLimit: number;
  readonly buffer: BufferConfig;
  /** How long shutdown waits for requests in flight before cutting them. */
  readonly drainTimeoutMs: number;
  /** How long an idle upstream connection is kept; below the upstream's own keep-alive timeout. */
  readonly upstreamKeepAliveMs: number;
  readonly accessLog: boolean;
  /** Also answer GET /metrics on the traffic port (it then shadows an upstream's /metrics). */
  readonly metricsOnTraffic: boolean;
  readonly record: RecordSettings;
}
