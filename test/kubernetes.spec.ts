import 'reflect-metadata';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { Namespace, ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import type { IContainer, IPodSpec, IProbe } from 'kubernetes-models/v1';
import { Environment } from '@app/config';
import { HealthController } from '../libs/health/src/health.controller';
import { EXIT_DEADLINE_MS } from '../apps/worker/src/exit-deadline';
import { builtEntryFile } from './support/built-entry-file';

// deploy/kubernetes (the Kustomize base) and deploy/kubernetes-overlay-example, rendered by
// `kubectl kustomize` as an operator would, validated against the Kubernetes and KEDA schemas and
// checked against the app: the same discipline as test/docker-image.spec.ts for compose.

const root = path.join(__dirname, '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };

function kustomize(directory: string): K8sObject[] {
  const run = spawnSync('kubectl', ['kustomize', directory], { encoding: 'utf8', timeout: 60_000 });
  if (run.error) throw new Error(`kubectl could not run (${run.error.message}): this test needs kubectl on the PATH (.ci/run checks it)`);
  if (run.status !== 0) throw new Error(`kubectl kustomize ${directory} exited with ${run.status}:\n${run.stderr}`);
  return parseAllDocuments(run.stdout).map((document) => document.toJS() as K8sObject);
}

/**
 * The example overlay, rendered from a copy of deploy/ with its two untracked secret files made
 * from the example (values that the config accepts; never real ones).
 */
function renderOverlay(): K8sObject[] {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'msb-kustomize-'));
  try {
    cpSync(path.join(root, 'deploy'), path.join(directory, 'deploy'), { recursive: true });
    const overlay = path.join(directory, 'deploy/kubernetes-overlay-example');
    const filled: Record<string, string> = {
      MAILJET_WEBHOOK_PASSWORD: 'an-example-webhook-password',
      ADMIN_TOKEN: 'an-example-admin-token',
      METRICS_TOKEN: 'an-example-metrics-token',
      SEGMENT_WRITE_KEY: 'an-example-write-key',
      SECRETS_KEY: '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff',
    };
    const example = readFileSync(path.join(overlay, 'app.secrets.env.example'), 'utf8');
    writeFileSync(path.join(overlay, 'app.secrets.env'), example.replace(/^([A-Z_]+)=$/gm, (line, name: string) => `${name}=${filled[name] ?? ''}`));
    writeFileSync(path.join(overlay, 'prometheus-bearer-token'), 'an-example-prometheus-token');
    return kustomize(overlay);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

const MODELS: Record<string, { validate(object: K8sObject): void }> = {
  'v1/Namespace': { validate: (o) => new Namespace(o as never).validate() },
  'v1/ConfigMap': { validate: (o) => new ConfigMap(o as never).validate() },
  // Kustomize wraps long base64 values in lines, which the API server's decoder skips (Go's base64 ignores newlines).
  'v1/Secret': {
    validate: (o) => new Secret({ ...o, data: Object.fromEntries(Object.entries(o.data ?? {}).map(([k, v]) => [k, v.replace(/\n/g, '')])) } as never).validate(),
  },
  'v1/Service': { validate: (o) => new Service(o as never).validate() },
  'apps/v1/Deployment': { validate: (o) => new Deployment(o as never).validate() },
  'batch/v1/Job': { validate: (o) => new Job(o as never).validate() },
  'policy/v1/PodDisruptionBudget': { validate: (o) => new PodDisruptionBudget(o as never).validate() },
  'autoscaling/v2/HorizontalPodAutoscaler': { validate: (o) => new HorizontalPodAutoscaler(o as never).validate() },
  // @kubernetes-models/keda is generated from KEDA's CRDs: their openAPIV3Schema, as the API server checks it.
  'keda.sh/v1alpha1/ScaledObject': { validate: (o) => new ScaledObject(o as never).validate() },
  'keda.sh/v1alpha1/TriggerAuthentication': { validate: (o) => new TriggerAuthentication(o as never).validate() },
};

const base = kustomize(path.join(root, 'deploy/kubernetes'));
const overlay = renderOverlay();
const RENDERINGS = [
  ['deploy/kubernetes', base],
  ['deploy/kubernetes-overlay-example', overlay],
] as const;

const one = (objects: K8sObject[], kind: string, name: string) => {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  expect(found).toHaveLength(1);
  return found[0];
};
const podSpec = (objects: K8sObject[], kind: string, name: string): IPodSpec => one(objects, kind, name).spec.template.spec;
const container = (spec: IPodSpec, name: string): IContainer => spec.containers.find((c) => c.name === name)!;
const APPS = { api: 'mailjet-segment-bridge-api', worker: 'mailjet-segment-bridge-worker' } as const;

const compose = parse(read('docker-compose.yml'), { merge: true, version: '1.1' }) as { services: Record<string, { command: string[] }> };
const configMap = (objects: K8sObject[]) => objects.find((o) => o.kind === 'ConfigMap')!;
const environmentDefaults = new Environment();
const knownVariables = Object.keys(environmentDefaults);

/** The routes of the health controller, from Nest's own route metadata. */
function healthRoutes(): string[] {
  const prefix = Reflect.getMetadata('path', HealthController) as string;
  return (['live', 'ready'] as const).map((method) => `/${prefix}/${Reflect.getMetadata('path', HealthController.prototype[method])}`);
}

/** The variables that an app's main.ts makes required (`configFromEnvironment([...])`). */
function requiredVariables(app: string): string[] {
  const [, list] = /configFromEnvironment\(\[([^\]]*)\]\)/.exec(read(`apps/${app}/src/main.ts`))!;
  return [...list.matchAll(/'([A-Z_]+)'/g)].map(([, name]) => name);
}

/** Peak RSS figures (MB) and worker throughput of the last benchmark runs in docs/BENCHMARKS.md (their generated tables). */
function benchmarks(): { apiPeakRssMb: number; workerPeakRssMb: number; workerEventsPerSecond: number } {
  const text = read('docs/BENCHMARKS.md');
  const section = (name: string) => text.slice(text.indexOf(`<!-- ${name}:start -->`), text.indexOf(`<!-- ${name}:end -->`));
  const rows = (name: string) => section(name).split('\n').filter((line) => line.startsWith('|')).map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));
  const ingest = rows('ingest');
  const rssColumn = ingest[0].indexOf('peak RSS MB');
  const apiPeaks = ingest.filter((row) => row[1] === 'product').map((row) => Number(row[rssColumn]));
  const e2e = rows('e2e');
  const header = e2e[0];
  const measured = e2e.find((row) => /^\d+$/.test(row[0]))!;
  const number = (cell: string) => Number(cell.replace(/[^\d.]/g, ''));
  expect(apiPeaks.length).toBeGreaterThan(0);
  return {
    apiPeakRssMb: Math.max(...apiPeaks),
    workerPeakRssMb: number(measured[header.indexOf('worker peak RSS')]),
    workerEventsPerSecond: number(measured[header.indexOf('events/s forwarded')]),
  };
}

