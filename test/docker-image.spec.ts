import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { Environment } from '@app/config';

// Docker cannot run on the build machines, so the compose file's wiring is checked as data.
interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

const root = path.join(__dirname, '..');
const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const { services } = compose;
const packageScripts = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts as Record<string, string>;

describe('docker-compose.yml', () => {
  it('has the five services of the design', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'migrate', 'postgres', 'redis', 'worker']);
  });

  it('runs Redis with AOF persistence and without eviction, as BullMQ needs to lose nothing', () => {
    const command = services.redis.command!.join(' ');
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--maxmemory-policy noeviction');
  });

  it.each(['postgres', 'redis', 'api', 'worker'])('gives %s a healthcheck', (name) => {
    expect(services[name].healthcheck?.test.length).toBeGreaterThan(0);
  });

  it('checks readiness of the api and worker on their health routes', () => {
    expect(services.api.healthcheck!.test.join(' ')).toContain('127.0.0.1:3000/health/ready');
    expect(services.worker.healthcheck!.test.join(' ')).toContain('127.0.0.1:3001/health/ready');
  });

  it('migrates once PostgreSQL is healthy, with the same npm script as a developer', () => {
    expect(services.migrate.command).toEqual(['npm', 'run', 'migrate']);
    expect(services.migrate.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(packageScripts.migrate).toContain('prisma/migrate.mjs');
  });

  it.each(['api', 'worker'])('starts %s after healthy stores and a successful migration', (name) => {
    expect(services[name].depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
      migrate: { condition: 'service_completed_successfully' },
    });
    expect(services[name].command).toEqual(['npm', 'run', `start:${name}`]);
    expect(packageScripts[`start:${name}`]).toContain(`dist/apps/${name}`);
  });

  it('points the processes at the compose PostgreSQL and Redis', () => {
    for (const name of ['migrate', 'api', 'worker']) {
      expect(services[name].environment!.DATABASE_URL).toMatch(/^postgresql:\/\/postgres:.*@postgres:5432\/mailjet_segment$/);
      expect(services[name].environment!.REDIS_URL).toBe('redis://redis:6379');
    }
  });

  it('passes each process the variables it requires, and only names that the config knows', () => {
    const known = Object.keys(new Environment());
    expect(Object.keys(services.api.environment!)).toEqual(
      expect.arrayContaining(['MAILJET_WEBHOOK_USER', 'MAILJET_WEBHOOK_PASSWORD', 'ADMIN_TOKEN']),
    );
    expect(Object.keys(services.worker.environment!)).toEqual(expect.arrayContaining(['SEGMENT_WRITE_KEY', 'SEGMENT_HOST']));
    for (const name of ['migrate', 'api', 'worker']) {
      for (const variable of Object.keys(services[name].environment!)) expect(known).toContain(variable);
    }
  });

  it('keeps secrets out of the file: each comes from the environment, required', () => {
    const text = readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');
    for (const secret of ['MAILJET_WEBHOOK_PASSWORD', 'ADMIN_TOKEN', 'SEGMENT_WRITE_KEY']) {
      expect(text).toMatch(new RegExp(`${secret}: \\$\\{${secret}:\\?`));
    }
  });

  it('publishes the api port', () => {
    expect(services.api.ports).toEqual(['${API_PORT:-3000}:3000']);
  });
});
