import { setTimeout as sleep } from 'node:timers/promises';
import { describeAction, refusal, type Action, type Decision } from '../../domain/steps/step';
import { keepingTransient, TransientCommandError } from '../../hypervisor/run';
import { failpoint, failpointDuring, injectedFault, pausepoint } from './failpoints';
import { heartbeat } from './context';

/** One node step as observe → decide → act: the world is read afresh before every action. */
export interface StepMachine<W, A extends Action, R> {
  /** `snapshot`, `merge`, …: names the step in heartbeats and crash points. */
  step: string;
  /** The VM acted on: faults can be injected for one VM of a worker. */
  vm: string;
  observe(): Promise<W>;
  decide(world: W): Decision<A, R>;
  act(action: A, world: W): Promise<void>;
  /** How long to wait before looking again when the decision is to wait. */
  waitMs?: number;
}

/** Safety net: a step that keeps acting without reaching an end has a bug; stop it. */
const MAX_ACTIONS = 10_000;

/** A wait that has not changed for this long says so: a stuck libvirt job shows as stuck. */
const SAY_UNCHANGED_AFTER_MS = 10_000;

/**
 * Runs a step to its end. Every action is bracketed by crash points
 * `<step>:<kind>:before|during|after`, so the kill tests cover each action the day it is written.
 */
export async function drive<W, A extends Action, R>(m: StepMachine<W, A, R>): Promise<R> {
  let waited: { why: string; since: number } | undefined;
  // Only actions count towards the cap: a long merge may wait for hours.
  for (let acted = 0; acted < MAX_ACTIONS;) {
    let world: W;
    try {
      world = await keepingTransient(() => m.observe());
    } catch (err) {
      if (!(err instanceof TransientCommandError)) throw err;
      // libvirt frozen or restarting: nothing can be known or done until it answers again.
      heartbeat({ step: m.step, waiting: err.message });
      await sleep(Math.max(m.waitMs ?? 500, 1000));
      continue;
    }
    const decision = m.decide(world);
    if (decision.kind !== 'wait') waited = undefined;
    switch (decision.kind) {
      case 'done':
        return decision.result;
      case 'refuse':
        throw refusal(decision);
      case 'wait': {
        const now = Date.now();
        if (waited?.why !== decision.why) waited = { why: decision.why, since: now };
        const unchanged = now - waited.since;
        heartbeat({
          step: m.step,
          ...decision.progress,
          waiting:
            unchanged >= SAY_UNCHANGED_AFTER_MS
              ? `${decision.why} (unchanged for ${Math.round(unchanged / 1000)} s)`
              : decision.why,
        });
        await sleep(m.waitMs ?? 500);
        continue;
      }
      case 'act': {
        const a = decision.action;
        acted++;
        const point = `${m.step}:${a.kind}`;
        heartbeat({ step: m.step, action: describeAction(a) });
        failpoint(`${point}:before`);
        await pausepoint(`${point}:before`);
        injectedFault(`${point}:fault`, m.vm);
        const disarm = failpointDuring(`${point}:during`);
        try {
          await keepingTransient(() => m.act(a, world));
        } catch (err) {
          if (!(err instanceof TransientCommandError)) throw err;
          // Whether it happened or not, the next observation shows.
          heartbeat({ step: m.step, waiting: err.message, action: describeAction(a) });
          await sleep(Math.max(m.waitMs ?? 500, 1000));
          continue;
        } finally {
          disarm?.();
        }
        failpoint(`${point}:after`);
      }
    }
  }
  throw new Error(`${m.step}: more than ${MAX_ACTIONS} actions without an end`);
}
