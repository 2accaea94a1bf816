import { describe, expect, it } from 'vitest';
import { parseLifecycleLine } from '../../src/hypervisor/lifecycle';

describe('parseLifecycleLine', () => {
  it("reads the instant, domain and event of a line `virsh event --timestamp` writes, by libvirt's clock", () => {
    expect(
      parseLifecycleLine(
        "2026-12-01 23:18:36.404+0000: event 'lifecycle' for domain 'exp2': Suspended Paused",
      ),
    ).toEqual({ at: Date.UTC(2026, 11, 1, 23, 18, 36, 404), vm: 'exp2', event: 'Suspended' });
  });

  it('ignores prompts, echoed commands and other events', () => {
    for (const line of ['virsh # event --domain x --loop', "event 'reboot' for domain 'x'", ''])
      expect(parseLifecycleLine(line)).toBeUndefined();
  });
});
