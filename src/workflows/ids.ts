/** One workflow ID per VM for backups and restores alike: two can never run at once. */
export function vmWorkflowId(vm: string): string {
  return `vm/${vm}`;
}
