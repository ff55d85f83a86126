import type { EventEmitter } from 'node:events';
import { fchmodSync, fstatSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Logger } from 'pino';

/**
 * What the project writes (recordings, the shadow log, state, reports) holds real requests and
 * answers or the audit trail: owner-only.
 */
export const PRIVATE = 0o600;

/**
 * Makes an open file 0600 if it is a regular file that is not: opening an existing file keeps its
 * mode, whatever mode the open asked for, so a 0644 file left by someone else would stay readable
 * by all. Anything else (/dev/stdout, a pipe) is left alone. Returns why it could not (a file of
 * another user), for the caller to say; the file is still written.
 */
export function makePrivate(fd: number, path: string): string | undefined {
  const stats = fstatSync(fd);
  const mode = stats.mode & 0o777;
  if (!stats.isFile() || mode === PRIVATE) return undefined;
  try {
    fchmodSync(fd, PRIVATE);
    return undefined;
  } catch (err) {
    return `${path} cannot be made private (0600): ${(err as NodeJS.ErrnoException).code}; it stays 0${mode.toString(8)}`;
  }
}

/** The same for a sonic-boom's file, once it is open and before its first write; a failure is logged. */
export function privateOnOpen(boom: EventEmitter, path: string, log: Logger): void {
  // sonic-boom says 'ready' with its descriptor set, then starts writing what was queued.
  boom.on('ready', () => {
    const why = makePrivate((boom as unknown as { fd: number }).fd, path);
    if (why !== undefined) log.warn({ file: path }, why);
  });
}

/** Writes a whole file, private; `warn` hears why it could not be made so. */
export async function writePrivate(path: string, text: string, warn: (line: string) => void): Promise<void> {
  const file = await open(path, 'w', PRIVATE);
  try {
    const why = makePrivate(file.fd, path);
    if (why !== undefined) warn(why);
    await file.writeFile(text);
  } finally {
    await file.close();
  }
}
