import { randomBytes } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/** A spill file failed (the buffer directory full or gone): the proxy's own fault, nobody else's. */
export class BufferFailed extends Error {
  override readonly name = 'BufferFailed';
}

/** Runs a file operation, turning its failure into a BufferFailed that names the directory. */
async function guarded<T>(dir: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw new BufferFailed(`cannot buffer in ${dir}: ${(err as Error).message}`);
  }
}

/**
 * A temporary file used as a byte queue: bytes appended at the end, read back from the front
 * in order. Request bodies and answers for slow clients overflow into one of these once they
 * pass their memory share, as nginx's proxy_temp_path files do. The file is created 0600 in
 * `dir` and removed by close(); a crash can leave it behind (named drum-splitter-*.spill).
 */
export class SpillFile {
  /** Bytes appended so far (including appends still on their way to the disk). */
  size = 0;
  /** Bytes read back so far. */
  #read = 0;
  /** Bytes the disk has taken: reads never pass this. */
  #written = 0;
  /** Appends run one after another, so the file grows in the order of the calls. */
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(
    readonly path: string,
    private readonly dir: string,
    private readonly file: FileHandle,
  ) {}

  static async create(dir: string): Promise<SpillFile> {
    const path = join(dir, `drum-splitter-${process.pid}-${randomBytes(6).toString('hex')}.spill`);
    // wx: never reuse or follow an existing name.
    return new SpillFile(path, dir, await guarded(dir, () => open(path, 'wx+', 0o600)));
  }

  /** Bytes appended but not read back. */
  get pending(): number {
    return this.size - this.#read;
  }

  /** Queues `chunk` at the end; resolves once it is on disk (rejects if the write failed). */
  append(chunk: Buffer): Promise<void> {
    const at = this.size;
    this.size += chunk.length;
    const done = this.#writing.then(() =>
      guarded(this.dir, async () => {
        let off = 0;
        while (off < chunk.length) off += (await this.file.write(chunk, off, chunk.length - off, at + off)).bytesWritten;
        this.#written = at + chunk.length;
      }),
    );
    // A failed append fails every later one too: the file has a hole.
    this.#writing = done;
    return done;
  }

  /** Up to `max` bytes from the front, once they are on disk; null when nothing is pending. */
  async read(max: number): Promise<Buffer | null> {
    const buf = await this.readAt(this.#read, max);
    if (buf !== null) this.#read += buf.length;
    return buf;
  }

  /**
   * Up to `max` bytes from `position`, once they are on disk; null past the end. The front of
   * the queue stays where it is: a request body is read back this way, as often as it is sent.
   */
  async readAt(position: number, max: number): Promise<Buffer | null> {
    if (position >= this.size) return null;
    if (this.#written <= position) await this.#writing;
    const n = Math.min(max, this.#written - position);
    const buf = Buffer.allocUnsafe(n);
    await guarded(this.dir, async () => {
      let got = 0;
      while (got < n) {
        const { bytesRead } = await this.file.read(buf, got, n - got, position + got);
        // The file shrank under us (someone truncated it): the bytes are gone.
        if (bytesRead === 0) throw new Error(`spill file ${this.path} is shorter than what was written to it`);
        got += bytesRead;
      }
    });
    return buf;
  }

  /** Closes and removes the file; safe to call more than once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writing.catch(() => {});
    await this.file.close().catch(() => {});
    await unlink(this.path).catch(() => {});
  }
}
