import { ConfigurationError, loadEnvironment } from './environment';

describe('loadEnvironment', () => {
  it('applies the defaults of the specification', () => {
    const environment = loadEnvironment({}, []);
    expect(environment).toMatchObject({
      DATABASE_URL: 'postgresql://postgres@localhost:5432/mailjet_segment',
      REDIS_URL: 'redis://localhost:6379',
      PORT: 3000,
      HOST: '0.0.0.0',
      WORKER_HEALTH_PORT: 3001,
      SEGMENT_HOST: 'https://api.segment.io',
      SEGMENT_MAX_ATTEMPTS: 10,
      SEGMENT_BACKOFF_MS: 1000,
      WORKER_CONCURRENCY: 50,
      USER_ID_PAYLOAD_KEY: 'userId',
      WEBHOOK_MAX_BODY_BYTES: 10 * 1024 * 1024,
      HTTP_REQUEST_TIMEOUT_MS: 60000,
    });
  });

  it('names every missing required variable in one line', () => {
    expect(() => loadEnvironment({ ADMIN_TOKEN: 'sixteen-chars-ok' }, ['MAILJET_WEBHOOK_USER', 'ADMIN_TOKEN', 'SEGMENT_WRITE_KEY'])).toThrow(
      /^invalid configuration: SEGMENT_WRITE_KEY is required but not set; MAILJET_WEBHOOK_USER is required but not set$/,
    );
  });

  it('rejects malformed values by name without echoing them', () => {
    let error: Error | undefined;
    try {
      loadEnvironment({ PORT: 'eighty', SEGMENT_HOST: 'secret-value-host', WORKER_CONCURRENCY: '0' }, []);
    } catch (caught) {
      error = caught as Error;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error!.message).toMatch(/PORT/);
    expect(error!.message).toMatch(/SEGMENT_HOST/);
    expect(error!.message).toMatch(/WORKER_CONCURRENCY/);
    expect(error!.message).not.toContain('secret-value-host');
    expect(error!.message).not.toContain('\n');
  });

  it.each(['MAILJET_WEBHOOK_PASSWORD', 'ADMIN_TOKEN'])('refuses a %s shorter than 16 characters, naming it and not its value', (name) => {
    const short = 'fifteen-chars!!';
    let error: Error | undefined;
    try {
      loadEnvironment({ [name]: short }, [name as 'ADMIN_TOKEN']);
    } catch (caught) {
      error = caught as Error;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error!.message).toBe(`invalid configuration: ${name}: ${name} must be at least 16 characters (openssl rand -hex 16)`);
    expect(error!.message).not.toContain(short);
    expect(loadEnvironment({ [name]: `${short}!` }, [name as 'ADMIN_TOKEN'])[name as 'ADMIN_TOKEN']).toBe(`${short}!`);
  });

  it('takes a Segment write key of any length: Segment issues it', () => {
    expect(loadEnvironment({ SEGMENT_WRITE_KEY: 'short' }, ['SEGMENT_WRITE_KEY']).SEGMENT_WRITE_KEY).toBe('short');
  });

  it('bounds the request timeout', () => {
    expect(() => loadEnvironment({ HTTP_REQUEST_TIMEOUT_MS: '999' }, [])).toThrow(/HTTP_REQUEST_TIMEOUT_MS/);
    expect(loadEnvironment({ HTTP_REQUEST_TIMEOUT_MS: '120000' }, []).HTTP_REQUEST_TIMEOUT_MS).toBe(120000);
  });

  it('keeps events forever unless EVENT_RETENTION_DAYS says otherwise, a whole number of days from 1', () => {
    expect(loadEnvironment({}, []).EVENT_RETENTION_DAYS).toBeUndefined();
    expect(loadEnvironment({ EVENT_RETENTION_DAYS: '' }, []).EVENT_RETENTION_DAYS).toBeUndefined();
    expect(loadEnvironment({ EVENT_RETENTION_DAYS: '90' }, []).EVENT_RETENTION_DAYS).toBe(90);
    for (const wrong of ['0', '-5', '1.5', 'ninety', '36501']) {
      expect(() => loadEnvironment({ EVENT_RETENTION_DAYS: wrong }, [])).toThrow(/^invalid configuration: EVENT_RETENTION_DAYS: /);
    }
  });

  it('sizes the PostgreSQL pool from DATABASE_POOL_SIZE, 20 unless told, from 2', () => {
    expect(loadEnvironment({}, []).DATABASE_POOL_SIZE).toBe(20);
    expect(loadEnvironment({ DATABASE_POOL_SIZE: '8' }, []).DATABASE_POOL_SIZE).toBe(8);
    for (const wrong of ['0', '1', 'ten', '2.5', '501']) {
      expect(() => loadEnvironment({ DATABASE_POOL_SIZE: wrong }, [])).toThrow(/^invalid configuration: DATABASE_POOL_SIZE: /);
    }
  });

  it('refuses a SEGMENT_HOST with credentials, a query or a fragment, without echoing it; keeps a path', () => {
    for (const wrong of ['https://user:hunter2-secret@api.segment.io', 'https://api.segment.io/?key=1', 'https://api.segment.io#x', 'api.segment.io']) {
      let error: Error | undefined;
      try {
        loadEnvironment({ SEGMENT_HOST: wrong }, []);
      } catch (caught) {
        error = caught as Error;
      }
      expect(error?.message).toBe('invalid configuration: SEGMENT_HOST: SEGMENT_HOST must be an http(s):// URL without credentials, query or fragment');
    }
    expect(loadEnvironment({ SEGMENT_HOST: 'https://hosted.rudderlabs.com/data-plane/' }, []).SEGMENT_HOST).toBe('https://hosted.rudderlabs.com/data-plane/');
    expect(loadEnvironment({ SEGMENT_HOST: 'http://127.0.0.1:4000' }, []).SEGMENT_HOST).toBe('http://127.0.0.1:4000');
  });

  it('reads numbers from their text', () => {
    expect(loadEnvironment({ PORT: '8080', SEGMENT_MAX_ATTEMPTS: '3' }, [])).toMatchObject({ PORT: 8080, SEGMENT_MAX_ATTEMPTS: 3 });
  });
});
