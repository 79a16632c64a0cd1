/**
 * Several booted test hosts that share one bucket, as a fleet does: a directory of this machine bound read-write
 * into every host (a `file://` bucket), and s3rver reachable from every host over a network the fleet makes
 * itself, so the S3 path is real. Each host keeps its own network namespace (its own loopback: a Caddy on :8080
 * and a deployer each); besides, it gets a veth pair into the fleet's network namespace, where a bridge joins
 * them and s3rver listens:
 *
 *   host h1 [fleet0 10.77.0.11] ─veth─┐
 *   host h2 [fleet0 10.77.0.12] ─veth─┤ bridge fleet0 10.77.0.1, s3rver :4569  (the fleet's own netns)
 *   host h3 [fleet0 10.77.0.13] ─veth─┘
 *
 * The fleet's namespace is held by a `sleep` started with `unshare -n` (no named netns, nothing mounted on
 * this machine): when it ends, the bridge and every veth go with it. Nothing is added to this machine's own
 * network, and nothing is sent to addresses outside the fleet's. `fleet.exec` runs a program of this machine
 * inside the fleet's network (push, for instance: it reaches s3rver and the hosts' addresses).
 *
 *   const fleet = await bootFleet({ hosts: ['h1', 'h2', 'h3'], bucket: 'omni-fleet' });
 *   await fleet.hosts[0].run('curl', ['-s', `${fleet.s3}/`]);
 *   await fleet.stop();
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createShell } from '../../src/shell/index.js';
import type { CommandResult, RunOptions, Shell } from '../../src/shell/types.js';
import { type BootedHost, bootHost, type HostOptions } from './boot-host.js';

/** The fleet's subnet: the bridge is `.1`, host `i` (from 0) is `.(11 + i)`. Private to the fleet's namespaces. */
const SUBNET = '10.77.0';
const S3_PORT = 4569;
const REPO = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const TSX = `file://${REPO}/node_modules/tsx/dist/loader.mjs`;

/** Options of {@link bootFleet}. */
export interface FleetOptions extends Omit<HostOptions, 'hostname' | 'files' | 'bind'> {
  /** The hosts' names. */
  hosts: readonly string[];
  /** The bucket s3rver serves. */
  bucket: string;
  /** Files to place in each host before it boots (see `HostOptions.files`), by host name. */
  files?: (host: string) => Readonly<Record<string, string>>;
}

/** One host of a fleet: a booted host and its address on the fleet's network. */
export interface FleetHost extends BootedHost {
  readonly address: string;
}