/** Kubernetes quantities as bytes or cores ("768Mi", "1Gi", "500m"). */
function quantity(value: string | number): number {
  const match = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$/.exec(String(value))!;
  const factor = { m: 0.001, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * factor;
}

describe.each(RENDERINGS)('%s, rendered by kubectl kustomize', (_name, objects) => {
  it('holds only kinds that are validated here, and each object passes its schema', () => {
    expect(objects.length).toBeGreaterThan(0);
    for (const object of objects) {
      const model = MODELS[`${object.apiVersion}/${object.kind}`];
      if (!model) throw new Error(`no schema here for ${object.apiVersion} ${object.kind} (${object.metadata.name})`);
      expect(() => model.validate(object)).not.toThrow();
    }
  });

  it('has the objects of the design', () => {
    for (const [kind, name] of [
      ['Deployment', APPS.api],
      ['Deployment', APPS.worker],
      ['Service', APPS.api],
      ['HorizontalPodAutoscaler', APPS.api],
      ['PodDisruptionBudget', APPS.api],
      ['PodDisruptionBudget', APPS.worker],
      ['Job', 'mailjet-segment-bridge-migrate'],
      ['ScaledObject', APPS.worker],
    ]) {
      one(objects, kind, name);
    }
  });

  it('points every selector, autoscaler and reference at objects that exist', () => {
    const labelsOf = (kind: string, name: string) => one(objects, kind, name).spec.template.metadata.labels as Record<string, string>;
    const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    expect(matches(one(objects, 'Service', APPS.api).spec.selector, labelsOf('Deployment', APPS.api))).toBe(true);
    expect(matches(one(objects, 'Service', APPS.api).spec.selector, labelsOf('Deployment', APPS.worker))).toBe(false);
    for (const name of Object.values(APPS)) {
      const deployment = one(objects, 'Deployment', name);
      expect(matches(deployment.spec.selector.matchLabels, labelsOf('Deployment', name))).toBe(true);
      expect(matches(one(objects, 'PodDisruptionBudget', name).spec.selector.matchLabels, labelsOf('Deployment', name))).toBe(true);
      // The autoscalers own the replicas: a `replicas` here would be reset by every apply.
      expect(deployment.spec.replicas).toBeUndefined();
    }
    expect(one(objects, 'HorizontalPodAutoscaler', APPS.api).spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: APPS.api });
    const scaled = one(objects, 'ScaledObject', APPS.worker);
    one(objects, 'Deployment', scaled.spec.scaleTargetRef.name);
    for (const trigger of scaled.spec.triggers) if (trigger.authenticationRef) one(objects, 'TriggerAuthentication', trigger.authenticationRef.name);

    const configMapName = configMap(objects).metadata.name;
    for (const [kind, name] of [['Deployment', APPS.api], ['Deployment', APPS.worker], ['Job', 'mailjet-segment-bridge-migrate']]) {
      const spec = podSpec(objects, kind, name);
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        for (const from of c.envFrom ?? []) expect(from.configMapRef!.name).toBe(configMapName);
      }
    }
  });

  it('runs every pod with the pause container as PID 1, not node, and as the unprivileged user', () => {
    for (const [kind, name] of [['Deployment', APPS.api], ['Deployment', APPS.worker], ['Job', 'mailjet-segment-bridge-migrate']]) {
      const spec = podSpec(objects, kind, name);
      // Node as PID 1 ignores the SIGTERM that Nest re-raises after its shutdown hooks (compose: init: true).
      expect(spec.shareProcessNamespace).toBe(true);
      expect(spec.securityContext).toEqual(expect.objectContaining({ runAsNonRoot: true, runAsUser: 1000 }));
    }
  });

  it('starts api and worker as node itself on the files the build writes, as compose and the npm start scripts do', () => {
    for (const app of ['api', 'worker'] as const) {
      const command = container(podSpec(objects, 'Deployment', APPS[app]), app).command;
      expect(command).toEqual(['node', builtEntryFile(app)]);
      expect(command).toEqual(compose.services[app].command);
    }
  });

  it('migrates with the runner and flags of compose, and makes api and worker pods wait for it first', () => {
    const migrate = compose.services.migrate.command;
    const job = podSpec(objects, 'Job', 'mailjet-segment-bridge-migrate');
    expect(job.restartPolicy).toBe('Never');
    expect(job.containers.map((c) => c.command)).toEqual([migrate]);
    for (const name of Object.values(APPS)) {
      const spec = podSpec(objects, 'Deployment', name);
      expect(spec.initContainers!.map((c) => c.command)).toEqual([[...migrate, 'wait', expect.stringMatching(/^\d+$/)]]);
      expect(spec.initContainers![0].image).toBe(spec.containers[0].image);
    }
    expect(read('prisma/migrate.mjs')).toContain("command === 'wait'");
  });

  it('runs the same image in every container', () => {
    const images = new Set(
      [podSpec(objects, 'Deployment', APPS.api), podSpec(objects, 'Deployment', APPS.worker), podSpec(objects, 'Job', 'mailjet-segment-bridge-migrate')]
        .flatMap((spec) => [...(spec.initContainers ?? []), ...spec.containers])
        .map((c) => c.image),
    );
    expect(images.size).toBe(1);
  });

  it('exposes the ports the processes listen on by default, as the config map sets them', () => {
    const data = configMap(objects).data!;
    const api = container(podSpec(objects, 'Deployment', APPS.api), 'api');
    const worker = container(podSpec(objects, 'Deployment', APPS.worker), 'worker');
    expect(api.ports).toEqual([{ name: 'http', containerPort: environmentDefaults.PORT }]);
    expect(worker.ports).toEqual([{ name: 'health', containerPort: environmentDefaults.WORKER_HEALTH_PORT }]);
    expect(Number(data.PORT)).toBe(environmentDefaults.PORT);
    expect(Number(data.WORKER_HEALTH_PORT)).toBe(environmentDefaults.WORKER_HEALTH_PORT);
    expect(data.HOST).toBe('0.0.0.0');
    expect(one(objects, 'Service', APPS.api).spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http' }]);
  });

  it('probes real health routes on the containers’ own ports', () => {
    const [live, ready] = healthRoutes();
    expect([live, ready]).toEqual(['/health/live', '/health/ready']);
    const probes = (c: IContainer) => ({ startup: c.startupProbe!, readiness: c.readinessProbe!, liveness: c.livenessProbe! });
    const pathOf = (probe: IProbe) => probe.httpGet!.path;
    const api = container(podSpec(objects, 'Deployment', APPS.api), 'api');
    const worker = container(podSpec(objects, 'Deployment', APPS.worker), 'worker');
    for (const [c, port] of [[api, 'http'], [worker, 'health']] as const) {
      for (const probe of Object.values(probes(c))) expect(probe.httpGet!.port).toBe(port);
      expect(pathOf(probes(c).liveness)).toBe(live);
      expect(pathOf(probes(c).startup)).toBe(live);
    }
    // The api keeps taking callbacks while Redis is down: /health/ready would empty the Service.
    expect(pathOf(probes(api).readiness)).toBe(live);
    expect(pathOf(probes(worker).readiness)).toBe(ready);
  });

  it('gives api and worker only variables the config knows, every required one, and the stores', () => {
    const namesOf = (c: IContainer) => [...Object.keys(configMap(objects).data!), ...(c.env ?? []).map((e) => e.name)];
    for (const name of Object.keys(configMap(objects).data!)) expect(knownVariables).toContain(name);
    for (const app of ['api', 'worker'] as const) {
      const c = container(podSpec(objects, 'Deployment', APPS[app]), app);
      for (const name of namesOf(c)) expect(knownVariables).toContain(name);
      expect(new Set(namesOf(c)).size).toBe(namesOf(c).length);
      const required = [...requiredVariables(app), 'DATABASE_URL', 'METRICS_TOKEN'];
      // One Redis or a Redis Cluster: both from the Secret, each optional, since only one is set.
      for (const name of ['REDIS_URL', 'REDIS_CLUSTER_NODES']) {
        expect(c.env?.find((e) => e.name === name)?.valueFrom?.secretKeyRef).toMatchObject({ key: name, optional: true });
      }
      expect(requiredVariables(app).length).toBeGreaterThan(0);
      for (const name of required) {
        expect(namesOf(c)).toContain(name);
        // A required secret is never optional: a missing key stops the pod at creation, by name.
        const fromSecret = c.env?.find((e) => e.name === name)?.valueFrom?.secretKeyRef;
        if (fromSecret) expect(fromSecret.optional).not.toBe(true);
      }
    }
  });

  it('keeps secrets in the Secret: no password, token or key in the config map or in a container', () => {
    const secretNames = /PASSWORD|TOKEN|SECRET|WRITE_KEY|DATABASE_URL|REDIS_URL|REDIS_CLUSTER_NODES/;
    for (const name of Object.keys(configMap(objects).data!)) expect(name).not.toMatch(secretNames);
    for (const name of Object.values(APPS)) {
      for (const c of podSpec(objects, 'Deployment', name).containers) {
        for (const variable of c.env ?? []) if (secretNames.test(variable.name)) expect(variable.valueFrom?.secretKeyRef).toBeDefined();
      }
    }
  });

  it('gives the worker a grace period longer than its whole shutdown, and the api a preStop pause within its own', () => {
    const worker = podSpec(objects, 'Deployment', APPS.worker);
    // The worker exits by EXIT_DEADLINE_MS of SIGTERM whatever hangs (test/worker-process.e2e-spec.ts).
    expect(worker.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(EXIT_DEADLINE_MS / 1000 + 10);
    const api = podSpec(objects, 'Deployment', APPS.api);
    const [command, seconds, ...rest] = container(api, 'api').lifecycle!.preStop!.exec!.command!;
    expect({ command, rest }).toEqual({ command: 'sleep', rest: [] });
    const pause = Number(seconds);
    expect(pause).toBeGreaterThanOrEqual(3);
    expect(api.terminationGracePeriodSeconds).toBeGreaterThan(pause + 20);
  });

  it('sets memory limits above the peak RSS measured in docs/BENCHMARKS.md, and requests within them', () => {
    const measured = benchmarks();
    const MiB = 1024 ** 2;
    for (const [app, peakMb] of [['api', measured.apiPeakRssMb], ['worker', measured.workerPeakRssMb]] as const) {
      const { requests, limits } = container(podSpec(objects, 'Deployment', APPS[app]), app).resources!;
      expect(peakMb).toBeGreaterThan(100);
      // 25% above the peak (read as MiB, the larger unit), for what a benchmark does not send.
      expect(quantity(limits!.memory)).toBeGreaterThanOrEqual(peakMb * MiB * 1.25);
      expect(quantity(requests!.memory)).toBeLessThanOrEqual(quantity(limits!.memory));
      expect(quantity(requests!.cpu)).toBeGreaterThan(0);
    }
  });

  it('scales workers with KEDA on queued jobs from the shared gauge, never to zero, at a threshold from the measured throughput', () => {
    const scaled = one(objects, 'ScaledObject', APPS.worker);
    expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(scaled.spec.maxReplicaCount).toBeGreaterThan(scaled.spec.minReplicaCount);
    expect(scaled.spec.cooldownPeriod).toBeGreaterThan(0);
    const [trigger] = scaled.spec.triggers;
    expect(scaled.spec.triggers).toHaveLength(1);
    expect(trigger.type).toBe('prometheus');
    const { query, threshold } = trigger.metadata as { query: string; threshold: string };

    // The metric exists under that name, with these states, in libs/metrics.
    const gauges = read('libs/metrics/src/shared-state-gauges.service.ts');
    expect(gauges).toContain("'msb_queue_jobs'");
    const states = /JOB_STATES = \[([^\]]*)\]/.exec(gauges)![1];
    for (const state of ['waiting', 'delayed', 'prioritized']) expect(states).toContain(`'${state}'`);
    expect(query).toMatch(/^sum\(max by \(state\) \(msb_queue_jobs\{(namespace="[a-z0-9-]+", )?state=~"waiting\|delayed\|prioritized"\}\)\)$/);

    // At most a minute of work per worker, in full jobs of 100 events at the measured rate: KEDA adds
    // workers before a backlog is a minute deep. (bench:e2e varies by a third between runs here.)
    const jobsPerSecond = benchmarks().workerEventsPerSecond / 100;
    expect(Number(threshold)).toBeGreaterThan(0);
    expect(Number(threshold)).toBeLessThanOrEqual(jobsPerSecond * 60);
  });

  const promtoolInstalled = spawnSync('promtool', ['--version']).status === 0;
  (promtoolInstalled ? it : it.skip)('has a query that promtool parses (skipped without promtool)', () => {
    const directory = mkdtempSync(path.join(os.tmpdir(), 'msb-keda-query-'));
    try {
      const { query } = one(objects, 'ScaledObject', APPS.worker).spec.triggers[0].metadata;
      const rules = path.join(directory, 'rules.yml');
      writeFileSync(rules, JSON.stringify({ groups: [{ name: 'keda', rules: [{ record: 'msb:queued_jobs', expr: query }] }] }));
      execFileSync('promtool', ['check', 'rules', rules], { encoding: 'utf8' });
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('deploy/kubernetes, the base', () => {
  it('has no namespace, no Secret and no image tag of its own: the overlay chooses them', () => {
    for (const object of base) expect(object.metadata.namespace).toBeUndefined();
    expect(base.filter((o) => o.kind === 'Secret')).toEqual([]);
    expect(container(podSpec(base, 'Deployment', APPS.api), 'api').image).toBe('mailjet-segment-bridge');
  });

  it('takes secrets from the Secret mailjet-segment-bridge-secrets, which the operator makes', () => {
    const refs = [APPS.api, APPS.worker].flatMap((name) => podSpec(base, 'Deployment', name).containers.flatMap((c) => c.env ?? []));
    for (const variable of refs) expect(variable.valueFrom?.secretKeyRef?.name ?? 'mailjet-segment-bridge-secrets').toBe('mailjet-segment-bridge-secrets');
  });
});

describe('deploy/kubernetes-overlay-example', () => {
  it('sets a namespace, a tagged image, the autoscalers’ bounds and a merged config map', () => {
    for (const object of overlay.filter((o) => o.kind !== 'Namespace')) expect(object.metadata.namespace).toBe('mailjet-segment-bridge');
    expect(container(podSpec(overlay, 'Deployment', APPS.worker), 'worker').image).toBe('registry.example.com/mailjet-segment-bridge:0.1.0');
    expect(one(overlay, 'HorizontalPodAutoscaler', APPS.api).spec.minReplicas).toBe(3);
    expect(one(overlay, 'ScaledObject', APPS.worker).spec.maxReplicaCount).toBe(6);
    expect(configMap(overlay).data).toEqual(expect.objectContaining({ PORT: '3000', EVENT_RETENTION_DAYS: '400', PUBLIC_URL: 'https://bridge.example.com' }));
  });

  it('generates the Secrets and writes their hashed names wherever they are used, KEDA’s objects included', () => {
    const secrets = overlay.filter((o) => o.kind === 'Secret');
    const app = secrets.find((o) => o.metadata.name.startsWith('mailjet-segment-bridge-secrets-'))!;
    const token = secrets.find((o) => o.metadata.name.startsWith('prometheus-query-token-'))!;
    for (const name of Object.values(APPS)) {
      for (const c of podSpec(overlay, 'Deployment', name).containers) {
        for (const variable of c.env ?? []) {
          const ref = variable.valueFrom?.secretKeyRef;
          if (!ref) continue;
          expect(ref.name).toBe(app.metadata.name);
          if (!ref.optional) expect(Object.keys(app.data!)).toContain(ref.key);
        }
      }
    }
    expect(one(overlay, 'TriggerAuthentication', 'prometheus-query').spec.secretTargetRef).toEqual([
      { parameter: 'bearerToken', name: token.metadata.name, key: 'bearerToken' },
    ]);
  });

  it('keeps the secret files out of git', () => {
    const ignored = read('deploy/kubernetes-overlay-example/.gitignore').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['app.secrets.env', 'prometheus-bearer-token']));
    const listed = execFileSync('git', ['ls-files', 'deploy/kubernetes-overlay-example'], { cwd: root, encoding: 'utf8' });
    expect(listed).not.toMatch(/app\.secrets\.env$|prometheus-bearer-token/m);
  });
});
