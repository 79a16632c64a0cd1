/** A rendered unit file: its name (e.g. `deploy-web.service`) and its exact text. */
export interface UnitFile {
  name: string;
  text: string;
}

/**
 * systemd's `ActiveState` values (see `systemctl --state=help`). Deliberately open (`string & {}`): systemd has
 * added states over its releases (`refreshing` is one) and may add more, and a state this code does not know
 * must reach the health gate as data (not healthy) rather than be mistyped.
 */
export type ActiveState =
  | 'active'
  | 'reloading'
  | 'inactive'
  | 'failed'
  | 'activating'
  | 'deactivating'
  | 'maintenance'
  | (string & {});

/**
 * systemd's `LoadState` values; `not-found` means no unit file is known under that name. Open for the same
 * reason as {@link ActiveState}: the list grew over systemd's releases (`bad-setting`, `merged`).
 */
export type LoadState =
  | 'stub'
  | 'loaded'
  | 'not-found'
  | 'bad-setting'
  | 'error'
  | 'merged'
  | 'masked'
  | (string & {});

/**
 * What `systemctl show` says about one unit, typed. Read after a start to tell a running service
 * (`active`/`running`) from one that is crash-looping (`activating`/`auto-restart`, `nRestarts` growing) or
 * dead (`failed`, `result` and `execMainStatus` say why).
 */
export interface UnitStatus {
  unit: string;
  loadState: LoadState;
  activeState: ActiveState;
  /** Type-specific state, e.g. `running`, `dead`, `auto-restart`, `failed`. */
  subState: string;
  /** How the last run ended: `success`, `exit-code`, `signal`, `core-dump`, `timeout`, ... */
  result: string;
  /** Exit status of the last main process (203 = the program could not be executed). */
  execMainStatus: number;
  /** Automatic restarts since the unit was last started by hand. */
  nRestarts: number;
  /** PID of the main process; 0 when none runs. */
  mainPid: number;
  /** True when the unit file changed on disk since systemd loaded it (a daemon-reload is due). */
  needDaemonReload: boolean;
  /** Enablement, e.g. `enabled`, `enabled-runtime`, `disabled`, `static`; empty when there is no unit file. */
  unitFileState: string;
}

/**
 * What the deployer needs from systemd. Every method refuses (with `SYSTEMD_UNIT_NAME`) a unit name that is not
 * one of the deployer's own (`<prefix><service>.service`), so no bug or hostile input can stop `sshd.service`
 * or write outside the units directory. A failed `systemctl` call throws `SYSTEMD_COMMAND` naming the call,
 * the unit, the exit status and systemd's message.
 */
export interface Systemd {
  /** The directory unit files are installed in, as systemd sees it (e.g. `/run/systemd/system`). */
  readonly unitsDir: string;
  /** Names of the deployer's unit files present in the units directory, sorted. */
  listUnits(): Promise<string[]>;
  /** The text of an installed unit file, or `undefined` when it is not installed. */
  readUnit(name: string): Promise<string | undefined>;
  /** Writes a unit file atomically (a reader sees the old or the new text, never a mix). Needs a daemon-reload. */
  installUnit(unit: UnitFile): Promise<void>;
  /** Disables and deletes a unit file; succeeds when it is not installed. Stop it first; needs a daemon-reload. */
  removeUnit(name: string): Promise<void>;
  /** `systemctl daemon-reload`: systemd rereads every unit file. */
  daemonReload(): Promise<void>;
  /** Starts a unit; with `Type=exec` this fails when the program cannot be executed. */
  start(name: string): Promise<void>;
  /** Restarts a unit (starts it when it is stopped). */
  restart(name: string): Promise<void>;
  /** Stops a unit; succeeds when it is not running or not loaded. */
  stop(name: string): Promise<void>;
  /** Enables a unit for boot (`--runtime` when the units directory is under `/run`). */
  enable(name: string): Promise<void>;
  /** Undoes {@link Systemd.enable}; succeeds when it was not enabled. */
  disable(name: string): Promise<void>;
  /** Reads the unit's state (works for units that are not loaded: `loadState` is then `not-found`). */
  status(name: string): Promise<UnitStatus>;
}
