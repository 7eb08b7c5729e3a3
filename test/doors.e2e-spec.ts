import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createApiApp } from '../apps/api/src/api.app';
import { RawHttpConnection, requestHead } from './support/raw-http';
import { ADMIN_TOKEN, basicAuth, testConfig } from './support/test-env';

const MiB = 1024 * 1024;
const REQUEST_TIMEOUT_MS = 2000;
const callbackHeaders = { 'content-type': 'application/json', authorization: basicAuth() };
const adminBasic = basicAuth('anyone', ADMIN_TOKEN);
const adminBearer = `Bearer ${ADMIN_TOKEN}`;

// A listening api (not inject): what is tested here happens on the socket, before Fastify's routing.
describe('doors that close early (a listening api, default 10 MiB limit)', () => {
  let app: NestFastifyApplication;
  let port: number;
  let url: string;
  const connections: RawHttpConnection[] = [];
  const connect = async () => {
    const connection = await RawHttpConnection.open(port);
    connections.push(connection);
    return connection;
  };

  beforeAll(async () => {
    app = await createApiApp(testConfig({ HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) }));
    await app.listen(0, '127.0.0.1');
    port = (app.getHttpServer().address() as AddressInfo).port;
    url = `http://127.0.0.1:${port}`;
  });
  afterEach(() => connections.splice(0).forEach((connection) => connection.destroy()));
  afterAll(() => app.close());

  describe('credentials are checked before the body is read', () => {
    it.each([
      ['the Mailjet callback', '/webhooks/mailjet', /^Basic /],
      ['the admin API', '/admin/requeue', /^Bearer /],
    ])('%s answers 401 while the 5 MiB body is still unsent, then drops the body', async (_, target, challenge) => {
      const connection = await connect();
      await connection.write(requestHead('POST', target, { 'content-type': 'application/json', 'content-length': 5 * MiB }));
      const refused = await connection.response(0);
      expect(refused.status).toBe(401);
      expect(refused.headers['www-authenticate']).toMatch(challenge);
      await connection.write(Buffer.alloc(5 * MiB, 0x20));
      // The body was read and thrown away: the same connection serves the next request.
      await connection.write(requestHead('GET', '/health/live'));
      expect((await connection.response(1)).status).toBe(200);
    });
  });

  describe('timeouts', () => {
    it('answers 408 and closes a request whose body trickles in, once HTTP_REQUEST_TIMEOUT_MS has passed', async () => {
      const connection = await connect();
      const started = Date.now();
      await connection.write(requestHead('POST', '/webhooks/mailjet', { ...callbackHeaders, 'content-length': 1000 }));
      const trickle = setInterval(() => connection.write('x').catch(() => undefined), 250);
      try {
        const response = await connection.response(0, 15000);
        expect(response.status).toBe(408);
        await connection.closed(2000);
      } finally {
        clearInterval(trickle);
      }
      // Node checks the deadline once a second; a few seconds of slack for a loaded machine.
      expect(Date.now() - started).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
      expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + 4000);
    });

    it('answers 408 and closes a request whose headers trickle in', async () => {
      const connection = await connect();
      const started = Date.now();
      await connection.write('POST /webhooks/mailjet HTTP/1.1\r\nhost: localhost\r\nx-padding: ');
      const trickle = setInterval(() => connection.write('x').catch(() => undefined), 250);
      try {
        expect((await connection.response(0, 15000)).status).toBe(408);
        await connection.closed(2000);
      } finally {
        clearInterval(trickle);
      }
      expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + 4000);
    });

    it('answers 408 and closes a connection on which nothing is sent', async () => {
      const connection = await connect();
      const started = Date.now();
      expect((await connection.response(0, 15000)).status).toBe(408);
      await connection.closed(2000);
      // The headers deadline: 10 s, or HTTP_REQUEST_TIMEOUT_MS if shorter.
      expect(Date.now() - started).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
      expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + 4000);
    });
  });

  describe('a callback over the limit gets a 413 the client can read', () => {
    const body = Buffer.alloc(12 * MiB, 0x20);
    const streamed = () => {
      let sent = 0;
      return new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.enqueue(body.subarray(sent * MiB, (sent + 1) * MiB));
          if (++sent === 12) controller.close();
        },
      });
    };
    let directory: string;
    let file: string;

    beforeAll(() => {
      directory = mkdtempSync(path.join(tmpdir(), 'doors-'));
      file = path.join(directory, 'twelve-mib.json');
      writeFileSync(file, body);
    });
    afterAll(() => rmSync(directory, { recursive: true, force: true }));

    // A reset is a race between the answer and the rest of the upload, which Jest's event loop seldom
    // loses: test/api-process.e2e-spec.ts repeats it against a process of its own.
    it.each([
      ['with its Content-Length', () => body],
      ['streamed (chunked)', streamed],
    ])("by Node's fetch, %s", async (_, bodyOf) => {
      for (let attempt = 0; attempt < 3; attempt++) {
        const response = await fetch(`${url}/webhooks/mailjet`, { method: 'POST', headers: callbackHeaders, body: bodyOf(), duplex: 'half' });
        expect(response.status).toBe(413);
        expect(await response.json()).toMatchObject({ statusCode: 413 });
      }
    });

    it.each([
      ['with Expect: 100-continue', []],
      ['without Expect', ['-H', 'Expect:']],
    ])('by curl, %s', async (_, extra) => {
      for (let attempt = 0; attempt < 3; attempt++) {
        const { stdout } = await promisify(execFile)('curl', [
          '-sS', '-o', '/dev/null', '-w', '%{http_code}', '-u', `mailjet:${testConfig().webhookCredentials.password}`,
          '-H', 'content-type: application/json', ...extra, '--data-binary', `@${file}`, `${url}/webhooks/mailjet`,
        ]);
        expect(stdout).toBe('413');
      }
    });

    it('by a client that writes its whole body before reading, which then sends its next request on the same connection', async () => {
      for (let attempt = 0; attempt < 3; attempt++) {
        const connection = await connect();
        await connection.write(requestHead('POST', '/webhooks/mailjet', { ...callbackHeaders, 'content-length': body.length }));
        await connection.write(body);
        expect((await connection.response(0)).status).toBe(413);
        await connection.write(requestHead('GET', '/health/live'));
        expect((await connection.response(1)).status).toBe(200);
      }
    });

    it('but an upload declared over twice the limit is answered with Connection: close, and closed', async () => {
      const connection = await connect();
      await connection.write(requestHead('POST', '/webhooks/mailjet', { ...callbackHeaders, 'content-length': 25 * MiB }));
      const response = await connection.response(0);
      expect(response.status).toBe(413);
      expect(response.headers.connection).toBe('close');
      await connection.closed(2000);
    });

    it('and a chunked upload that goes on past twice the limit is cut off', async () => {
      const connection = await connect();
      await connection.write(requestHead('POST', '/webhooks/mailjet', { ...callbackHeaders, 'transfer-encoding': 'chunked' }));
      const chunk = Buffer.concat([Buffer.from(`${MiB.toString(16)}\r\n`), Buffer.alloc(MiB, 0x20), Buffer.from('\r\n')]);
      while (connection.written < 100 * MiB && !connection.closedWith) {
        await connection.write(chunk).catch(() => undefined);
      }
      await connection.closed(5000);
      // 10 MiB read, 20 MiB dropped, then closed; what the kernels buffer comes on top.
      expect(connection.written).toBeLessThan(45 * MiB);
    });
  });

  describe('doors: Bearer for the admin API; Basic too, only where a browser must come in', () => {
    const get = (target: string, authorization?: string, headers: Record<string, string> = {}) =>
      fetch(`${url}${target}`, { headers: { ...headers, ...(authorization ? { authorization } : {}) } });

    it.each([
      ['GET', '/admin/status'],
      ['GET', '/admin/events'],
      ['POST', '/admin/events/1/requeue?force=true'],
      ['DELETE', '/admin/identities/a@b.co'],
    ])('%s %s refuses the admin token as a Basic password', async (method, target) => {
      const response = await fetch(`${url}${target}`, { method, headers: { authorization: adminBasic } });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer /);
    });

    it('decides on the route reached, whatever the encoding of the path', async () => {
      expect((await get('/%61dmin/status', adminBasic)).status).toBe(401);
      expect((await get('/%61dmin/status', adminBearer)).status).toBe(200);
    });

    it.each(['/admin/queues', '/admin/queues/api/queues', '/docs', '/docs/swagger-ui-init.js', '/docs-json', '/docs-yaml'])(
      '%s takes the admin token as Basic or Bearer, and nothing else',
      async (target) => {
        for (const authorization of [undefined, basicAuth('anyone', 'wrong'), 'Bearer wrong', basicAuth()]) {
          const refused = await get(target, authorization);
          expect(refused.status).toBe(401);
          expect(refused.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
        }
        expect((await get(target, adminBasic)).status).toBe(200);
        expect((await get(target, adminBearer)).status).toBe(200);
      },
    );

    it('leaves health open', async () => {
      expect((await get('/health/live')).status).toBe(200);
    });

    it.each(['/admin/queues', '/docs'])('serves %s with headers that keep it out of frames and other sites', async (target) => {
      const { headers } = await get(target, adminBasic);
      expect(headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(headers.get('x-frame-options')).toBe('DENY');
      expect(headers.get('x-content-type-options')).toBe('nosniff');
      expect(headers.get('referrer-policy')).toBe('no-referrer');
    });

    it("refuses a cross-site request that rides on the browser's Basic credentials", async () => {
      const resume = (site: string) =>
        fetch(`${url}/admin/queues/api/queues/mailjet-events/resume`, {
          method: 'PUT',
          headers: { authorization: adminBasic, 'sec-fetch-site': site },
        });
      expect((await resume('cross-site')).status).toBe(403);
      expect((await resume('same-origin')).status).toBe(200);
    });
  });
});
