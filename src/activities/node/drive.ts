import { setTimeout as sleep } from 'node:timers/promises';
import { describeAction, refusal, type Action, type Decision } from '../../domain/steps/step';
import { failpoint, failpointDuring, injectedFault, pausepoint } from './failpoints';
import { heartbeat } from './context';

/** One node step as observe → decide → act: the world is read afresh before every action. */
export interface StepMachine<W, A extends Action, R> {
  /** `snapshot`, `merge`, …: names the step in heartbeats and crash points. */
  step: string;
  observe(): Promise<W>;
  decide(world: W): Decision<A, R>;
  act(action: A, world: W): Promise<void>;
  /** How long to wait before looking again when the decision is to wait. */
  waitMs?: number;
}

/** Safety net: a step that keeps acting without reaching an end has a bug; stop it. */
const MAX_ACTIONS = 10_000;

/**
 * Runs a step to its end. Every action is bracketed by crash points
 * `<step>:<kind>:before|during|after`, so the kill tests cover each action the day it is written.
 */
export async function drive<W, A extends Action, R>(m: StepMachine<W, A, R>): Promise<R> {
  for (let n = 0; n < MAX_ACTIONS; n++) {
    const world = await m.observe();
    const decision = m.decide(world);
    switch (decision.kind) {
      case 'done':
        return decision.result;
      case 'refuse':
        throw refusal(decision);
      case 'wait':
        heartbeat({ step: m.step, waiting: decision.why });
        await sleep(m.waitMs ?? 500);
        continue;
      case 'act': {
        const a = decision.action;
        const point = `${m.step}:${a.kind}`;
        heartbeat({ step: m.step, action: describeAction(a) });
        failpoint(`${point}:before`);
        await pausepoint(`${point}:before`);
        injectedFault(`${point}:fault`);
        const disarm = failpointDuring(`${point}:during`);
        try {
          await m.act(a, world);
        } finally {
          disarm?.();
        }
        failpoint(`${point}:after`);
      }
    }
  }
  throw new Error(`${m.step}: more than ${MAX_ACTIONS} actions without an end`);
}
