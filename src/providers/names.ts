/**
 * The providers by name, and what the core (spec, plan) must know about each
 * before any provider code runs. Pure: no imports. Adding a provider: its
 * name and traits here, its class in src/providers/, one line in index.ts.
 */
export const PROVIDER_NAMES = ['netns', 'vagrant', 'hosts'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

export interface ProviderTraits {
  /** Its lab network is reachable from this host's routing table (VMs on a host bridge): a subnet must not overlap the host's routes. */
  routedFromHost: boolean;
  /** It can run a user's upstream Electrode tree (per-node mount namespaces and bpffs: src/upstream/). */
  upstreamTrees: boolean;
  /** One line for `--help` and the README. */
  what: string;
}

export const PROVIDER_TRAITS: Record<ProviderName, ProviderTraits> = {
  netns: { routedFromHost: false, upstreamTrees: true, what: 'network namespaces on this host (fast; what CI uses)' },
  vagrant: { routedFromHost: true, upstreamTrees: false, what: 'Vagrant/libvirt VMs with a pinned guest kernel and virtio-net' },
  hosts: { routedFromHost: false, upstreamTrees: false, what: 'machines that already exist, driven over SSH from an inventory (bare-metal testbeds)' },
};

/** The provider a lab gets without --provider: VMs when the host can run them, else namespaces. */
export function defaultProvider(facts: { vagrantAvailable: boolean }): { provider: ProviderName; reason: string } {
  return facts.vagrantAvailable
    ? { provider: 'vagrant', reason: 'vagrant and vagrant-libvirt are installed (use --provider netns for namespaces)' }
    : { provider: 'netns', reason: 'vagrant/vagrant-libvirt not installed, using network namespaces (apt-get install vagrant vagrant-libvirt for VMs)' };
}