/** A running fleet. */
export interface Fleet {
  readonly hosts: readonly FleetHost[];
  /** A directory of this machine bound read-write into every host at the same path (removed by `stop`). */
  readonly shared: string;
  /** s3rver's endpoint, e.g. `http://10.77.0.1:4569`: reachable from every host and from {@link Fleet.exec}. */
  readonly s3: string;
  /** The bucket s3rver serves. */
  readonly bucket: string;
  /** A shell whose commands run on this machine inside the fleet's network namespace (its files are this machine's). */
  readonly shell: Shell;
  exec(command: string, args?: readonly string[], options?: RunOptions): Promise<CommandResult>;
  /** Stops the hosts and s3rver, drops the fleet's network, deletes the shared directory. Safe to call twice. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `ip` (or anything) in the network namespace of `pid`; throws with its output on failure. */
async function inNetns(pid: number, args: string[]): Promise<void> {
  const r = await createShell().run('nsenter', ['-t', String(pid), '-n', ...args]);
  if (r.exitCode !== 0) throw new Error(`nsenter -t ${pid} -n ${args.join(' ')}: ${r.stderr || r.stdout}`);
}

/** A child process that ends with this one (parent-death signal), started detached and unreferenced. */
function spawnTied(args: string[], signal: 'TERM' | 'KILL', env?: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn('setpriv', ['--pdeathsig', signal, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(env ? { env } : {}),
  });
  child.unref();
  return child;
}

/**
 * Boots a fleet: the network namespace and its bridge, s3rver in it, the hosts (in parallel), a veth pair per
 * host, and waits until every host reaches s3rver. Must run as root. On failure, what was started is stopped.
 */
export async function bootFleet(options: FleetOptions): Promise<Fleet> {
  const shared = await mkdtemp(join(options.baseDir ?? '/var/tmp', 'omni-fleet-shared.'));
  const started: { hosts: FleetHost[]; children: ChildProcess[] } = { hosts: [], children: [] };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(started.hosts.map((h) => h.stop()));
    for (const child of started.children.reverse()) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(shared, { recursive: true, force: true });
  };
  try {
    // The fleet's network namespace, held by a sleep that dies with this process.
    const holder = spawnTied(['unshare', '-n', 'sleep', 'infinity'], 'KILL');
    started.children.push(holder);
    const netns = holder.pid as number;
    for (let i = 0; ; i++) {
      // unshare execs sleep once the namespace exists: same pid, new comm.
      const comm = await createShell()
        .run('cat', [`/proc/${netns}/comm`])
        .then((r) => r.stdout.trim());
      if (comm === 'sleep') break;
      if (i > 100) throw new Error('the fleet network namespace did not come up');
      await sleep(20);
    }
    await inNetns(netns, ['ip', 'link', 'set', 'lo', 'up']);
    await inNetns(netns, ['ip', 'link', 'add', 'fleet0', 'type', 'bridge']);
    await inNetns(netns, ['ip', 'addr', 'add', `${SUBNET}.1/24`, 'dev', 'fleet0']);
    await inNetns(netns, ['ip', 'link', 'set', 'fleet0', 'up']);

    const s3dir = join(shared, '.s3rver');
    const server = spawnTied(
      [
        'nsenter',
        '-t',
        String(netns),
        '-n',
        process.execPath,
        '--import',
        TSX,
        join(REPO, 'test/host/fixtures/s3rver.ts'),
        s3dir,
        `${SUBNET}.1`,
        String(S3_PORT),
        options.bucket,
      ],
      'TERM',
    );
    started.children.push(server);
    const ready = new Promise<void>((resolve, reject) => {
      let out = '';
      server.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('ready')) resolve();
      });
      let err = '';
      server.stderr?.on('data', (chunk: Buffer) => {
        err += chunk.toString();
      });
      server.once('exit', (code) => reject(new Error(`s3rver exited ${code}: ${err}`)));
    });

    const { hosts, bucket: _bucket, files, ...hostOptions } = options;
    const booted = await Promise.all(
      hosts.map((hostname) =>
        bootHost({ ...hostOptions, hostname, bind: [shared], ...(files ? { files: files(hostname) } : {}) }),
      ),
    );
    started.hosts.push(...booted.map((h, i) => Object.assign(h, { address: `${SUBNET}.${11 + i}` })));
    for (const [i, host] of started.hosts.entries()) {
      // The host's end is created straight inside its namespace: nothing appears on this machine's network.
      const outer = `vf${i}`;
      await inNetns(netns, [
        'ip',
        'link',
        'add',
        outer,
        'type',
        'veth',
        'peer',
        'name',
        'fleet0',
        'netns',
        String(host.pid),
      ]);
      await inNetns(netns, ['ip', 'link', 'set', outer, 'master', 'fleet0']);
      await inNetns(netns, ['ip', 'link', 'set', outer, 'up']);
      await host.run('ip', ['addr', 'add', `${host.address}/24`, 'dev', 'fleet0']);
      await host.run('ip', ['link', 'set', 'fleet0', 'up']);
    }
    await ready;
    const s3 = `http://${SUBNET}.1:${S3_PORT}`;
    for (const host of started.hosts) {
      for (
        let i = 0;
        (await host.exec('curl', ['-s', '-m', '2', '-o', '/dev/null', `${s3}/`])).exitCode !== 0;
        i++
      ) {
        if (i > 50) throw new Error(`test host ${host.hostname} does not reach s3rver at ${s3}`);
        await sleep(100);
      }
    }
    const shell = createShell({ prefix: ['nsenter', '-t', String(netns), '-n'] });
    return {
      hosts: started.hosts,
      shared,
      s3,
      bucket: options.bucket,
      shell,
      exec: (command, args = [], run = {}) => shell.run(command, args, run),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
