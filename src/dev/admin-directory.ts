import { ConfigError, directoryConfig, type DirectoryConfig } from '../config';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The directory as its root DN (LDAP_ADMIN_BIND_DN, LDAP_ADMIN_BIND_PASSWORD), over the same
 * URL and TLS settings as the workers: for what creates VMs and plans (sandbox VMs, the demo,
 * the benches, test fixtures), which the workers' own identities may not.
 */
export function adminDirectoryConfig(env: Env = process.env): DirectoryConfig {
  for (const name of ['LDAP_ADMIN_BIND_DN', 'LDAP_ADMIN_BIND_PASSWORD']) {
    if (!env[name]?.trim())
      throw new ConfigError(
        `environment variable ${name} is not set (source .dev/env for the embedded defaults)`,
      );
  }
  return directoryConfig({
    ...env,
    LDAP_BIND_DN: env['LDAP_ADMIN_BIND_DN'],
    LDAP_BIND_PASSWORD: env['LDAP_ADMIN_BIND_PASSWORD'],
  });
}
