/**
 * `electrode-lab box build <name>` / `box list`, and `electrode-lab ssh <node>`.
 * Boxes are built from the recipes in boxes/ into the box cache
 * ($ELECTRODE_LAB_BOXES, default ~/.cache/electrode-lab/boxes) and added to
 * vagrant; a rebuild reuses the cached .box unless --rebuild.
 */
import { Command } from 'commander';
import { BOX_RECIPES, boxCacheDir, boxRecipe, cachedBoxMeta, installedBoxMeta, parseBoxList } from '../images/boxes.js';
import { buildAndAddBox } from '../images/boxBuild.js';
import { LabError } from '../core/diagnostics.js';
import { findNode } from '../core/plan.js';
import { openLab } from '../providers/lab.js';
import { CliContext } from './context.js';

export function registerBox(program: Command, ctx: CliContext): void {
  const box = program.command('box').description('build and list the local base boxes (boxes/ recipes)');
  box
    .command('build')
    .description('build a base box from its recipe and add it to vagrant')
    .argument('<name>', `recipe: ${BOX_RECIPES.map((b) => b.name).join(' | ')}`)
    .option('--rebuild', 'build again even when the cache has the box')
    .option('--kernel-image <bzImage>', 'debian12-k58: the 5.8 kernel image the VMs boot (default $ELECTRODE_LAB_K58_KERNEL, else the one `kernel build` recorded, else ../shared/kernels/vmlinuz-5.8.1-vm)')
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab box build debian12          offline, from Debian's mirror (debootstrap; a few minutes)
  $ electrode-lab box build debian12-k58      the same userland on Linux 5.8.1, offline
  $ electrode-lab box build debian12-k58 --kernel-image ~/linux-5.8.1/arch/x86/boot/bzImage
  $ electrode-lab box build ubuntu2004-k58    needs the internet (generic/ubuntu2004 + the pinned 5.8 kernel)

A 5.8 image for debian12-k58 must have what a libvirt guest needs built in (no
modules, no initrd): from a 5.8.1 source tree, \`make x86_64_defconfig && make
kvm_guest.config\`, then set =y: BPF, BPF_SYSCALL, BPF_JIT, VETH, NET_SCH_INGRESS,
NET_CLS_BPF, NET_CLS_ACT, VIRTIO_PCI, VIRTIO_NET, VIRTIO_BLK, VIRTIO_CONSOLE,
EXT4_FS, DEVTMPFS_MOUNT, TMPFS_POSIX_ACL, FHANDLE, AUTOFS4_FS, CGROUP_BPF,
SERIAL_8250_CONSOLE; \`make -j bzImage\` (gcc 12 needs HOSTCFLAGS=-fcommon
KCFLAGS=-Wno-error). \`electrode-lab check-kernel --kernel <it>\` then checks the
fast paths on it in seconds.

Built boxes are cached in ${boxCacheDir(ctx.env)} (ELECTRODE_LAB_BOXES).`,
    )
    .action(async (name: string, opts: { rebuild?: boolean; kernelImage?: string }) => {
      const recipe = boxRecipe(name);
      await buildAndAddBox(recipe, opts, { runner: ctx.runner(), progress: ctx.progress(), env: ctx.env });
      const meta = cachedBoxMeta(recipe, ctx.env);
      ctx.out(`box ${recipe.box} ready${meta ? `: kernel ${meta.kernel}` : ''}`);
      ctx.out(`use it: electrode-lab up 3 --provider vagrant --box ${recipe.box}   (its VMs run the box's kernel${meta ? `, ${meta.kernel}` : ''})`);
    });

  box
    .command('list')
    .description('recipes, cached builds and boxes added to vagrant, with their kernels')
    .action(async () => {
      const r = await ctx.runner().run(['vagrant', 'box', 'list', '--machine-readable'], { check: false, env: { ...ctx.env, VAGRANT_CHECKPOINT_DISABLE: '1' } });
      const added = parseBoxList(r.stdout);
      for (const b of BOX_RECIPES) {
        const cached = cachedBoxMeta(b, ctx.env);
        const inVagrant = added.some((a) => a.name === b.box && a.provider === 'libvirt');
        const kernel = installedBoxMeta(b.box, ctx.env)?.kernel ?? cached?.kernel ?? (b.kernel === 'recorded' ? '?' : b.kernel);
        ctx.out(`${b.box.padEnd(30)} ${inVagrant ? 'added ' : cached ? 'cached' : '-     '} kernel ${kernel.padEnd(24)} ${b.description}`);
      }
      for (const a of added.filter((a) => !BOX_RECIPES.some((b) => b.box === a.name))) ctx.out(`${a.name.padEnd(30)} added  (${a.provider} ${a.version})`);
    });
}

export function registerSsh(program: Command, ctx: CliContext): void {
  program
    .command('ssh')
    .description('interactive shell on a VM node (vagrant provider)')
    .argument('<node>', 'node name: replica0.., client0..')
    .action(async (nodeName: string) => {
      const { plan, paths, provider } = ctx.loadLab();
      const lab = openLab(provider, plan, ctx.providerContext(paths));
      if (!lab.canShell) throw new LabError(`lab '${plan.lab}' uses the ${plan.provider} provider, which has no login shell; use \`electrode-lab exec ${nodeName} -- bash\``, 'NOT_A_VM_LAB');
      const node = findNode(plan, nodeName);
      if (!node) throw new LabError(`no node '${nodeName}' in lab '${plan.lab}'; nodes are ${plan.nodes.map((n) => n.name).join(', ')}`, 'NO_SUCH_NODE');
      ctx.setExitCode(lab.shell(lab.node(node), ctx.env));
    });
}
