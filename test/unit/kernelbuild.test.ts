/** `kernel build`: the options, the BTF choice, the config check and the command lines it runs. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kernelArgv } from '../../src/core/argv.js';
import { btfChoice, configMissing, guestKernelConfig, is58, makefileVersion, sourceKind } from '../../src/images/kernelbuild.js';
import { projectRoot } from '../../src/edges/paths.js';

describe('kernel build', () => {
  it('BTF only with a pahole that writes what 5.8 reads', () => {
    expect(btfChoice(undefined)).toMatchObject({ btf: false, why: expect.stringMatching(/dwarves/) });
    expect(btfChoice('v1.15').btf).toBe(false);
    expect(btfChoice('v1.16').btf).toBe(true);
    expect(btfChoice('v1.21').btf).toBe(true);
    expect(btfChoice('v1.24')).toMatchObject({ btf: false, why: expect.stringMatching(/newer than 5\.8 reads/) });
    expect(btfChoice('garbage').btf).toBe(false);
  });

  it('enables the guest options and turns off what gcc 12 cannot build on 5.8; BTF options follow the choice', () => {
    const off = guestKernelConfig(false);
    expect(off.enable).toEqual(expect.arrayContaining(['VIRTIO_NET', 'VIRTIO_BLK', 'EXT4_FS', 'BPF_SYSCALL', 'XDP_SOCKETS', 'NET_SCH_NETEM', 'NET_CLS_BPF', 'SERIAL_8250_CONSOLE']));
    expect(off.disable).toEqual(expect.arrayContaining(['STACK_VALIDATION', 'RETPOLINE', 'DEBUG_INFO_BTF']));
    expect(guestKernelConfig(true).enable).toContain('DEBUG_INFO_BTF');
    expect(guestKernelConfig(true).disable).not.toContain('DEBUG_INFO_BTF');
  });

  it('the config check names what olddefconfig dropped (the shared 5.8.1 guest image has no netem)', () => {
    const want = guestKernelConfig(false).enable;
    expect(configMissing('CONFIG_BPF=y\n# CONFIG_VETH is not set\nCONFIG_VIRTIO_NET=m\n', ['BPF', 'VETH', 'VIRTIO_NET'])).toEqual(['VETH', 'VIRTIO_NET']);
    const shared = join(projectRoot(), '..', 'shared', 'kernels', 'config-5.8.1-vm');
    if (existsSync(shared)) expect(configMissing(readFileSync(shared, 'utf8'), want)).toEqual(['NET_SCH_NETEM']);
  });

  it('reads the version from the Makefile and takes 5.8.x only', () => {
    expect(makefileVersion('# SPDX\nVERSION = 5\nPATCHLEVEL = 8\nSUBLEVEL = 1\nEXTRAVERSION =\n')).toBe('5.8.1');
    expect(makefileVersion('VERSION = 5\nPATCHLEVEL = 8\nSUBLEVEL = 0\n')).toBe('5.8');
    expect(makefileVersion('all:\n\ttrue\n')).toBeUndefined();
    expect([is58('5.8'), is58('5.8.18'), is58('5.18'), is58('6.1')]).toEqual([true, true, false, false]);
    expect([sourceKind('linux-5.8.1.tar.xz', false), sourceKind('x', true), sourceKind('linux.zip', false)]).toEqual(['tarball', 'tree', undefined]);
  });

  it('command lines', () => {
    expect(kernelArgv.extract('/s/linux-5.8.1.tar.xz', '/c/src')).toEqual(['tar', '-xf', '/s/linux-5.8.1.tar.xz', '-C', '/c/src', '--strip-components=1']);
    expect(kernelArgv.make('/t', ['bzImage'], 2)).toEqual(['make', '-C', '/t', '-j2', 'HOSTCFLAGS=-fcommon', 'KCFLAGS=-Wno-error', 'bzImage']);
    expect(kernelArgv.config('/t', ['BPF'], ['DRM'])).toEqual(['/t/scripts/config', '--file', '/t/.config', '--enable', 'BPF', '--disable', 'DRM']);
  });
});
