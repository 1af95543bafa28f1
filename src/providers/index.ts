/**
 * The provider registry. A provider is added with ONE line:
 *   registerProvider('vagrant', () => new VagrantProvider());
 * An unknown name lists the registered ones.
 */
import { LabError } from '../core/diagnostics.js';
import { NetnsProvider } from './netns.js';
import { Provider } from './provider.js';
import { VagrantProvider } from './vagrant.js';
import { HostsProvider } from './hosts/provider.js';

const registry = new Map<string, () => Provider>();

export function registerProvider(name: string, factory: () => Provider): void {
  registry.set(name, factory);
}

export function providerNames(): string[] {
  return [...registry.keys()].sort();
}

export function getProvider(name: string): Provider {
  const factory = registry.get(name);
  if (!factory) {
    throw new LabError(`provider '${name}' is not registered; registered providers: ${providerNames().join(', ') || '(none)'}`, 'UNKNOWN_PROVIDER');
  }
  return factory();
}

registerProvider('netns', () => new NetnsProvider());
registerProvider('vagrant', () => new VagrantProvider());
registerProvider('hosts', () => new HostsProvider());
