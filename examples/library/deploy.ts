import { type DeployerContext, runTick } from '@omni/deploy';

/** What one deploy round tells the team: whether it went well, and a line per service that changed. */
export interface RoundSummary {
  ok: boolean;
  lines: string[];
}

/**
 * One deploy round on this host: a deployer tick (read the manifest, pull, restart what changed behind its
 * health gate, roll back what fails), summarised for a chat channel. Unchanged services are left out.
 */
export async function deployRound(ctx: DeployerContext): Promise<RoundSummary> {
  const report = await runTick(ctx);
  const host = ctx.settings.host;
  const lines = report.results
    .filter((r) => r.outcome !== 'unchanged')
    .map((r) => `${host}: ${r.name} ${r.outcome}${r.reason ? ` (${r.reason})` : ''}`);
  return {
    ok: report.outcome === 'applied' || report.outcome === 'unchanged',
    lines: lines.length > 0 ? lines : [`${host}: nothing to do`],
  };
}
