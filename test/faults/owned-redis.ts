import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import IORedis from 'ioredis';
import { waitFor } from '../support/wait-for';
import { freePort } from './product-process';

/**
 * A redis-server of the suite's own (the machine's binary), with no persistence at all: killed and
 * started again, it comes back empty, as a Redis restarted without its append-only file, or a
 * replica promoted before it caught up, does. The machine's shared Redis is never touched.
 */
export class OwnedRedis {
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private readonly log: string[] = [];
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), 'fault-redis-'));
  port = 0;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts it, on the port it had before if it had one. */
  async start(): Promise<this> {
    this.port ||= await freePort();
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const keep = (chunk: Buffer) => this.log.push(...chunk.toString('utf8').split('\n').filter(Boolean).slice(-20));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('error', (error) => this.log.push(`cannot start redis-server: ${error.message}`));
    await waitFor(`redis-server on port ${this.port} to answer PING`, async () => {
      if (child.exitCode !== null || child.signalCode !== null || this.log.some((line) => line.startsWith('cannot start'))) {
        throw new Error(`redis-server exited: ${this.log.slice(-3).join(' | ')}`);
      }
      return (await this.command((redis) => redis.ping())) === 'PONG';
    }, { timeoutMs: 10000, intervalMs: 50 });
    return this;
  }

  /** Number of keys: 0 right after a restart. */
  async keyCount(): Promise<number> {
    return this.command((redis) => redis.dbsize());
  }

  /** SIGKILL, then a fresh process on the same port: every key is gone. */
  async restartEmpty(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async kill(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async command<T>(run: (redis: IORedis) => Promise<T>): Promise<T> {
    const redis = new IORedis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await redis.connect();
      return await run(redis);
    } finally {
      redis.disconnect();
    }
  }
}
