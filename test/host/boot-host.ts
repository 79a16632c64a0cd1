/**
 * A disposable, really booted systemd host for tests: systemd as PID 1 inside systemd-nspawn, over a
 * throwaway overlay of this machine's root (so node, nix, caddy and this checkout are all inside), with its
 * own network namespace (its loopback and ports are its own). Boots in a few seconds.
 *
 *   const host = await bootHost({ hostname: 'biz' });
 *   await host.exec('systemctl', ['is-system-running']);
 *   await host.stop();
 *
 * Everything it starts lives in one private mount namespace (the overlay and a tmpfs /run are mounted there,
 * never on this machine), so no mount outlives the container. `stop()` shuts the container down and deletes its
 * files; if the test process dies first, the kernel sends the container SIGTERM (parent-death signal) and the
 * next `bootHost` deletes the leftovers. It signals only the processes it started.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { createShell } from '../../src/shell/index.js';
import type { CommandResult, RunOptions, Shell } from '../../src/shell/types.js';

/** Options of {@link bootHost}. */
export interface HostOptions {
  /** The container's host name (written to its /etc/hostname). Default `testhost`. */
  hostname?: string;
  /** Units to mask before boot (e.g. `postgresql.service`), to boot faster or keep a service out. */
  mask?: readonly string[];
  /** Files to place in the container before it boots: absolute path inside → content. */
  files?: Readonly<Record<string, string>>;
  /** Give up booting after this long. Default 60 s. */
  bootTimeoutMs?: number;
  /** The systemd-nspawn program. Default: `systemd-nspawn` on PATH. */
  nspawn?: string;
  /**
   * Directories of this machine bound read-only at the same path inside (e.g. the repository, wherever it was
   * cloned: the overlay shows only the root filesystem, and the host's systemd mounts a tmpfs over /tmp;
   * mask `tmp.mount` too when binding under /tmp).
   */
  bindReadOnly?: readonly string[];
  /**
   * Directories of this machine bound read-write at the same path inside: several hosts given the same one share
   * it (a `file://` bucket they all read and write).
   */
  bind?: readonly string[];
  /** Where to create the host's directory. Default `/var/tmp`. */
  baseDir?: string;
}

/** A running container. Every path argument is a path inside it. */
export interface BootedHost {
  readonly hostname: string;
  /** The container's PID 1 (its systemd) as this machine sees it. */
  readonly pid: number;
  /** This machine's path to the container's `/` (`/proc/<pid>/root`), e.g. for an adapter's `rootDir`. */
  readonly root: string;
  /** A {@link Shell} whose commands run inside the container (all its namespaces, a clean environment). */
  readonly shell: Shell;
  /** Runs one program inside the container. A non-zero exit is a result, not an exception. */
  exec(command: string, args?: readonly string[], options?: RunOptions): Promise<CommandResult>;
  /** Like {@link BootedHost.exec} but throws, with the output, unless the program exits 0. Returns stdout. */
  run(command: string, args?: readonly string[], options?: RunOptions): Promise<string>;
  /** Writes a file inside the container (parents created), owned by root, with `mode` (default 0644). */
  writeFile(path: string, content: string, mode?: number): Promise<void>;
  /** Reads a file inside the container as UTF-8. */
  readFile(path: string): Promise<string>;
  /** The journal of one unit inside the container, message text only (for failure messages). */
  journal(unit: string): Promise<string>;
  /** Shuts the container down and deletes its files. Safe to call twice; never throws for a dead container. */
  stop(): Promise<void>;
}

/** The message when systemd-nspawn is missing: it names the Debian package. */
export const MISSING_NSPAWN =
  'systemd-nspawn not found: the booted test host needs the Debian package systemd-container (apt-get install -y systemd-container)';

