import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Operators filter runs in the Temporal UI with `VmName = 'x'` or `Node = 'y'`. */
export const VmNameKey = defineSearchAttributeKey('VmName', SearchAttributeType.KEYWORD_LIST);
export const NodeKey = defineSearchAttributeKey('Node', SearchAttributeType.KEYWORD_LIST);
