/**
 * plan -> Vagrantfile (pure). The template at the project root loops over the
 * fields of a flat view built here from the plan; every address, MAC and
 * queue count comes from the plan, none is computed here.
 */
import Handlebars from 'handlebars';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Plan } from '../core/plan.js';
import { projectRoot } from '../edges/paths.js';

export interface VagrantfileView {
  lab: string;
  box: string;
  driver: string;
  driverReason: string;
  cpus: number;
  memory: number;
  queues: number;
  mtu: number;
  netmask: string;
  libvirtNetwork: string;
  /** libvirt domain names are `<domainPrefix><node>`. */
  domainPrefix: string;
  bootTimeoutS: number;
  nodes: { name: string; hostname: string; ip: string; mac: string }[];
}

/** Software emulation boots a guest in about 40 s alone, far longer when VMs share 2 cores. */
export function bootTimeoutS(driver: 'kvm' | 'qemu'): number {
  return driver === 'qemu' ? 900 : 300;
}

/** The libvirt domain of node X is `el-<lab>-X` (vagrant-libvirt appends the machine name). */
export function domainPrefix(plan: Plan): string {
  return `el-${plan.lab}-`;
}

export function vagrantfileView(plan: Plan): VagrantfileView {
  return {
    lab: plan.lab,
    box: plan.vm.box,
    driver: plan.vm.driver,
    driverReason: plan.vm.driverReason,
    cpus: plan.vm.cpus,
    memory: plan.vm.memory,
    queues: plan.vm.queues,
    mtu: plan.network.mtu,
    netmask: plan.network.netmask,
    libvirtNetwork: plan.vm.libvirtNetwork,
    domainPrefix: domainPrefix(plan),
    bootTimeoutS: bootTimeoutS(plan.vm.driver),
    nodes: plan.nodes.map((n) => ({ name: n.name, hostname: n.hostname, ip: n.ip, mac: n.mac.toLowerCase() })),
  };
}

let compiled: HandlebarsTemplateDelegate<VagrantfileView> | undefined;

export function vagrantfileTemplatePath(): string {
  return join(projectRoot(), 'Vagrantfile.hbs');
}

export function renderVagrantfile(plan: Plan): string {
  // strict: a field missing from the view is an error, not an empty string in Ruby
  compiled ??= Handlebars.compile<VagrantfileView>(readFileSync(vagrantfileTemplatePath(), 'utf8'), { noEscape: true, strict: true });
  return compiled(vagrantfileView(plan));
}
