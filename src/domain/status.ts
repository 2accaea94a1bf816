import type { NightlyCandidate } from './nightly';
import { selectForNightly } from './nightly';
import { backupModes } from './protocol';
import { parseRunDate } from './names';
import type { VerificationMark } from './verification';

/**
 * The fleet's backup status for operators and monitoring: one entry per VM, and whether
 * every VM that should be backed up has a good backup within its plan's period.
 */

/** What the directory says about a VM (see directory/fleetCandidates) plus its runs. */
export interface VmFacts extends NightlyCandidate {
  /** ID of the schedule that backs it up, when one does. */
  scheduleId?: string | undefined;
  /** The VM's backup plan: where it was found and its mode; undefined when it has none. */
  plan?: { level: string; mode: string } | undefined;
  runs: Array<{
    runDate: string;
    mode: string;
    returnValue: number | undefined;
    complete: boolean;
    verification?: VerificationMark | undefined;
  }>;
}

/** What Temporal says: each schedule's next runs, and which node queues have a worker. */
export interface TemporalFacts {
  nextRuns: Record<string, string[]>;
  nodesWithWorker: readonly string[];
}

export interface VmStatus {
  vm: string;
  node: string;
  plan: { level: string; mode: string } | null;
  schedule: string | null;
  lastBackup: { runDate: string; ageHours: number } | null;
  lastRun: { runDate: string; outcome: 'finished' | 'failed' | 'running'; returnValue: number | null } | null;
  /** Why the nightly run leaves it out, if it does. */
  skipped: string | null;
  verification: { outcome: string; checkedAt: string; summary: string | null } | null;
  nextRun: string | null;
  nodeWorker: boolean;
  /** Whether it has what it should: false names the reasons. */
  ok: boolean;
  reasons: string[];
}

const HOUR_MS = 3600_000;
/** A schedule's period and two hours' grace; a day when it cannot be told. */
function periodHours(next: readonly string[] | undefined): number {
  if (!next || next.length < 2) return 26;
  return (Date.parse(next[1]!) - Date.parse(next[0]!)) / HOUR_MS + 2;
}

/** `YYYYMMDDThhmmssZ` as epoch ms. */
const runDateMs = (d: string) => parseRunDate(d).getTime();

/** A run is going while its leaf is at a step's mode without an error code. */
const STEP_MODES = new Set<string>(Object.values(backupModes).flatMap((m) => [m.go, m.running, m.done]));
const isGoing = (r: { mode: string; returnValue: number | undefined }) =>
  (r.mode.toLowerCase() === 'initialize' || STEP_MODES.has(r.mode.toLowerCase())) &&
  (r.returnValue ?? 0) === 0;

export function vmStatuses(vms: readonly VmFacts[], temporal: TemporalFacts, now: Date): VmStatus[] {
  const selection = selectForNightly(vms, (vm) => vm);
  const skipped = new Map(selection.skipped.map((s) => [s.vm, s.reason]));
  return [...vms]
    .sort((a, b) => a.vm.localeCompare(b.vm))
    .map((v) => {
      const complete = v.runs.filter((r) => r.complete);
      const newest = complete.at(-1);
      const last = v.runs.at(-1);
      const next = v.scheduleId ? temporal.nextRuns[v.scheduleId] : undefined;
      const nodeWorker = temporal.nodesWithWorker.includes(v.node);
      const ageHours = newest ? (now.getTime() - runDateMs(newest.runDate)) / HOUR_MS : undefined;
      const reasons: string[] = [];
      const skip = v.problem ?? skipped.get(v.vm) ?? null;
      const wanted = !v.excluded && v.scheduleId !== undefined;
      if (wanted) {
        if (!newest) reasons.push('never backed up');
        else if (ageHours! > periodHours(next))
          reasons.push(`last good backup ${newest.runDate} is ${Math.round(ageHours!)} h old`);
        if (newest?.verification?.outcome === 'failed')
          reasons.push(`newest backup ${newest.runDate} FAILED verification`);
        if (last && !last.complete && !isGoing(last))
          reasons.push(
            `last run ${last.runDate} failed (${last.mode}, return value ${last.returnValue ?? '-'})`,
          );
        if (skip) reasons.push(`skipped by the nightly run: ${skip}`);
        if (!nodeWorker) reasons.push(`no worker on node ${v.node}`);
      } else if (v.problem) reasons.push(v.problem);
      const outcome = !last ? undefined : last.complete ? 'finished' : isGoing(last) ? 'running' : 'failed';
      return {
        vm: v.vm,
        node: v.node,
        plan: v.plan ?? null,
        schedule: v.excluded ? null : (v.scheduleId ?? null),
        lastBackup: newest
          ? { runDate: newest.runDate, ageHours: Math.max(0, Math.round(ageHours! * 10) / 10) }
          : null,
        lastRun:
          last && outcome ? { runDate: last.runDate, outcome, returnValue: last.returnValue ?? null } : null,
        skipped: skip,
        verification: newest?.verification
          ? {
              outcome: newest.verification.outcome,
              checkedAt: newest.verification.checkedAt,
              summary: newest.verification.summary ?? null,
            }
          : null,
        nextRun: !v.excluded && next?.[0] ? next[0] : null,
        nodeWorker,
        ok: reasons.length === 0,
        reasons,
      };
    });
}
