import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from './faults/product-process';
import { RawHttpConnection, requestHead } from './support/raw-http';
import { Pool } from 'pg';
import { SecretBox } from '@app/sources';
import { ADMIN_TOKEN, basicAuth, SECRETS_KEY, TEST_DATABASE_URL, TEST_REDIS_URL, WEBHOOK_PASSWORD, WEBHOOK_USER } from './support/test-env';
import { waitFor } from './support/wait-for';

// The built output (`npm test` builds it first; alone: `npx nest build api`), started as production starts it.
const API_ENTRY = path.join(__dirname, '../dist/apps/api/apps/api/src/main.js');
const MiB = 1024 * 1024;

const environment = (overrides: Record<string, string> = {}): Record<string, string> => ({
  DATABASE_URL: TEST_DATABASE_URL,
  REDIS_URL: TEST_REDIS_URL,
  MAILJET_WEBHOOK_USER: WEBHOOK_USER,
  MAILJET_WEBHOOK_PASSWORD: WEBHOOK_PASSWORD,
  ADMIN_TOKEN,
  // Sources that other test files left in the database hold secrets sealed with it.
  SECRETS_KEY,
  QUEUE_PREFIX: `test-${randomBytes(4).toString('hex')}`,
  HOST: '127.0.0.1',
  ...overrides,
});

