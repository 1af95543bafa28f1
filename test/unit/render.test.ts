/** Golden files: test/fixtures/lab-<n>.yaml -> test/fixtures/lab-<n>/{plan.json,replica.config,peers.table}. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NO_FACTS, planFromInputs } from '../../src/core/plan.js';
import { peerTable, planJson, replicaConfig } from '../../src/core/render.js';
import { parseSpecText } from '../../src/core/spec.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function golden(dir: string, file: string, actual: string): void {
  const p = join(FIX, dir, file);
  if (UPDATE || !existsSync(p)) {
    if (!UPDATE) throw new Error(`golden ${p} is missing; run UPDATE_GOLDEN=1 npx vitest run test/unit/render.test.ts and review the diff`);
    mkdirSync(join(FIX, dir), { recursive: true });
    writeFileSync(p, actual);
  }
  expect(actual).toBe(readFileSync(p, 'utf8'));
}

describe.each(['lab-3', 'lab-5', 'lab-7', 'lab-15'])('%s.yaml renders its golden files', (name) => {
  const text = readFileSync(join(FIX, `${name}.yaml`), 'utf8');
  const plan = planFromInputs([parseSpecText(text, `${name}.yaml`)], NO_FACTS);

  it('plan.json', () => golden(name, 'plan.json', planJson(plan)));
  it('replica.config', () => golden(name, 'replica.config', replicaConfig(plan)));
  it('peers.table', () => golden(name, 'peers.table', peerTable(plan)));

  it('config and peer table agree with the plan, line for line', () => {
    const cfg = replicaConfig(plan).trimEnd().split('\n');
    expect(cfg[0]).toBe(`f ${(plan.cluster.n - 1) / 2}`);
    expect(cfg).toHaveLength(plan.cluster.n + 3);
    expect(cfg.at(-2)).toBe(`mtu ${plan.network.mtu}`);
    expect(cfg.at(-1)).toBe(`max-clients ${plan.spec.maxClients}`);
    const peers = peerTable(plan)
      .split('\n')
      .filter((l) => l.startsWith('peer '));
    expect(peers).toHaveLength(plan.cluster.n);
    plan.nodes
      .filter((n) => n.role === 'replica')
      .forEach((r, i) => {
        expect(cfg[i + 1]).toBe(`replica ${r.ip}:${r.port}`);
        expect(peers[i]).toBe(`peer ${i} ${r.ip} ${r.mac} ${r.port}`);
      });
  });
});
