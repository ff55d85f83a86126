// How far below undici an HTTP client could take a Node proxy: node:http in, and out a hand-rolled
// keep-alive client that writes each request (its body read whole first: this bench's is 26 bytes)
// with one socket write and reads only what this bench's upstream sends (a status line, headers, a
// Content-Length body). No streaming, no chunked responses, no timeouts, no errors handled, no
// header filtering: not a proxy anyone should run, only the lower bound on what replacing undici
// could buy (see the README's Performance section).
// Usage: node dist/bench/minimal-proxy.js PORT UPSTREAM_URL
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';

const [port, upstream] = [Number(process.argv[2]), process.argv[3]];
if (!port || !upstream) {
  process.stderr.write('usage: minimal-proxy.js PORT UPSTREAM_URL\n');
  process.exit(2);
}
const target = new URL(upstream);
const HEADER_END = Buffer.from('\r\n\r\n');

/** One upstream connection, answering one request at a time. */
class Connection {
  private readonly socket: Socket;
  private pending: Buffer = Buffer.alloc(0);
  private res: ServerResponse | undefined;
  private bodyLeft = -1;

  constructor(private readonly release: (c: Connection) => void) {
    this.socket = connect(Number(target.port), target.hostname);
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  send(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    this.res = res;
    let head = `${req.method} ${req.url} HTTP/1.1\r\nHost: ${target.host}\r\n`;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (name !== 'host' && name !== 'connection' && name !== 'content-length') head += `${raw[i]}: ${raw[i + 1]}\r\n`;
    }
    this.socket.write(Buffer.concat([Buffer.from(`${head}Content-Length: ${body.length}\r\n\r\n`, 'latin1'), body]));
  }

  private onData(chunk: Buffer): void {
    const res = this.res!;
    if (this.bodyLeft < 0) {
      this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
      const end = this.pending.indexOf(HEADER_END);
      if (end < 0) return;
      const lines = this.pending.toString('latin1', 0, end).split('\r\n');
      const headers: string[] = [];
      let length = 0;
      for (let i = 1; i < lines.length; i++) {
        const colon = lines[i]!.indexOf(':');
        const name = lines[i]!.slice(0, colon);
        const value = lines[i]!.slice(colon + 1).trim();
        if (name.toLowerCase() === 'content-length') length = Number(value);
        else if (name.toLowerCase() !== 'connection') headers.push(name, value);
      }
      res.writeHead(Number(lines[0]!.slice(9, 12)), headers);
      chunk = this.pending.subarray(end + 4);
      this.pending = Buffer.alloc(0);
      this.bodyLeft = length;
    }
    this.bodyLeft -= chunk.length;
    if (this.bodyLeft > 0) {
      res.write(chunk);
      return;
    }
    res.end(chunk);
    this.bodyLeft = -1;
    this.res = undefined;
    this.release(this);
  }
}

const idle: Connection[] = [];
const release = (c: Connection): void => void idle.push(c);

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => (idle.pop() ?? new Connection(release)).send(req, Buffer.concat(chunks), res));
}).listen(port, '127.0.0.1');
// No SIGTERM handler: the default (exit at once) is what the bench wants.