/** The api in a process of its own, every line it writes to stdout and stderr kept whole. */
class ApiProcess {
  readonly lines: string[] = [];

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', (line) => this.lines.push(line));
  }

  static async start(overrides: Record<string, string> = {}): Promise<ApiProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, [API_ENTRY], {
      env: { ...process.env, ...environment({ PORT: String(port), ...overrides }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const api = new ApiProcess(child, port);
    await waitFor('the api to answer /health/live', async () => {
      if (child.exitCode !== null) throw new Error(`api exited: ${api.lines.slice(-3).join(' | ')}`);
      return (await fetch(`http://127.0.0.1:${port}/health/live`)).ok;
    }, { timeoutMs: 30000, intervalMs: 100 });
    return api;
  }

  rssBytes(): number {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.child.pid}/status`, 'utf8'))![1]) * 1024;
  }

  notJson(): string[] {
    return this.lines.filter((line) => {
      try {
        return typeof JSON.parse(line) !== 'object';
      } catch {
        return true;
      }
    });
  }

  entries(): Array<{ level: string; message: unknown; context?: string }> {
    return this.lines.map((line) => JSON.parse(line));
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }
}

describe('the built api, as a process', () => {
  const running: ApiProcess[] = [];
  const start = async (overrides: Record<string, string> = {}) => {
    const api = await ApiProcess.start(overrides);
    running.push(api);
    return api;
  };
  afterEach(async () => {
    for (const api of running.splice(0)) await api.kill();
  });

  it.each(['ADMIN_TOKEN', 'MAILJET_WEBHOOK_PASSWORD'])('refuses to start with a %s shorter than 16 characters, naming it, not its value', (name) => {
    const value = 'fifteen-chars!!';
    expect(value).toHaveLength(15);
    const result = spawnSync(process.execPath, [API_ENTRY], {
      env: { ...process.env, ...environment({ PORT: '0', [name]: value }) },
      encoding: 'utf8',
      timeout: 20000,
    });
    expect(result.status).toBe(1);
    const lines = `${result.stdout}${result.stderr}`.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ level: 'fatal', message: expect.stringContaining(`${name} must be at least 16 characters`) });
    expect(lines[0]).not.toContain(value);
  });

  describe('with a source whose secrets are stored encrypted', () => {
    const db = new Pool({ connectionString: TEST_DATABASE_URL, max: 1 });
    const slug = `keycheck${randomBytes(4).toString('hex')}`;
    beforeAll(async () => {
      const box = new SecretBox(Buffer.from(SECRETS_KEY, 'hex'));
      await db.query(
        `insert into sources (slug, name, destination_preset, destination_host, destination_write_key, webhook_user, webhook_password)
         values ($1, 'key check', 'segment-us', 'https://api.segment.io', $2, 'mailjet', $3)`,
        [slug, box.seal('a-write-key', 'destination_write_key'), box.seal('a-webhook-password', 'webhook_password')],
      );
    });
    afterAll(async () => {
      await db.query('delete from sources where slug = $1', [slug]);
      await db.end();
    });

    it.each([
      // Another test file's sources may come first: any source's secrets stop it.
      ['without SECRETS_KEY', undefined, /^SECRETS_KEY is required: source "[a-z0-9]+" holds secrets encrypted with it/],
      ['with another SECRETS_KEY', 'ff'.repeat(32), /^SECRETS_KEY does not open the \w+ of source "[a-z0-9]+": it is not the key/],
    ])('refuses to start %s, in one line naming the variable', (_, secretsKey, message) => {
      const { SECRETS_KEY: _ignored, ...env } = { ...process.env, ...environment({ PORT: '0' }) };
      const result = spawnSync(process.execPath, [API_ENTRY], {
        env: secretsKey === undefined ? env : { ...env, SECRETS_KEY: secretsKey },
        encoding: 'utf8',
        timeout: 20000,
      });
      expect(result.status).toBe(1);
      const fatal = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.includes('"fatal"'));
      expect(fatal).toHaveLength(1);
      expect(JSON.parse(fatal[0]).message).toMatch(message);
      expect(`${result.stdout}${result.stderr}`).not.toContain('a-write-key');
    });
  });

  it('writes nothing but JSON lines while Redis is down and a client aborts an upload; the abort at debug only', async () => {
    const api = await start({ REDIS_URL: `redis://127.0.0.1:${await freePort()}`, LOG_LEVEL: 'debug' });
    const connection = await RawHttpConnection.open(api.port);
    await connection.write(
      requestHead('POST', '/webhooks/mailjet', { authorization: basicAuth(), 'content-type': 'application/json', 'content-length': MiB }),
    );
    await connection.write('[{"event": "open", "email": ');
    connection.destroy();
    await waitFor('the abort to be logged', () => api.lines.some((line) => line.includes('went away')));
    // ioredis retries about once a second: several failed attempts.
    await waitFor('three failed reconnections', () => api.lines.filter((line) => line.includes('still unreachable')).length >= 3);

    expect(api.notJson()).toEqual([]);
    const entries = api.entries();
    expect(entries.filter((entry) => /went away|aborted/.test(JSON.stringify(entry))).map((entry) => entry.level)).toEqual(['debug']);
    expect(entries.filter((entry) => entry.level === 'warn' && /Redis unreachable/.test(String(entry.message)))).toHaveLength(1);
    expect(entries.filter((entry) => entry.level === 'error' || entry.level === 'fatal')).toEqual([]);
  });

  // In another process, as in production: within Jest's own event loop the race below never shows.
  it("answers a 12 MiB callback with a 413 that Node's fetch reads, not a reset", async () => {
    const api = await start();
    const body = Buffer.alloc(12 * MiB, 0x20);
    const outcomes: string[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      const outcome = await fetch(`http://127.0.0.1:${api.port}/webhooks/mailjet`, {
        method: 'POST',
        headers: { authorization: basicAuth(), 'content-type': 'application/json' },
        body,
      }).then(
        (response) => String(response.status),
        (error: Error) => `${error.message}: ${(error.cause as Error | undefined)?.message}`,
      );
      outcomes.push(outcome);
    }
    expect(outcomes).toEqual(Array(20).fill('413'));
  });

  it('answers 20 callbacks of 5 MiB without credentials at once without holding their bodies', async () => {
    const api = await start();
    const body = Buffer.alloc(5 * MiB, 0x20);
    // A first refused callback, so that what the first request of a process sets up is not counted.
    const warmUp = await fetch(`http://127.0.0.1:${api.port}/webhooks/mailjet`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(warmUp.status).toBe(401);
    const before = api.rssBytes();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, api.rssBytes())), 10);
    try {
      const connections = await Promise.all(Array.from({ length: 20 }, () => RawHttpConnection.open(api.port)));
      // Headers and body at full speed: an api that read bodies before checking credentials would hold all of them.
      const uploads = connections.map(async (connection) => {
        await connection.write(requestHead('POST', '/webhooks/mailjet', { 'content-type': 'application/json', 'content-length': body.length }));
        await connection.write(body);
      });
      const answers = await Promise.all(connections.map((connection) => connection.response(0, 30000)));
      expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(401));
      await Promise.all(uploads);
      connections.forEach((connection) => connection.destroy());
    } finally {
      clearInterval(sampler);
    }
    // The bodies come to 100 MiB; dropping them as they come leaves garbage for the collector, no more.
    // Measured: about 30 MiB with the bodies dropped as they come, 170 MiB when they were read first.
    expect(peak - before).toBeLessThan(64 * MiB);
  });
});
