import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { parse } from 'yaml';
import { Environment } from '@app/config';

// Docker cannot run on the build machines, so the image and the compose file are checked as data.

/** Active LTS since 2026-10-28; Node.js 20 reached end of life on 2026-04-30. */
const NODE_LTS_MAJOR = 26;

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  init?: boolean;
  environment?: Record<string, string | number>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

const root = path.join(__dirname, '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };
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

/**
 * Where `nest build <app>` writes the app's main.js: tsc puts each file at outDir + its path
 * under rootDir, both taken from the app's tsconfig (which extends the root one).
 */
function builtEntryFile(app: string): string {
  const tsconfigPath = JSON.parse(read('nest-cli.json')).projects[app].compilerOptions.tsConfigPath as string;
  const { config } = ts.readConfigFile(path.join(root, tsconfigPath), ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, path.dirname(path.join(root, tsconfigPath)));
  const source = path.join(root, `apps/${app}/src/main.ts`);
  expect(existsSync(source)).toBe(true);
  const built = path.join(options.outDir!, path.relative(options.rootDir!, source)).replace(/\.ts$/, '.js');
  return path.relative(root, built).split(path.sep).join('/');
}

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
  it('has the five services of the design', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'migrate', 'postgres', 'redis', 'worker']);
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
