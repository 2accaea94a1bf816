import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Operators filter runs in the Temporal UI with `VmName = 'x'` or `Node = 'y'`. */
export const VmNameKey = defineSearchAttributeKey('VmName', SearchAttributeType.KEYWORD_LIST);
export const NodeKey = defineSearchAttributeKey('Node', SearchAttributeType.KEYWORD_LIST);
/** A run's end: `finished`, `failed`, `aborted`, `passed`, … (`Outcome = 'failed'`). */
export const OutcomeKey = defineSearchAttributeKey('Outcome', SearchAttributeType.KEYWORD);
/** The run date a backup is named by (`RunDate > '2026-12-01T00:00:00Z'`). */
export const RunDateKey = defineSearchAttributeKey('RunDate', SearchAttributeType.DATETIME);
