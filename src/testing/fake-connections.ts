import type { Connections, UpstreamConnection } from '../deployer/connections.js';

/** A {@link Connections} answering from a table the test controls. */
export interface FakeConnections extends Connections {
  /** Sets the connections to a port (default for every port: none). */
  set(port: number, connections: readonly UpstreamConnection[]): void;
  /**
   * Makes each of the next reads of `port` see `busy[i]` connections with a request in flight (then none):
   * e.g. `[2, 1]` drains after two reads.
   */
  drainAfter(port: number, busy: readonly number[]): void;
  /** The ports asked about, in order. */
  readonly calls: number[];
}

/** A connection that awaits an answer (sent after it last received): busy for a drain. */
export function busyConnection(port: number, i = 0): UpstreamConnection {
  return {
    local: `127.0.0.1:${40000 + i}`,
    remote: `127.0.0.1:${port}`,
    lastSentMs: 5,
    lastReceivedMs: 50,
    segmentsOut: 1,
    segmentsIn: 0,
  };
}

/** Creates a {@link FakeConnections}. */
export function createFakeConnections(): FakeConnections {
  const table = new Map<number, readonly UpstreamConnection[]>();
  const scripts = new Map<number, number[]>();
  const calls: number[] = [];
  return {
    calls,
    set(port, connections) {
      scripts.delete(port);
      table.set(port, [...connections]);
    },
    drainAfter(port, busy) {
      scripts.set(port, [...busy]);
    },
    async established(port) {
      calls.push(port);
      const script = scripts.get(port);
      if (script?.length) {
        const n = script.shift() as number;
        return Array.from({ length: n }, (_, i) => busyConnection(port, i));
      }
      return [...(table.get(port) ?? [])];
    },
  };
}
