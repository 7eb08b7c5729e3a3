import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { Environment } from '@app/config';
import { builtEntryFile } from './support/built-entry-file';

// Docker cannot run on the build machines, so the image and the compose file are checked as data.

/** Active LTS since 2026-10-28; Node.js 20 reached end of life on 2026-04-30. */
const NODE_LTS_MAJOR = 26;

interface ComposeService {
  image?: string;
  build?: unknown;
  profiles?: string[];
  command?: string[] | string;
  init?: boolean;
  environment?: Record<string, string | number>;
  ports?: string[];
  volumes?: string[];
  secrets?: { source: string; target?: string; mode?: number }[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
}

const root = path.join(__dirname, '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
// YAML 1.1, as compose reads it: `mode: 0444` is octal there (YAML 1.2 would read 444).
const compose = parse(read('docker-compose.yml'), { merge: true, version: '1.1' }) as {
  services: Record<string, ComposeService>;
  secrets: Record<string, { environment?: string; file?: string }>;
};
const { services } = compose;
const packageJson = JSON.parse(read('package.json')) as { scripts: Record<string, string>; engines: { node: string } };
const packageScripts = packageJson.scripts;
const APPS = ['api', 'worker'] as const;
const NODE_PROCESSES = ['migrate', ...APPS];

interface DockerInstruction {
  keyword: string;
  args: string;
}

/** The Dockerfile's stages, each a list of instructions (continuation lines joined, comments dropped). */
function dockerStages(text: string): DockerInstruction[][] {
  const stages: DockerInstruction[][] = [];
  const logical = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((line) => line.trim());
  for (const line of logical.filter((l) => l !== '' && !l.startsWith('#'))) {
    const [, keyword, args] = /^(\S+)\s+(.*)$/.exec(line)!;
    const instruction = { keyword: keyword.toUpperCase(), args: args.trim() };
    if (instruction.keyword === 'FROM') stages.push([]);
    stages[stages.length - 1].push(instruction);
  }
  return stages;
}

const stages = dockerStages(read('Dockerfile'));
const finalStage = stages[stages.length - 1];
const argsOf = (stage: DockerInstruction[], keyword: string) => stage.filter((i) => i.keyword === keyword).map((i) => i.args);

describe('Dockerfile', () => {
  it(`builds and runs on Node.js ${NODE_LTS_MAJOR}, the current LTS`, () => {
    const images = stages.map((stage) => stage[0].args.split(/\s+/)[0]);
    expect(images.length).toBeGreaterThanOrEqual(2);
    for (const image of images) expect(image).toMatch(new RegExp(`^node:${NODE_LTS_MAJOR}(-|$)`));
  });

  // The dev machines and CI stay on Node.js 20 (20.19 is Prisma 7's minimum) while the image moves on.
  it('accepts that Node.js in package.json engines, as well as the Node.js 20 of the dev machines', () => {
    const ranges = packageJson.engines.node.split('||').map((range) => range.trim());
    const accepts = (version: number[]) =>
      ranges.some((range) => {
        const [, operator, ...bound] = /^(\^|>=)(\d+)(?:\.(\d+))?$/.exec(range)!;
        const [major, minor] = bound.map((part) => Number(part ?? 0));
        const atLeast = version[0] > major || (version[0] === major && version[1] >= minor);
        return operator === '^' ? version[0] === major && atLeast : atLeast;
      });
    expect(accepts([NODE_LTS_MAJOR, 0])).toBe(true);
    expect(accepts([20, 19])).toBe(true);
    expect(accepts([20, 18])).toBe(false);
  });

  it('builds in /app and copies the built output, the pruned modules and the migrations into the runtime stage', () => {
    const build = stages[0];
    expect(argsOf(build, 'WORKDIR')).toEqual(['/app']);
    expect(argsOf(build, 'RUN').join(' && ')).toContain('npm run build');
    expect(argsOf(finalStage, 'WORKDIR')).toEqual(['/app']);
    expect(argsOf(finalStage, 'COPY')).toEqual(
      expect.arrayContaining([
        '--from=build /app/dist ./dist',
        '--from=build /app/node_modules ./node_modules',
        '--from=build /app/prisma ./prisma',
      ]),
    );
  });

  it('runs the api by default, as node itself in exec form, as compose does', () => {
    const cmd = argsOf(finalStage, 'CMD');
    expect(cmd).toHaveLength(1);
    expect(argsOf(finalStage, 'ENTRYPOINT')).toEqual([]);
    expect(JSON.parse(cmd[0])).toEqual(services.api.command);
  });

  it('runs as an unprivileged user', () => {
    expect(argsOf(finalStage, 'USER')).toEqual(['node']);
  });
});

describe('docker-compose.yml', () => {
  it('has the five services of the design, and Prometheus and Grafana only in the monitoring profile', () => {
    const byDefault = Object.keys(services).filter((name) => services[name].profiles === undefined);
    expect(byDefault.sort()).toEqual(['api', 'migrate', 'postgres', 'redis', 'worker']);
    const profiled = Object.keys(services).filter((name) => services[name].profiles !== undefined);
    expect(profiled.sort()).toEqual(['grafana', 'prometheus']);
    for (const name of profiled) expect(services[name].profiles).toEqual(['monitoring']);
  });

  it('runs Redis with AOF persistence and without eviction, as BullMQ needs to lose nothing', () => {
    const command = (services.redis.command as string[]).join(' ');
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

  // npm -> sh -> node: SIGTERM to npm never reaches node, which keeps running without its shutdown.
  it.each(NODE_PROCESSES)('starts %s as node itself, in exec form, with no npm or shell in between', (name) => {
    const command = services[name].command;
    expect(Array.isArray(command)).toBe(true);
    expect((command as string[])[0]).toBe('node');
    for (const word of command as string[]) expect(['npm', 'npx', 'sh', 'bash', '-c']).not.toContain(word);
  });

  it.each(NODE_PROCESSES)('runs %s under an init that forwards signals, so node is not PID 1', (name) => {
    // As PID 1, node would ignore the SIGTERM that Nest re-raises once its shutdown hooks are done.
    expect(services[name].init).toBe(true);
  });

  it.each(APPS)('starts %s from the file that the build writes and its npm start script runs', (name) => {
    const entry = builtEntryFile(name);
    expect(entry).toBe(`dist/apps/${name}/apps/${name}/src/main.js`);
    expect(services[name].command).toEqual(['node', entry]);
    expect(packageScripts[`start:${name}`]).toBe(`node ${entry}`);
  });

  it('migrates once PostgreSQL is healthy, with the runner of `npm run migrate`', () => {
    const command = services.migrate.command as string[];
    expect(command[command.length - 1]).toBe('prisma/migrate.mjs');
    expect(existsSync(path.join(root, 'prisma/migrate.mjs'))).toBe(true);
    expect(packageScripts.migrate).toMatch(/^node .*prisma\/migrate\.mjs$/);
    // Node 20 and 22 need the flag to import the schema engine's .wasm; Node 26 does not.
    expect(command.filter((word) => word.startsWith('--'))).toEqual(['--disable-warning=ExperimentalWarning']);
    expect(services.migrate.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
  });

  it.each(APPS)('starts %s after healthy stores and a successful migration', (name) => {
    expect(services[name].depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
      migrate: { condition: 'service_completed_successfully' },
    });
  });

  it('points the processes at the compose PostgreSQL and Redis', () => {
    for (const name of NODE_PROCESSES) {
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
    for (const name of NODE_PROCESSES) {
      for (const variable of Object.keys(services[name].environment!)) expect(known).toContain(variable);
    }
  });

  it('keeps secrets out of the file: each comes from the environment, required', () => {
    const text = read('docker-compose.yml');
    for (const secret of ['MAILJET_WEBHOOK_PASSWORD', 'ADMIN_TOKEN', 'SEGMENT_WRITE_KEY']) {
      expect(text).toMatch(new RegExp(`${secret}: \\$\\{${secret}:\\?`));
    }
  });

  it('publishes the api port', () => {
    expect(services.api.ports).toEqual(['${API_PORT:-3000}:3000']);
  });
});

describe('docker-compose.yml, monitoring profile', () => {
  const prometheusConfig = parse(read('deploy/prometheus/prometheus.yml')) as {
    rule_files: string[];
    scrape_configs: {
      job_name: string;
      metrics_path: string;
      authorization: { type: string; credentials_file: string };
      dns_sd_configs: { names: string[]; type: string; port: number }[];
    }[];
  };
  /** A bind mount `./host/path:/container/path[:ro]` of the service, by container path. */
  const mountOf = (service: string, target: string) =>
    services[service].volumes!.map((volume) => volume.split(':')).find(([, inContainer]) => inContainer === target);

  it('runs Prometheus on the mounted config, with the alert rules beside it where rule_files looks', () => {
    const { command, volumes } = services.prometheus;
    expect(command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    expect(mountOf('prometheus', '/etc/prometheus/prometheus.yml')).toEqual(['./deploy/prometheus/prometheus.yml', '/etc/prometheus/prometheus.yml', 'ro']);
    expect(prometheusConfig.rule_files).toEqual(['alerts.yml']);
    expect(mountOf('prometheus', '/etc/prometheus/alerts.yml')).toEqual(['./deploy/prometheus/alerts.yml', '/etc/prometheus/alerts.yml', 'ro']);
    for (const volume of volumes!.filter((v) => v.startsWith('./'))) expect(existsSync(path.join(root, volume.split(':')[0]))).toBe(true);
  });

  // MsbSourceSilent compares the last 6 hours with the same hours a week earlier.
  it('keeps more than a week and 6 hours of samples', () => {
    const retention = (services.prometheus.command as string[]).find((arg) => arg.startsWith('--storage.tsdb.retention.time='));
    const days = Number(/=(\d+)d$/.exec(retention ?? '')?.[1]);
    expect(days * 24).toBeGreaterThan(7 * 24 + 6);
  });

  it('scrapes /metrics of every api and worker container on the ports compose gives them', () => {
    const jobs = Object.fromEntries(prometheusConfig.scrape_configs.map((job) => [job.job_name, job]));
    expect(Object.keys(jobs).sort()).toEqual(['mailjet-segment-bridge-api', 'mailjet-segment-bridge-worker']);
    const expected = { 'mailjet-segment-bridge-api': ['api', services.api.environment!.PORT], 'mailjet-segment-bridge-worker': ['worker', services.worker.environment!.WORKER_HEALTH_PORT] };
    for (const [job, [service, port]] of Object.entries(expected)) {
      expect(jobs[job].metrics_path).toBe('/metrics');
      expect(jobs[job].dns_sd_configs).toEqual([expect.objectContaining({ names: [service], type: 'A', port })]);
    }
  });

  it('hands Prometheus METRICS_TOKEN as a secret file, readable by its unprivileged user, where the scrape config reads it', () => {
    expect(compose.secrets.metrics_token).toEqual({ environment: 'METRICS_TOKEN' });
    const [secret] = services.prometheus.secrets!;
    expect(secret).toEqual({ source: 'metrics_token', mode: 0o444 });
    for (const job of prometheusConfig.scrape_configs) {
      expect(job.authorization).toEqual({ type: 'Bearer', credentials_file: `/run/secrets/${secret.source}` });
    }
  });

  // Scrapes of the worker need a token too, and compose gives it no ADMIN_TOKEN to default to.
  it.each(APPS)('gives %s the token that Prometheus scrapes with: METRICS_TOKEN, else the admin token', (name) => {
    expect(services[name].environment!.METRICS_TOKEN).toBe('${METRICS_TOKEN:-${ADMIN_TOKEN}}');
  });

  it('gives Grafana its admin password from a secret, the Prometheus data source and the dashboard', () => {
    expect(compose.secrets.grafana_admin_password).toEqual({ environment: 'GRAFANA_ADMIN_PASSWORD' });
    expect(services.grafana.secrets).toEqual([{ source: 'grafana_admin_password', mode: 0o444 }]);
    expect(services.grafana.environment!.GF_SECURITY_ADMIN_PASSWORD__FILE).toBe('/run/secrets/grafana_admin_password');

    const datasources = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { type: string; url: string }[] };
    expect(datasources.datasources).toEqual([expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090' })]);
    expect(mountOf('grafana', '/etc/grafana/provisioning/datasources')?.[0]).toBe('./deploy/grafana/provisioning/datasources');

    const providers = parse(read('deploy/grafana/provisioning/dashboards/mailjet-segment-bridge.yml')) as { providers: { options: { path: string } }[] };
    expect(mountOf('grafana', '/etc/grafana/provisioning/dashboards')?.[0]).toBe('./deploy/grafana/provisioning/dashboards');
    const dashboardInContainer = `${providers.providers[0].options.path}/mailjet-segment-bridge.json`;
    expect(mountOf('grafana', dashboardInContainer)?.[0]).toBe('./deploy/grafana/mailjet-segment-bridge.json');
    expect(services.grafana.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(dashboardInContainer);
  });

  // Prometheus has no login at all; both stay off other hosts unless an operator decides otherwise.
  it.each(['prometheus', 'grafana'])('publishes %s on this host only', (name) => {
    for (const port of services[name].ports!) expect(port).toMatch(/^127\.0\.0\.1:/);
  });
});
