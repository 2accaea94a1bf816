import type { TemporalConfig } from '../config';

/** TLS and API key options for a Temporal connection (plain when the config names none). */
export async function connectionSecurity(_config: TemporalConfig): Promise<Record<string, never>> {
  return {};
}
