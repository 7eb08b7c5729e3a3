import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { freePort } from './faults/product-process';
import { TestDatabase } from './support/database';
import { PipelineHarness } from './support/pipeline-harness';
import { waitFor } from './support/wait-for';

const METRICS_TOKEN = 'metrics-token-of-the-test-suite';
const SCRAPE_INTERVAL = '1s';

/** A real Prometheus (Debian's package: `.ci/run` installs it), scraping the test's api and worker with the bearer token. */
class Prometheus {
  private constructor(
    private readonly child: ChildProcess,
    private readonly directory: string,
    readonly url: string,
    readonly log: string[],
  ) {}

  static async start(targets: { api: string; worker: string }): Promise<Prometheus> {
    const directory = mkdtempSync(path.join(tmpdir(), 'msb-prometheus-'));
    const job = (name: string, target: string) => `
  - job_name: ${name}
    scrape_interval: ${SCRAPE_INTERVAL}
    authorization: { type: Bearer, credentials: ${METRICS_TOKEN} }
    static_configs: [{ targets: ['${target}'] }]`;
    writeFileSync(path.join(directory, 'prometheus.yml'), `scrape_configs:${job('api', targets.api)}${job('worker', targets.worker)}\n`);
    const port = await freePort();
    const child = spawn(
      'prometheus',
      [
        `--config.file=${path.join(directory, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(directory, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const log: string[] = [];
    for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (chunk: Buffer) => log.push(chunk.toString()));
    const prometheus = new Prometheus(child, directory, `http://127.0.0.1:${port}`, log);
    await waitFor('Prometheus to be ready', async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited: ${log.join('').slice(-500)}`);
      return (await fetch(`${prometheus.url}/-/ready`)).ok;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    return prometheus;
  }

  /** An instant query's result: one value per series, keyed by the given label. */
  async query(expression: string, by: string): Promise<Record<string, number>> {
    const response = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expression)}`);
    const { data } = (await response.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    return Object.fromEntries(data.result.map((series) => [series.metric[by] ?? '', Number(series.value[1])]));
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    await new Promise((resolve) => (this.child.exitCode !== null ? resolve(undefined) : this.child.once('exit', resolve)));
    rmSync(this.directory, { recursive: true, force: true });
  }
}

/** Listens on a free port of 127.0.0.1: Prometheus scrapes over HTTP, not through inject. */
async function listen(app: NestFastifyApplication): Promise<string> {
  await app.listen(0, '127.0.0.1');
  return `127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
}

describe('metrics, scraped by a real Prometheus (api + worker + PostgreSQL + Redis + local sink + prometheus)', () => {
  const db = new TestDatabase();
  let pipeline: PipelineHarness;
  let prometheus: Prometheus;
  const targets = { api: '', worker: '' };

  beforeAll(async () => {
    pipeline = await PipelineHarness.start(db, { METRICS_TOKEN });
    targets.api = await listen(pipeline.api.app);
    targets.worker = await listen(pipeline.worker.app);
    prometheus = await Prometheus.start(targets);
  });
  afterAll(async () => {
    await prometheus?.stop();
    await pipeline.close();
    await db.close();
  });

  const scrape = (target: string, authorization?: string) =>
    fetch(`http://${target}/metrics`, { headers: authorization === undefined ? {} : { authorization } });

  it('answers /metrics with the token only: 401 without it or with a wrong one, on both processes', async () => {
    for (const target of [targets.api, targets.worker]) {
      for (const authorization of [undefined, 'Bearer wrong-token-of-the-test-suite', `Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString('base64')}`]) {
        const refused = await scrape(target, authorization);
        expect(refused.status).toBe(401);
        expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
      const scraped = await scrape(target, `Bearer ${METRICS_TOKEN}`);
      expect(scraped.status).toBe(200);
      expect(scraped.headers.get('content-type')).toContain('text/plain');
      expect(await scraped.text()).toContain('process_resident_memory_bytes');
    }
  });

  it('counts what the events imply, and Prometheus reads it back: forwarded by type, failed, queue jobs by state', async () => {
    // One event Segment refuses for good: it fails, and so does its job (the dashboard keeps it).
    pipeline.sink.refuseBatchesWith = (event) => (event.properties as { email_id?: string }).email_id === '19421777835146499';
    const body = (type: string, id: string, email: string) => `{"event":"${type}","time":1433103519,"MessageID":${id},"email":"${email}"}`;
    await pipeline.api.postWebhook(`[${body('open', '19421777835146490', 'a@example.com')},${body('open', '19421777835146491', 'b@example.com')},${body('sent', '19421777835146492', 'c@example.com')}]`);
    await pipeline.api.postWebhook(body('click', '19421777835146499', 'refused@example.com'));
    await pipeline.api.postWebhook('{"event":"nonsense","time":1433103519,"email":"x@example.com"}');
    await db.settled(5);

    // Each process is scraped every second: wait until both scrapes after the events are in.
    const read = () =>
      Promise.all([
        prometheus.query('sum by (type) (msb_events_forwarded_total)', 'type'),
        prometheus.query('sum by (reason) (msb_events_failed_total)', 'reason'),
        prometheus.query('sum by (outcome) (msb_events_received_total)', 'outcome'),
        prometheus.query('sum by (type) (msb_events_received_total{outcome="invalid"})', 'type'),
        prometheus.query('sum by (code) (msb_webhook_requests_total)', 'code'),
      ]);
    const [forwarded, failed, received, invalid, requests] = await waitFor(
      'Prometheus to read the counters the events imply',
      async () => {
        const readings = await read();
        return readings[0].open === 2 && readings[2].accepted === 4 && readings[1].rejected === 1 ? readings : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(forwarded).toEqual({ open: 2, sent: 1 });
    expect(failed).toEqual({ rejected: 1 });
    expect(received).toEqual({ accepted: 4, invalid: 1 });
    expect(invalid).toEqual({ unknown: 1 });
    expect(requests).toEqual({ 200: 3 });
    expect(Object.keys(await prometheus.query('sum by (code) (msb_destination_requests_total)', 'code'))).toEqual(expect.arrayContaining(['200', '400']));

    // The queue, as both processes see it: nothing left to run, the refused event's job failed.
    const jobs = await waitFor('Prometheus to read the settled queue', async () => {
      const byState = await prometheus.query('max by (state) (msb_queue_jobs)', 'state');
      return byState.failed === 1 && byState.waiting === 0 && byState.active === 0 ? byState : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    expect(jobs).toEqual({ waiting: 0, active: 0, delayed: 0, prioritized: 0, failed: 1 });
    expect(await prometheus.query('max by (source) (msb_oldest_pending_age_seconds)', 'source')).toEqual({ default: 0 });
    expect(await prometheus.query('count(msb_event_delivery_seconds_count)', '')).toEqual({ '': 1 });
  });

  it('passes promtool check metrics on a scrape of each process', async () => {
    for (const target of [targets.api, targets.worker]) {
      const exposition = await (await scrape(target, `Bearer ${METRICS_TOKEN}`)).text();
      const check = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
      expect({ target, status: check.status, output: `${check.stdout}${check.stderr}`.trim() }).toEqual({ target, status: 0, output: '' });
    }
  });
});
