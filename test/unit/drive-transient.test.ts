import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { drive } from '../../src/activities/node/drive';
import { step } from '../../src/activities/node/context';
import { BackupError, ErrorCode } from '../../src/domain/errors';
import { act, done, wait, type Action } from '../../src/domain/steps/step';
import { CommandTimeoutError, run, transient } from '../../src/hypervisor/run';

type Beat = { step?: string; waiting?: string; action?: string };

/** Runs `fn` as an activity and collects what it heartbeats. */
async function inActivity<R>(fn: () => Promise<R>): Promise<{ result: R; beats: Beat[] }> {
  const env = new MockActivityEnvironment();
  const beats: Beat[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d as Beat));
  const result = (await env.run(fn)) as R;
  return { result, beats };
}

describe('drive with a libvirt that does not answer', () => {
  it('heartbeats what it waits for when observing times out, and goes on once libvirt answers', async () => {
    let calls = 0;
    const { result, beats } = await inActivity(() =>
      drive<number, Action, string>({
        step: 'merge',
        vm: 'vm-1',
        observe: async () => {
          if (++calls <= 2) throw transient(new CommandTimeoutError('virsh domstate', 5));
          return calls;
        },
        decide: () => done('merged'),
        act: async () => undefined,
        waitMs: 10,
      }),
    );
    expect(result).toBe('merged');
    expect(beats).toContainEqual({
      step: 'merge',
      waiting: 'libvirt did not answer virsh domstate within 5 s',
    });
  });

  it('does not end the step when a timed-out command inside an action was wrapped into a business error', async () => {
    let acted = 0;
    const { result, beats } = await inActivity(() =>
      drive<number, Action, string>({
        step: 'merge',
        vm: 'vm-1',
        observe: async () => acted,
        decide: (n) => (n < 2 ? act({ kind: 'start-pull', target: 'vda' }) : done('merged')),
        act: async () => {
          acted++;
          if (acted === 1)
            await step(ErrorCode.mergeFailed, 'block pull of vda', () =>
              run('sleep', ['30'], { timeoutSeconds: 0.3, label: 'virsh blockpull' }),
            );
        },
        waitMs: 10,
      }),
    );
    expect(result).toBe('merged');
    expect(acted).toBe(2);
    expect(beats).toContainEqual({
      step: 'merge',
      action: 'start-pull vda',
      waiting: 'libvirt did not answer virsh blockpull within 0.3 s',
    });
  });

  it('still ends the step on a business error', async () => {
    await expect(
      inActivity(() =>
        drive<number, Action, string>({
          step: 'merge',
          vm: 'vm-1',
          observe: async () => 0,
          decide: () => act({ kind: 'start-pull', target: 'vda' }),
          act: async () => {
            await step(ErrorCode.mergeFailed, 'block pull of vda', () => run('false', []));
          },
        }),
      ),
    ).rejects.toBeInstanceOf(BackupError);
  });

  it('says how long a wait has not changed: a stuck job shows as stuck', async () => {
    const started = Date.now();
    const { beats } = await inActivity(() =>
      drive<number, Action, string>({
        step: 'merge',
        vm: 'vm-1',
        observe: async () => Date.now() - started,
        decide: (ms) => (ms < 10_600 ? wait('block pull of vda 1024/4096') : done('merged')),
        act: async () => undefined,
        waitMs: 500,
      }),
    );
    expect(beats.at(0)).toEqual({ step: 'merge', waiting: 'block pull of vda 1024/4096' });
    expect(beats.at(-1)).toEqual({
      step: 'merge',
      waiting: expect.stringMatching(/^block pull of vda 1024\/4096 \(unchanged for 1[01] s\)$/),
    });
  }, 20_000);
});