const CLEAN_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  HOME: '/root',
  // A bash started without SHLVL and with a socket as stdin takes itself for an rsh session and sources
  // ~/.bashrc (here: pyenv init, 250 ms, and a different PATH) before every command.
  SHLVL: '1',
};
const DIR_PREFIX = 'omni-host.';
const OWNER_FILE = 'owner.pid';

/** Hosts started by this process that are not stopped yet, for the exit-time safety net. */
const live = new Set<{ nspawnPid: number; initPid: number }>();
let exitHookInstalled = false;

/** Finds `program` on PATH (or checks an absolute path); `undefined` when it is not executable. */
function which(program: string): string | undefined {
  const candidates = program.includes('/')
    ? [program]
    : (process.env.PATH ?? '').split(delimiter).map((d) => join(d, program));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes host directories whose creating process is gone (a test run that was killed). */
function removeStaleHosts(baseDir: string): void {
  for (const name of readdirSync(baseDir)) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(baseDir, name);
    let owner = Number.NaN;
    try {
      owner = Number(readFileSync(join(dir, OWNER_FILE), 'utf8'));
    } catch {}
    // Without an owner file the directory may be another run's, half created: leave it.
    if (Number.isInteger(owner) && owner > 0 && !isAlive(owner))
      rmSync(dir, { recursive: true, force: true });
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The first child of `pid` (the container's systemd is the only child of systemd-nspawn). */
function childOf(pid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Boots a disposable systemd host. Fails with {@link MISSING_NSPAWN} when systemd-nspawn is not installed and
 * with the console output when the container does not boot. Must run as root.
 */
export async function bootHost(options: HostOptions = {}): Promise<BootedHost> {
  const hostname = options.hostname ?? 'testhost';
  const nspawn = which(options.nspawn ?? 'systemd-nspawn');
  if (!nspawn) throw new Error(MISSING_NSPAWN);
  for (const tool of ['unshare', 'setpriv', 'nsenter'])
    if (!which(tool)) throw new Error(`${tool} not found: install the Debian package util-linux`);
  if (process.getuid?.() !== 0) throw new Error('bootHost needs root (mount and systemd-nspawn)');

  const baseDir = options.baseDir ?? '/var/tmp';
  removeStaleHosts(baseDir);
  const dir = await mkdtemp(join(baseDir, DIR_PREFIX));
  await writeFile(join(dir, OWNER_FILE), String(process.pid));
  const upper = join(dir, 'upper');
  await Promise.all(
    ['upper/etc/systemd/system', 'work', 'root'].map((d) => mkdir(join(dir, d), { recursive: true })),
  );
  // Files placed in the overlay's upper layer before boot appear inside as if they were on the root.
  await writeFile(join(upper, 'etc/hostname'), `${hostname}\n`);
  for (const unit of options.mask ?? []) await symlink('/dev/null', join(upper, 'etc/systemd/system', unit));
  for (const [path, content] of Object.entries(options.files ?? {})) {
    await mkdir(dirname(join(upper, path)), { recursive: true });
    await writeFile(join(upper, path), content);
  }

  const script = [
    'set -e',
    'dir=$1 nspawn=$2 name=$3',
    'shift 3',
    'mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"',
    'mount -t tmpfs tmpfs /run',
    // nspawn refuses to run without a system bus unless told to keep its unit and not register.
    'exec "$nspawn" --quiet --register=no --link-journal=no --keep-unit --private-network --hostname="$name" -D "$dir/root" "$@" -b',
  ].join('\n');
  const consoleLog = join(dir, 'console.log');
  const out = openSync(consoleLog, 'w');
  let child: ChildProcess;
  try {
    // setpriv: the container gets SIGTERM (an orderly shutdown) when this process dies without stopping it.
    // unshare: a private mount namespace, so the overlay and /run tmpfs never appear on this machine.
    child = spawn(
      'setpriv',
      [
        '--pdeathsig',
        'TERM',
        'unshare',
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        script,
        'sh',
        dir,
        nspawn,
        hostname,
        ...(options.bindReadOnly ?? []).map((path) => `--bind-ro=${path}`),
        ...(options.bind ?? []).map((path) => `--bind=${path}`),
      ],
      { detached: true, stdio: ['ignore', out, out], env: CLEAN_ENV },
    );
  } finally {
    closeSync(out);
  }
  const nspawnPid = child.pid as number;
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });
  child.unref();

  const record = { nspawnPid, initPid: 0 };
  live.add(record);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      // Synchronous last resort: the orderly shutdown continues without us.
      for (const host of live) if (isAlive(host.nspawnPid)) process.kill(host.nspawnPid, 'SIGTERM');
    });
  }

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      try {
        process.kill(nspawnPid, 'SIGTERM');
      } catch {}
      await Promise.race([exitedPromise, sleep(15_000)]);
    }
    if (!exited) {
      // Killing PID 1 of the container's PID namespace kills every process in it; nspawn then exits.
      if (record.initPid && isAlive(record.initPid)) process.kill(record.initPid, 'SIGKILL');
      await Promise.race([exitedPromise, sleep(5_000)]);
      if (!exited && isAlive(nspawnPid)) process.kill(nspawnPid, 'SIGKILL');
      await Promise.race([exitedPromise, sleep(5_000)]);
    }
    live.delete(record);
    // Only this machine's view of dir/root (an empty directory) is deleted: the overlay was never mounted here.
    await rm(dir, { recursive: true, force: true });
  };

  const bootFailure = async (what: string) => {
    const log = existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8').slice(-3000) : '';
    await stop();
    return new Error(`test host ${hostname}: ${what}\n--- console ---\n${log}`);
  };

  const deadline = Date.now() + (options.bootTimeoutMs ?? 60_000);
  let initPid: number | undefined;
  while (!initPid) {
    if (exited) throw await bootFailure('systemd-nspawn exited during boot');
    if (Date.now() > deadline) throw await bootFailure('no container init process appeared');
    const pid = childOf(nspawnPid);
    if (pid && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd') initPid = pid;
    else await sleep(50);
  }
  record.initPid = initPid;

  const shell = createShell({ env: CLEAN_ENV, prefix: ['nsenter', '-t', String(initPid), '-a'] });
  const exec = (command: string, args: readonly string[] = [], run: RunOptions = {}) =>
    shell.run(command, args, run);
  const runChecked = async (command: string, args: readonly string[] = [], run: RunOptions = {}) => {
    const r = await exec(command, args, run);
    if (r.exitCode !== 0)
      throw new Error(
        `in test host ${hostname}: ${[command, ...args].join(' ')} exited ${r.exitCode ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
      );
    return r.stdout;
  };

  // `--wait` returns once the boot finished: "running", or "degraded" when some unit of the host failed.
  while (true) {
    if (exited) throw await bootFailure('systemd-nspawn exited during boot');
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw await bootFailure('boot did not finish in time');
    const r = await exec('systemctl', ['is-system-running', '--wait'], { timeoutMs: remaining });
    const state = r.stdout.trim();
    if (state === 'running' || state === 'degraded') break;
    await sleep(100);
  }

  const root = `/proc/${initPid}/root`;
  return {
    hostname,
    pid: initPid,
    root,
    shell,
    exec,
    run: runChecked,
    async writeFile(path, content, mode = 0o644) {
      // Written by a process inside the container, so symlinks on the way resolve as the container sees them.
      await runChecked('mkdir', ['-p', '--', dirname(path)]);
      await runChecked('sh', ['-c', 'cat > "$1" && chmod "$2" "$1"', 'sh', path, mode.toString(8)], {
        input: content,
      });
    },
    async readFile(path) {
      return runChecked('cat', ['--', path]);
    },
    async journal(unit) {
      return (await exec('journalctl', ['--no-pager', '-o', 'cat', '-u', unit])).stdout;
    },
    stop,
  };
}
