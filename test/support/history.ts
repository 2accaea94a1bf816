import { temporal } from './harness';

/** When each activity type of a workflow was scheduled and completed, from its history. */
export async function activityTimes(
  workflowId: string,
): Promise<Record<string, { scheduled: number[]; completed: number[] }>> {
  const history = await (await temporal()).workflow.getHandle(workflowId).fetchHistory();
  const typeByEvent = new Map<string, string>();
  const out: Record<string, { scheduled: number[]; completed: number[] }> = {};
  const ms = (t: unknown) => {
    const ts = t as { seconds?: { toNumber(): number } | number; nanos?: number };
    const s = typeof ts.seconds === 'number' ? ts.seconds : (ts.seconds?.toNumber() ?? 0);
    return s * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
  };
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const type = scheduled.activityType?.name ?? '?';
      typeByEvent.set(String(e.eventId), type);
      (out[type] ??= { scheduled: [], completed: [] }).scheduled.push(ms(e.eventTime));
    }
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed) {
      const type = typeByEvent.get(String(completed.scheduledEventId)) ?? '?';
      (out[type] ??= { scheduled: [], completed: [] }).completed.push(ms(e.eventTime));
    }
  }
  return out;
}
