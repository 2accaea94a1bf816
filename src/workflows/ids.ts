/** One workflow ID per VM for backups and restores alike: two can never run at once. */
export function vmWorkflowId(vm: string): string {
  return `vm/${vm}`;
}

/** The VM a `vm/<vm>` workflow ID names, or undefined for another ID. */
export function vmOfWorkflowId(workflowId: string): string | undefined {
  return workflowId.startsWith('vm/') ? workflowId.slice('vm/'.length) || undefined : undefined;
}
