import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { waitFor } from '../support/wait-for';

const ROOT = path.join(__dirname, '../..');
const ENTRY = {
  api: path.join(ROOT, 'dist/apps/api/apps/api/src/main.js'),
  worker: path.join(ROOT, 'dist/apps/worker/apps/worker/src/main.js'),
};

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The api or the worker as production runs it: the built output, in a process of its own. */
export class ProductProcess {
  private child?: ChildProcess;
  private exited?: Promise<ProcessExit>;
  readonly log: string[] = [];

  private constructor(
    readonly kind: 'api' | 'worker',
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  static async start(kind: 'api' | 'worker', env: Record<string, string>): Promise<ProductProcess> {
    const port = await freePort();
    const product = new ProductProcess(kind, port, {
      ...env,
      ...(kind === 'api' ? { PORT: String(port), HOST: '127.0.0.1' } : { WORKER_HEALTH_PORT: String(port), HOST: '127.0.0.1' }),
    });
    await product.start();
    return product;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    const child = spawn(process.execPath, [ENTRY[this.kind]], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const keep = (chunk: Buffer) => {
      this.log.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (this.log.length > 500) this.log.splice(0, this.log.length - 500);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    await waitFor(`${this.kind} on port ${this.port} to answer /health/live`, async () => {
      if (!this.running) throw new Error(`${this.kind} exited: ${this.log.slice(-5).join(' | ')}`);
      const response = await fetch(`${this.url}/health/live`);
      return response.ok;
    }, { timeoutMs: 30000, intervalMs: 100 });
  }

  /** Sends a signal and waits for the process to end. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<ProcessExit> {
    if (!this.running) return this.exited ?? { code: null, signal: null };
    this.child!.kill(signal);
    return this.exited!;
  }

  async restart(): Promise<void> {
    await this.stop('SIGKILL');
    await this.start();
  }

  /** Resident memory, from /proc. */
  rssBytes(): number {
    const status = readFileSync(`/proc/${this.child!.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  }
}
