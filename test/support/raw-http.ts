import net from 'node:net';
import { waitFor } from './wait-for';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One HTTP/1.1 connection driven by hand, for what fetch cannot show: headers sent with the body
 * held back, a body trickled byte by byte, the whole body written before reading, and when the
 * server closes the socket.
 */
export class RawHttpConnection {
  private received = Buffer.alloc(0);
  private readonly socket: net.Socket;
  /** Set once the socket is closed, with the error that closed it, if any. */
  closedWith?: { error?: string };
  written = 0;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk) => (this.received = Buffer.concat([this.received, chunk])));
    socket.on('error', (error: NodeJS.ErrnoException) => (this.closedWith = { error: error.code ?? error.message }));
    socket.on('close', () => (this.closedWith ??= {}));
  }

  static async open(port: number): Promise<RawHttpConnection> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawHttpConnection(socket);
  }

  /** Resolves once the kernel took the data; rejects if the server closed the connection. */
  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(data, (error) => {
        if (error) return reject(error);
        this.written += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
        resolve();
      }),
    );
  }

  /** Every complete response received so far (a 100 Continue is skipped). */
  responses(): RawResponse[] {
    const responses: RawResponse[] = [];
    let rest = this.received.toString('latin1');
    for (;;) {
      const end = rest.indexOf('\r\n\r\n');
      if (end === -1) return responses;
      const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
      const headers = Object.fromEntries(
        lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
      );
      const length = Number(headers['content-length'] ?? 0);
      if (rest.length < end + 4 + length) return responses;
      const status = Number(statusLine.split(' ')[1]);
      if (status !== 100) responses.push({ status, headers, body: rest.slice(end + 4, end + 4 + length) });
      rest = rest.slice(end + 4 + length);
    }
  }

  async response(index = 0, timeoutMs = 5000): Promise<RawResponse> {
    return waitFor(`response ${index} (received so far: ${JSON.stringify(this.received.toString('latin1').slice(0, 80))})`, () => this.responses()[index], {
      timeoutMs,
      intervalMs: 10,
    });
  }

  async closed(timeoutMs: number): Promise<{ error?: string }> {
    return waitFor('the server to close the connection', () => this.closedWith, { timeoutMs, intervalMs: 20 });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function requestHead(
  method: string,
  path: string,
  headers: Record<string, string | number> = {},
): string {
  const lines = Object.entries({ host: 'localhost', ...headers }).map(([name, value]) => `${name}: ${value}`);
  return `${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}
