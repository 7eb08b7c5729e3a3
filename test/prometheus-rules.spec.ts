import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';

// The alert rules, their unit tests, the scrape config and the dashboard's queries, checked by
// promtool: Debian's `prometheus` package (README, "Test it"). No promtool is a failure, not a skip.

const root = path.join(__dirname, '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
const PROMTOOL_TIMEOUT_MS = 120_000;

interface PromtoolRun {
  status: number | null;
  output: string;
}

function missingPromtool(error: Error): Error {
  return new Error(`promtool could not run (${error.message}): npm test needs it on the PATH; on Debian or Ubuntu, apt-get install prometheus (README, "Test it")`);
}

function promtool(args: string[]): PromtoolRun {
  const run = spawnSync('promtool', args, { cwd: root, encoding: 'utf8', timeout: PROMTOOL_TIMEOUT_MS });
  if (run.error) throw missingPromtool(run.error);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** The same, without blocking: the slow runs (a week of rule evaluations) go side by side. */
function promtoolAsync(args: string[]): Promise<PromtoolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { cwd: root, timeout: PROMTOOL_TIMEOUT_MS });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', (error) => reject(missingPromtool(error)));
    child.on('close', (status) => resolve({ status, output }));
  });
}

/** Fails with promtool's own output, which says what is wrong and where. */
function expectSuccess({ status, output }: PromtoolRun, args: string[]): void {
  if (status !== 0) throw new Error(`promtool ${args.join(' ')} exited with ${status}:\n${output}`);
}

function runPromtool(...args: string[]): void {
  expectSuccess(promtool(args), args);
}

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const ALERTS_FILE = 'deploy/prometheus/alerts.yml';
const ALERT_TESTS_FILE = 'deploy/prometheus/alerts.test.yml';
const alertGroups = (parse(read(ALERTS_FILE)) as { groups: { name: string; rules: AlertRule[] }[] }).groups;
const alerts = alertGroups.flatMap((group) => group.rules);
const alertNames = alerts.map((rule) => rule.alert);

interface PanelTarget {
  expr: string;
  refId: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets: PanelTarget[];
}
const DASHBOARD_FILE = 'deploy/grafana/mailjet-segment-bridge.json';
const dashboard = JSON.parse(read(DASHBOARD_FILE)) as { panels: Panel[] };
const panelExprs = dashboard.panels.flatMap((panel) => panel.targets.map((target) => ({ panel, expr: target.expr, refId: target.refId })));

/** `MsbWorkerDown` -> `alert-msb-worker-down`: the id of the alert's row in the README. */
const anchorOf = (alert: string) => `alert-${alert.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase()}`;

function withTemporaryDirectory<T>(use: (directory: string) => Promise<T> | T): Promise<T> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'msb-promtool-'));
  return Promise.resolve()
    .then(() => use(directory))
    .finally(() => rmSync(directory, { recursive: true, force: true }));
}

/**
 * The unit tests against broken copies of the rules: every rule never firing must fail each alert's
 * firing cases, and every rule always firing each alert's quiet cases (promtool prints `exp:[]`).
 */
