import { ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parse } from 'yaml';
import { waitFor } from '../support/wait-for';

const ROOT = path.join(__dirname, '../..');

/**
 * The argv that a container of the image runs for `service`, as docker-compose.yml gives it, to be
 * run from the project root (the image's WORKDIR has the same layout). Should it go back to
 * `npm run ...`, the suite runs that too, and the SIGTERM fault sees what it breaks.
 */
export function imageCommand(service: 'api' | 'worker'): string[] {
  const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
    services: Record<string, { command?: unknown }>;
  };
  const command = compose.services[service]?.command;
  if (!Array.isArray(command) || command.length === 0) throw new Error(`docker-compose.yml: ${service} has no exec-form command`);
  return command.map(String);
}

/** A process as /proc knows it; the start time tells it from a later process that got the same pid. */
interface ProcessIdentity {
  pid: number;
  startTime: string;
}

/** pid, parent pid, state and start time from /proc/<pid>/stat, or undefined once it is gone. */
function procStat(pid: number): { parent: number; state: string; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ... starttime(22nd)": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], parent: Number(fields[1]), startTime: fields[19] };
  } catch {
    return undefined;
  }
}

/** `pid` and every process below it. */
function processTree(pid: number): ProcessIdentity[] {
  const children = new Map<number, ProcessIdentity[]>();
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    const stat = procStat(Number(entry));
    if (stat) children.set(stat.parent, [...(children.get(stat.parent) ?? []), { pid: Number(entry), startTime: stat.startTime }]);
  }
  const root = procStat(pid);
  const tree: ProcessIdentity[] = [];
  for (let next = root ? [{ pid, startTime: root.startTime }] : []; next.length > 0; next = next.flatMap((p) => children.get(p.pid) ?? [])) {
    tree.push(...next);
  }
  return tree;
}

function isRunning(identity: ProcessIdentity): boolean {
  const stat = procStat(identity.pid);
  return stat !== undefined && stat.startTime === identity.startTime && stat.state !== 'Z';
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '?';
  }
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The api or the worker as production runs it: the image's command, in a process of its own. */
export class ProductProcess {
  private child?: ChildProcess;
  private exited?: Promise<ProcessExit>;
  /** The started process and those it started, once it answered. */
  private tree: ProcessIdentity[] = [];
  readonly log: string[] = [];

  private constructor(
    readonly kind: 'api' | 'worker',
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  static async start(kind: 'api' | 'worker', env: Record<string, string>): Promise<ProductProcess> {
    const port = await freePort();
    const product = new ProductProcess(kind, port, {
      ...env,
      ...(kind === 'api' ? { PORT: String(port), HOST: '127.0.0.1' } : { WORKER_HEALTH_PORT: String(port), HOST: '127.0.0.1' }),
    });
    await product.start();
    return product;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    const [file, ...args] = imageCommand(this.kind);
    const child = spawn(file, args, {
      cwd: ROOT,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const keep = (chunk: Buffer) => {
      this.log.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (this.log.length > 500) this.log.splice(0, this.log.length - 500);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    await waitFor(`${this.kind} on port ${this.port} to answer /health/live`, async () => {
      if (!this.running) throw new Error(`${this.kind} exited: ${this.log.slice(-5).join(' | ')}`);
      const response = await fetch(`${this.url}/health/live`);
      return response.ok;
    }, { timeoutMs: 30000, intervalMs: 100 });
    this.tree = processTree(child.pid!);
  }

  /**
   * Sends a signal and waits for the started process to end. SIGTERM goes to that process alone,
   * as `docker stop` sends it to the container's command; SIGKILL goes to every process it
   * started too, as `docker kill` or the OOM killer ends the whole container.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<ProcessExit> {
    if (signal === 'SIGKILL') {
      const targets = [...this.tree, ...(this.running ? processTree(this.child!.pid!) : [])].filter(isRunning);
      for (const target of targets) {
        try {
          process.kill(target.pid, 'SIGKILL');
        } catch {
          // ended meanwhile
        }
      }
    }
    if (!this.running) return this.exited ?? { code: null, signal: null };
    if (signal !== 'SIGKILL') this.child!.kill(signal);
    return this.exited!;
  }

  /** Processes that the started one started and that outlive it (npm's node, say), with their command lines. */
  leftovers(): string[] {
    return this.tree
      .filter((p) => p.pid !== this.child?.pid && isRunning(p))
      .map((p) => `${p.pid} ${commandLine(p.pid)}`);
  }

  async restart(): Promise<void> {
    await this.stop('SIGKILL');
    await this.start();
  }

  /** Resident memory, from /proc. */
  rssBytes(): number {
    const status = readFileSync(`/proc/${this.child!.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  }
}
