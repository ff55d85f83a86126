import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { InputError } from './input-error.js';
import { watchFiles, type FilesWatcher } from './watch-files.js';

/** A listener's certificate and private key files (PEM); the certificate file may hold its chain after it. */
export interface KeyPairFiles {
  readonly cert: string;
  readonly key: string;
}

/** A pair that loads: what a TLS server is given, and which certificate it is. */
export interface KeyPair {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The leaf certificate: its subject, its notAfter, its SHA-256 fingerprint. */
  readonly served: { readonly subject: string; readonly notAfter: string; readonly fingerprint: string };
}

/** The pair from its bytes, or an Error saying why it does not load (bad PEM, a key that is not the certificate's). */
export function keyPair(cert: Buffer, key: Buffer): KeyPair {
  // What the server will do with them: it throws on bad PEM and on a mismatched key.
  createSecureContext({ cert, key });
  const leaf = new X509Certificate(cert);
  return { cert, key, served: { subject: leaf.subject, notAfter: new Date(leaf.validTo).toISOString(), fingerprint: leaf.fingerprint256 } };
}

/** What a TLS server is given of a pair. */
export const secureOptions = (pair: KeyPair): { cert: Buffer; key: Buffer } => ({ cert: pair.cert, key: pair.key });

/** The pair on disk, at start-up: one that cannot be read or does not load is an InputError naming the setting. */
export function readKeyPair(files: KeyPairFiles, field: string): KeyPair {
  try {
    return keyPair(readFileSync(files.cert), readFileSync(files.key));
  } catch (err) {
    throw new InputError(`${files.cert} and ${files.key} do not load as a certificate and its key: ${(err as Error).message}`, field);
  }
}

/**
 * Logs the certificate `served` at start, then serves a rotated pair without a restart: each
 * settled change of the files (a cert-manager Secret's `..data` swap, a rename over them) that
 * loads is handed to `use` (a server's setSecureContext: new connections get it, open ones keep
 * theirs) and logged with the certificate it serves; one that does not load is logged and the
 * served pair kept.
 */
export function watchKeyPair(
  files: KeyPairFiles,
  served: KeyPair,
  use: (pair: KeyPair) => void,
  deps: { readonly log: Logger; readonly listener: string },
): FilesWatcher {
  const { log, listener } = deps;
  const fields = { listener, cert: files.cert, key: files.key };
  log.info({ ...fields, ...served.served }, 'TLS certificate served');
  return watchFiles(
    [files.cert, files.key],
    ([cert, key]) => {
      let pair: KeyPair;
      try {
        pair = keyPair(cert!, key!);
      } catch (err) {
        log.error({ ...fields, err: (err as Error).message }, 'TLS certificate change rejected: the pair does not load; keeping the served certificate');
        return;
      }
      use(pair);
      log.info({ ...fields, ...pair.served }, 'TLS certificate reloaded');
    },
    (failure) =>
      failure.kind === 'read'
        ? log.error({ ...fields, err: failure.err.message }, 'TLS certificate change rejected: cannot read it; keeping the served certificate')
        : log.error({ ...fields, dir: failure.dir, err: failure.err.message }, 'cannot watch the TLS certificate for changes; reload is off'),
  );
}