async function runAgainstBrokenRules(directory: string) {
  const mutants = [
    { name: 'never', expr: 'vector(1) unless vector(1)', failing: /alertname: (\w+), time: \S+,\s*exp:\[\s*0:/g },
    { name: 'always', expr: 'vector(1)', failing: /alertname: (\w+), time: \S+,\s*exp:\[\],/g },
  ];
  return Promise.all(
    mutants.map(async ({ name, expr, failing }) => {
      const mutantDirectory = path.join(directory, name);
      mkdirSync(mutantDirectory);
      // no annotations to render at each of a week of steps: the cases fail on the labels already
      const groups = alertGroups.map((group) => ({ ...group, rules: group.rules.map(({ alert }) => ({ alert, expr })) }));
      writeFileSync(path.join(mutantDirectory, 'alerts.yml'), stringify({ groups }));
      writeFileSync(path.join(mutantDirectory, 'alerts.test.yml'), read(ALERT_TESTS_FILE));
      const run = await promtoolAsync(['test', 'rules', path.join(mutantDirectory, 'alerts.test.yml')]);
      const failedAlerts = new Set([...run.output.matchAll(failing)].map((match) => match[1]));
      return { name, ...run, failedAlerts: [...failedAlerts].sort() };
    }),
  );
}

describe('deploy/prometheus/alerts.yml', () => {
  // The unit tests step through a week of evaluations (seconds): they start at once with the
  // runs against broken rules, and each test awaits its own.
  let unitTests: Promise<PromtoolRun>;
  let brokenRuleRuns: ReturnType<typeof runAgainstBrokenRules>;
  let mutantsDirectory: string;
  beforeAll(() => {
    unitTests = promtoolAsync(['test', 'rules', ALERT_TESTS_FILE]);
    mutantsDirectory = mkdtempSync(path.join(os.tmpdir(), 'msb-promtool-'));
    brokenRuleRuns = runAgainstBrokenRules(mutantsDirectory);
    // each test reports its own failure; no unhandled rejection meanwhile
    unitTests.catch(() => undefined);
    brokenRuleRuns.catch(() => undefined);
  });
  afterAll(async () => {
    await Promise.allSettled([unitTests, brokenRuleRuns]);
    rmSync(mutantsDirectory, { recursive: true, force: true });
  });

  it('passes promtool check rules', () => {
    runPromtool('check', 'rules', ALERTS_FILE);
  });

  it(
    'passes its unit tests (promtool test rules deploy/prometheus/alerts.test.yml)',
    async () => {
      expectSuccess(await unitTests, ['test', 'rules', ALERT_TESTS_FILE]);
    },
    PROMTOOL_TIMEOUT_MS,
  );

  it('has the alerts the issue asks for, and more', () => {
    expect(alertNames).toEqual(
      expect.arrayContaining([
        'MsbOldestPendingEventTooOld',
        'MsbEventsFailing',
        'MsbDestinationErrorRatioHigh',
        'MsbMailjetCallbackDead',
        'MsbSourceSilent',
        'MsbWorkerDown',
      ]),
    );
    expect(new Set(alertNames).size).toBe(alertNames.length);
  });

  it('has, for every alert, a unit test that fires it and one where it must not fire', () => {
    const tests = (parse(read(ALERT_TESTS_FILE)) as {
      rule_files: string[];
      tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
    });
    expect(tests.rule_files).toEqual(['alerts.yml']);
    const cases = tests.tests.flatMap((group) => group.alert_rule_test ?? []);
    for (const alert of alertNames) {
      const own = cases.filter((c) => c.alertname === alert);
      expect({ alert, fires: own.some((c) => (c.exp_alerts ?? []).length > 0) }).toEqual({ alert, fires: true });
      expect({ alert, staysQuiet: own.some((c) => (c.exp_alerts ?? []).length === 0) }).toEqual({ alert, staysQuiet: true });
    }
    for (const c of cases) expect(alertNames).toContain(c.alertname);
  });

  // A unit test that passes whatever the rule says proves nothing.
  it(
    'fails the firing cases of every alert whose rule never fires, and the quiet cases of every alert whose rule always fires',
    async () => {
      for (const run of await brokenRuleRuns) {
        if (run.status === 0) throw new Error(`the unit tests passed with every rule ${run.name} firing:\n${run.output}`);
        expect({ rules: `${run.name} firing`, failedAlerts: run.failedAlerts }).toEqual({ rules: `${run.name} firing`, failedAlerts: [...alertNames].sort() });
      }
    },
    PROMTOOL_TIMEOUT_MS,
  );

  it('gives every alert a severity, a summary, a description and a runbook_url pointing at its row in the README', () => {
    const readme = read('README.md');
    const operating = /^## Operating it\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? '';
    const rows = [...operating.matchAll(/<a id="(alert-[a-z0-9-]+)"><\/a>/g)].map((match) => match[1]);
    for (const rule of alerts) {
      expect({ alert: rule.alert, severity: rule.labels?.severity }).toEqual({ alert: rule.alert, severity: expect.stringMatching(/^(critical|warning)$/) });
      expect(Object.keys(rule.annotations ?? {}).sort()).toEqual(['description', 'runbook_url', 'summary']);
      expect(rule.annotations!.runbook_url).toBe(`README.md#${anchorOf(rule.alert)}`);
      expect(rows).toContain(anchorOf(rule.alert));
    }
    // and no row for an alert that is gone
    expect(rows.sort()).toEqual(alertNames.map(anchorOf).sort());
  });
});

describe('metrics used by the alerts and the dashboard', () => {
  /** The metric table of docs/METRICS.md, which copies SPEC section 10. */
  const documented = new Map(
    [...read('docs/METRICS.md').matchAll(/^\| `(msb_\w+)` \| (counter|gauge|histogram)\b/gm)].map((match) => [match[1], match[2]]),
  );
  // prom-client's default metrics and Prometheus's own `up`, used by name.
  const outsideTheTable = ['up', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes'];
  const exprs = [...alerts.map((rule) => ({ where: rule.alert, expr: rule.expr })), ...panelExprs.map(({ panel, expr }) => ({ where: panel.title, expr }))];

  it('reads the metric table of docs/METRICS.md', () => {
    expect(documented.size).toBe(11);
  });

  it('uses only metrics of that table, or the named defaults', () => {
    for (const { where, expr } of exprs) {
      for (const [name] of expr.matchAll(/\b(?:msb|process|nodejs)_\w+/g)) {
        const histogram = /^(.*)_(bucket|sum|count)$/.exec(name);
        const known =
          (documented.has(name) && documented.get(name) !== 'histogram') ||
          (histogram !== null && documented.get(histogram[1]) === 'histogram') ||
          outsideTheTable.includes(name);
        expect({ where, name, known }).toEqual({ where, name, known: true });
      }
    }
  });

  // Every api replica reports the same queue, pending age and callback state: summing would
  // multiply them by the number of replicas.
  it('takes the gauges that replicas share with max(), never summed', () => {
    for (const { where, expr } of exprs) {
      for (const match of expr.matchAll(/\b(msb_queue_jobs|msb_oldest_pending_age_seconds|msb_mailjet_callback_up)\b/g)) {
        const before = expr.slice(0, match.index);
        expect({ where, gauge: match[1], inMax: /max(\s+by\s*\([^)]*\))?\s*\(\s*$/.test(before) }).toEqual({ where, gauge: match[1], inMax: true });
      }
    }
  });
});

describe('deploy/prometheus/prometheus.yml', () => {
  it('passes promtool check config --syntax-only', () => {
    runPromtool('check', 'config', '--syntax-only', 'deploy/prometheus/prometheus.yml');
  });

  it('is what the README shows under "Metrics and alerts"', () => {
    const section = /^### Metrics and alerts\n([\s\S]*?)(?=^##)/m.exec(read('README.md'))?.[1] ?? '';
    const shown = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(shown).toBeDefined();
    const config = parse(read('deploy/prometheus/prometheus.yml')) as { scrape_configs: unknown };
    expect(parse(shown!)).toEqual({ scrape_configs: config.scrape_configs });
  });

  // The full check also loads rule_files and the token file; the token exists only in the
  // container (a compose secret), so a copy reads one made here, and nothing else changes.
  it('passes the full promtool check config, rule files included, given a token file', () =>
    withTemporaryDirectory((directory) => {
      const config = parse(read('deploy/prometheus/prometheus.yml')) as { scrape_configs: { authorization: { credentials_file: string } }[] };
      const tokenFile = path.join(directory, 'metrics_token');
      writeFileSync(tokenFile, 'a-metrics-token-for-the-check');
      for (const job of config.scrape_configs) {
        expect(job.authorization.credentials_file).toBe('/run/secrets/metrics_token');
        job.authorization.credentials_file = tokenFile;
      }
      writeFileSync(path.join(directory, 'prometheus.yml'), stringify(config));
      writeFileSync(path.join(directory, 'alerts.yml'), read(ALERTS_FILE));
      const output = promtool(['check', 'config', path.join(directory, 'prometheus.yml')]);
      expectSuccess(output, ['check', 'config', 'prometheus.yml (with a token file)']);
      expect(output.output).toContain(`SUCCESS: ${alerts.length} rules found`);
    }));
});

describe('deploy/grafana/mailjet-segment-bridge.json', () => {
  it('queries valid PromQL in every panel (checked by promtool as recording rules)', () =>
    withTemporaryDirectory((directory) => {
      // Grafana's variables replaced by what they stand for.
      const rules = panelExprs.map(({ panel, expr, refId }) => ({
        record: `dashboard:panel_${panel.id}_${refId}`,
        expr: expr.replaceAll('$__rate_interval', '1m').replaceAll('$source', '.*'),
      }));
      expect(rules.length).toBeGreaterThan(0);
      const file = path.join(directory, 'dashboard-queries.yml');
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
      runPromtool('check', 'rules', file);
    }));

  it('shows ingest by type, forwards, failures by reason, queue depth, oldest pending age, destination latency percentiles and process memory', () => {
    const all = panelExprs.map(({ expr }) => expr);
    const some = (pattern: RegExp) => expect({ pattern: pattern.source, found: all.some((expr) => pattern.test(expr)) }).toEqual({ pattern: pattern.source, found: true });
    some(/sum by \(type\) \(rate\(msb_events_received_total/);
    some(/rate\(msb_events_forwarded_total/);
    some(/sum by \([^)]*reason[^)]*\) \(rate\(msb_events_failed_total/);
    some(/max by \(state\) \(msb_queue_jobs\)/);
    some(/msb_oldest_pending_age_seconds/);
    for (const quantile of ['0.5', '0.95', '0.99']) some(new RegExp(`histogram_quantile\\(${quantile}, sum by \\(le\\) \\(rate\\(msb_destination_request_duration_seconds_bucket`));
    some(/process_resident_memory_bytes/);
  });

  it('reads Prometheus through its data source variable, with unique panel ids and no panels on top of each other', () => {
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    const taken = new Map<string, string>();
    for (const panel of dashboard.panels) {
      expect({ panel: panel.title, datasource: panel.datasource }).toEqual({ panel: panel.title, datasource: { type: 'prometheus', uid: '${datasource}' } });
      const { x, y, w, h } = panel.gridPos;
      expect(x + w).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++) {
        for (let column = x; column < x + w; column++) {
          const cell = `${row},${column}`;
          expect({ cell, taken: taken.get(cell) }).toEqual({ cell, taken: undefined });
          taken.set(cell, panel.title);
        }
      }
    }
  });
});
