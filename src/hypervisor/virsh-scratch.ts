import { CommandError, LibvirtUnreachableError, run, transient } from './run';

/**
 * The libvirt calls of scratch and cloned domains that `Virsh` has no use for: a domain's
 * UUID, a transient domain from XML, the isolated drill network.
 */
const UNREACHABLE =
  /failed to connect to the hypervisor|End of file while reading data|client socket is closed/i;

async function virsh(
  uri: string,
  args: readonly string[],
  kind: 'query' | 'long' = 'query',
): Promise<string> {
  const label = `virsh ${args[0]}`;
  try {
    return await run('virsh', ['-q', '-c', uri, ...args], { kind, label });
  } catch (err) {
    if (err instanceof CommandError && UNREACHABLE.test(err.stderr))
      throw transient(new LibvirtUnreachableError(label, err.stderr));
    throw err;
  }
}

/** The domain's UUID, or undefined when libvirt does not know it. */
export async function domainUuid(uri: string, name: string): Promise<string | undefined> {
  try {
    return (await virsh(uri, ['domuuid', '--', name])).trim();
  } catch (err) {
    if (err instanceof CommandError && /failed to get domain|Domain not found/i.test(err.stderr))
      return undefined;
    throw err;
  }
}

/** Starts a transient domain: it leaves no definition behind once destroyed. */
export async function createTransient(uri: string, xmlFile: string): Promise<void> {
  await virsh(uri, ['create', '--', xmlFile], 'long');
}

/** The network's state: absent, inactive or active. */
export async function networkState(uri: string, name: string): Promise<'absent' | 'inactive' | 'active'> {
  try {
    const out = await virsh(uri, ['net-info', '--', name]);
    return /^Active:\s*yes/m.test(out) ? 'active' : 'inactive';
  } catch (err) {
    if (err instanceof CommandError && /no network with matching name|Network not found/i.test(err.stderr))
      return 'absent';
    throw err;
  }
}

export async function defineNetwork(uri: string, xmlFile: string): Promise<void> {
  await virsh(uri, ['net-define', '--', xmlFile]);
}

export async function startNetwork(uri: string, name: string): Promise<void> {
  await virsh(uri, ['net-start', '--', name]);
}
