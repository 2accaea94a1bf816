import { patched, setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import { parseRunDate } from '../domain/names';
import { OutcomeKey, RunDateKey } from './search-attributes';

/**
 * What the Temporal UI and `temporal workflow list -q` tell about a run: the run date and,
 * at its end, the outcome as search attributes; the VM, node and stage as the run's current
 * details. Added after runs were recorded: histories without the patch replay without it.
 */
export interface Story {
  /** Records the run date (`YYYYMMDDThhmmssZ`) as `RunDate`. */
  runDate(runDate: string): void;
  /** The current details the UI shows, kept up to date through the run. */
  details(text: string): void;
  /** `Outcome` at the run's end: `finished`, `failed`, `aborted`, `passed`, … */
  outcome(outcome: string): void;
}

const STORY = 'story-in-search-attributes';

export function story(): Story {
  const on = patched(STORY);
  return {
    runDate(runDate) {
      if (on) upsertSearchAttributes([{ key: RunDateKey, value: parseRunDate(runDate) }]);
    },
    details(text) {
      // Not a command: safe in any history.
      setCurrentDetails(text);
    },
    outcome(outcome) {
      if (on) upsertSearchAttributes([{ key: OutcomeKey, value: outcome }]);
    },
  };
}

/** Runs a workflow's body and records its outcome: the body's own word for it, else `failed`. */
export async function withOutcome<T>(
  s: Story,
  body: () => Promise<T>,
  outcomeOf: (r: T) => string,
): Promise<T> {
  let result: T;
  try {
    result = await body();
  } catch (err) {
    s.outcome('failed');
    throw err;
  }
  s.outcome(outcomeOf(result));
  return result;
}

/** A run over several VMs: `finished` when all went well, `failed` when none did, else `partial`. */
export function partOutcome(good: number, all: number): string {
  if (good === all) return 'finished';
  return good === 0 ? 'failed' : 'partial';
}
