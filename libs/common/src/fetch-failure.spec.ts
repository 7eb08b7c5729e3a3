import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchFailureReason, isFetchTimeout, retryAfterMsOf } from './fetch-failure';

describe('retryAfterMsOf', () => {
  it('reads delay-seconds and HTTP-dates, and ignores anything else', () => {
    expect(retryAfterMsOf('2')).toBe(2000);
    expect(retryAfterMsOf(' 0.5 ')).toBe(500);
    const inTenSeconds = new Date(Date.now() + 10_000).toUTCString();
    expect(retryAfterMsOf(inTenSeconds)).toBeGreaterThan(8000);
    expect(retryAfterMsOf(new Date(Date.now() - 10_000).toUTCString())).toBe(0);
    expect(retryAfterMsOf(null)).toBeUndefined();
    expect(retryAfterMsOf('soon')).toBeUndefined();
  });
});

describe('fetch failures', () => {
  it('tells a timeout from a refused connection, and names the cause', async () => {
    const silent = http.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const timeout = await fetch(`http://127.0.0.1:${port}`, { signal: AbortSignal.timeout(50) }).catch((error: unknown) => error);
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
    expect(isFetchTimeout(timeout)).toBe(true);
    expect(fetchFailureReason(timeout)).not.toMatch(/ECONNREFUSED/);
    // The port just closed: nothing listens there now.
    const refused = await fetch(`http://127.0.0.1:${port}`).catch((error: unknown) => error);
    expect(isFetchTimeout(refused)).toBe(false);
    expect(fetchFailureReason(refused)).toMatch(/ECONNREFUSED/);
  });
});
