import type { Nix } from '../nix/types.js';
import type { Clock } from '../runtime/clock.js';
import type { EventSink } from '../runtime/events.js';
import type { ManifestStore } from '../s3/manifest-store.js';
import type { ObjectStore } from '../s3/object-store.js';
import type { Shell } from '../shell/types.js';

/** Everything the push operations need, injected: real adapters in the bin, fakes in tests. */
export interface PushContext {
  /** The manifest, its archives and the hosts' status. */
  manifests: ManifestStore;
  /** The binary cache bucket closures are uploaded to; `undefined` when the build tool uploads itself. */
  cache: ObjectStore | undefined;
  nix: Nix;
  /** Runs the build command and git. */
  shell: Shell;
  clock: Clock;
  onEvent: EventSink;
  /** Directory every `envFile` must be inside (as on the hosts). */
  secretsDir: string;
}
