import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, logFields, logLevelFromEnv, TemporalPinoLogger } from '../../src/observability/logger';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

describe('logLevelFromEnv', () => {
  it('is info by default and takes the pino level names', () => {
    expect(logLevelFromEnv({})).toBe('info');
    expect(logLevelFromEnv({ VMBACKUP_LOG_LEVEL: ' DEBUG ' })).toBe('debug');
    expect(logLevelFromEnv({ VMBACKUP_LOG_LEVEL: 'silent' })).toBe('silent');
    expect(() => logLevelFromEnv({ VMBACKUP_LOG_LEVEL: 'loud' })).toThrow(
      /VMBACKUP_LOG_LEVEL must be one of/,
    );
  });
});

describe('logFields', () => {
  it("renames the SDK's activity metadata, drops the task token and reads the VM from a vm/ workflow ID", () => {
    expect(
      logFields({
        workflowId: 'vm/web-1',
        workflowRunId: 'r-1',
        activityType: 'snapshot',
        attempt: 2,
        taskToken: 'AAAA',
        namespace: 'default',
        sdkComponent: 'worker',
      }),
    ).toEqual({
      workflowId: 'vm/web-1',
      runId: 'r-1',
      activity: 'snapshot',
      attempt: 2,
      namespace: 'default',
      sdkComponent: 'worker',
      vm: 'web-1',
    });
    // An interceptor's VM wins over the workflow ID's (a multi-VM run's ID names none).
    expect(logFields({ workflowId: 'backup-vms/x', vm: 'db-2' })).toEqual({
      workflowId: 'backup-vms/x',
      vm: 'db-2',
    });
    expect(logFields(undefined)).toEqual({});
  });
});

describe('the Temporal logger', () => {
  it('writes one JSON line per message with level, time, role, node and the context', () => {
    const { lines, stream } = capture();
    const logger = new TemporalPinoLogger(
      createLogger({ role: 'node', node: 'n1' }, { VMBACKUP_LOG_LEVEL: 'debug' }, stream),
    );
    logger.info('snapshot done', {
      workflowId: 'vm/web-1',
      workflowRunId: 'r',
      activityType: 'snapshot',
      attempt: 1,
    });
    logger.warn('Activity failed', { error: new Error('disk full'), workflowId: 'vm/web-1' });
    logger.trace('not at debug');
    logger.log('DEBUG', 'polled');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({
      level: 'info',
      msg: 'snapshot done',
      role: 'node',
      node: 'n1',
      vm: 'web-1',
      workflowId: 'vm/web-1',
      runId: 'r',
      activity: 'snapshot',
      attempt: 1,
    });
    expect(typeof lines[0]!['time']).toBe('string');
    expect(lines[1]).toMatchObject({ level: 'warn', err: { message: 'disk full', type: 'Error' } });
    expect((lines[1]!['err'] as { stack?: string }).stack).toContain('disk full');
    expect(lines[2]).toMatchObject({ level: 'debug', msg: 'polled' });
  });
});
