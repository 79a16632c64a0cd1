import { DeployError } from '../errors.js';
import { createShell } from '../shell/shell.js';
import type { Shell } from '../shell/types.js';

/**
 * One established TCP connection from this host to a local port (the client side: Caddy's connection to an
 * upstream), with the kernel's timing of its last data (`tcp_info`).
 */
export interface UpstreamConnection {
  /** The connecting side, e.g. `127.0.0.1:41234`. */
  local: string;
  /** The port's side, e.g. `127.0.0.1:8000`. */
  remote: string;
  /** Milliseconds since data was last sent on it (a request, or part of one). */
  lastSentMs: number;
  /** Milliseconds since data was last received on it (a response, or part of one). */
  lastReceivedMs: number;
  /** Segments carrying data sent and received so far (`data_segs_out`, `data_segs_in`). */
  segmentsOut: number;
  segmentsIn: number;
}

/**
 * Who is connected to a local port: how a blue/green update sees that Caddy has nothing left in flight to the
 * instance it switched away from. Through a Shell (`ss`), so tests can point it at a booted container.
 */
export interface Connections {
  /** The established connections whose remote end is `port` on this host (any address). */
  established(port: number): Promise<UpstreamConnection[]>;
}

/**
 * How long a connection must have received nothing before it can count as idle (see {@link busyConnections}):
 * a response still streaming with pauses shorter than this keeps its instance from being stopped.
 */
export const QUIET_MS = 1000;

/**
 * The connections that still carry a request: those that received data within `quietMs` (an answer still
 * arriving), those that sent data after they last received some (a request awaiting its answer, or a body being
 * uploaded), and, when both happened within the same clock tick of the kernel (a fresh connection, or a pooled
 * one reused the moment its last answer arrived), those that sent more data segments than they received. What
 * remains are connections a proxy keeps in its pool after their last answer: Caddy 2.6 keeps the old
 * configuration's idle upstream connections open until the upstream or its idle timeout closes them (seen:
 * several seconds), so counting every established connection would wait for nothing. Pure.
 */
export function busyConnections(
  connections: readonly UpstreamConnection[],
  quietMs: number = QUIET_MS,
): UpstreamConnection[] {
  return connections.filter(
    (c) =>
      c.lastReceivedMs < quietMs ||
      c.lastSentMs < c.lastReceivedMs ||
      (c.lastSentMs === c.lastReceivedMs && c.segmentsOut > c.segmentsIn),
  );
}

/**
 * The connections in `ss -H -t -n -i state established` output: a line `Recv-Q Send-Q Local Peer` per
 * connection, then its indented `tcp_info` line, where `lastsnd:`, `lastrcv:`, `data_segs_out:` and `data_segs_in:`
 * are left out when 0. Pure.
 */
export function parseSsConnections(text: string): UpstreamConnection[] {
  const out: UpstreamConnection[] = [];
  let current: UpstreamConnection | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (!/^\s/.test(line)) {
      const fields = line.trim().split(/\s+/);
      // With a state filter ss prints no State column: Recv-Q Send-Q Local Peer [Process].
      if (fields.length < 4 || !/^\d+$/.test(fields[0] as string)) continue;
      current = {
        local: fields[2] as string,
        remote: fields[3] as string,
        lastSentMs: 0,
        lastReceivedMs: 0,
        segmentsOut: 0,
        segmentsIn: 0,
      };
      out.push(current);
    } else if (current) {
      const field = (name: string) => Number(new RegExp(`(?:^|\\s)${name}:(\\d+)`).exec(line)?.[1] ?? 0);
      current.lastSentMs = field('lastsnd');
      current.lastReceivedMs = field('lastrcv');
      current.segmentsOut = field('data_segs_out');
      current.segmentsIn = field('data_segs_in');
    }
  }
  return out;
}

/** The real {@link Connections}: `ss` from iproute2. */
export function createConnections(shell: Shell = createShell()): Connections {
  return {
    async established(port) {
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new DeployError('HOST_CHECK', `connections: expected a port from 1 to 65535, found ${port}`);
      const args = ['-H', '-t', '-n', '-i', 'state', 'established', '(', 'dport', '=', `:${port}`, ')'];
      const r = await shell.run('ss', args, { timeoutMs: 10_000 });
      if (r.exitCode === 127)
        throw new DeployError('HOST_CHECK', 'ss not found: install the package iproute2 (it provides ss)');
      if (r.exitCode !== 0)
        throw new DeployError(
          'HOST_CHECK',
          `ss ${args.join(' ')}: ${r.stderr.trim() || `exit status ${r.exitCode ?? r.signal}`}`,
        );
      return parseSsConnections(r.stdout);
    },
  };
}
