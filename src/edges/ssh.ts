/**
 * ssh2 sessions to lab VMs, with the host/port/user/key that `vagrant
 * ssh-config` prints. Every command's output is also appended to a per-node
 * log (streamed as it arrives), so a hung provisioning step can be watched
 * with `tail -f`.
 */
import { createWriteStream, readFileSync, WriteStream } from 'node:fs';
import { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import { LabError } from '../core/diagnostics.js';
import { RunResult, shellQuote } from './runner.js';
import { writeErr, writeOut } from './output.js';

export interface SshTarget {
  /** The node's name (vagrant: the machine name of the `Host` line). */
  name: string;
  host: string;
  port: number;
  user: string;
  identityFile: string;
  /** Reach host through this machine first (`ssh -J`), with the same key. */
  jump?: { host: string; port: number; user?: string };
}

/** `vagrant ssh-config` text -> one target per `Host` block. */
export function parseSshConfig(text: string): SshTarget[] {
  const out: SshTarget[] = [];
  let cur: Partial<SshTarget> | undefined;
  const flush = () => {
    if (cur?.name && cur.host && cur.user && cur.identityFile) out.push({ port: 22, ...cur } as SshTarget);
  };
  for (const raw of text.split('\n')) {
    const m = /^\s*(\S+)\s+(.+?)\s*$/.exec(raw);
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    const value = m[2]!.replace(/^"(.*)"$/, '$1');
    if (key === 'host') {
      flush();
      cur = { name: value };
    } else if (cur) {
      if (key === 'hostname') cur.host = value;
      else if (key === 'port') cur.port = Number(value);
      else if (key === 'user') cur.user = value;
      // the first IdentityFile is the one vagrant inserted for this machine
      else if (key === 'identityfile' && !cur.identityFile) cur.identityFile = value;
    }
  }
  flush();
  return out;
}

export interface SshExecOptions {
  /** Text written to the command's stdin, then EOF. */
  input?: string;
  timeoutMs?: number;
  /** Return a non-zero exit instead of throwing (the return type does not change). */
  check?: boolean;
  /** Also copy the output to our stdout/stderr as it arrives (`electrode-lab exec`). */
  echo?: boolean;
  /** Keep stdout out of the node's ssh.log (bulk data such as a core in base64). */
  bulkStdout?: boolean;
}

export class SshError extends LabError {
  constructor(message: string, public readonly result?: RunResult) {
    super(message, 'SSH_ERROR');
    this.name = 'SshError';
  }
}

/** Runs argv as root (sudo) on the guest; the result has the Runner's shape. Root logins need no sudo. */
export function sudoCommand(argv: string[], user?: string): string {
  return user === 'root' ? shellQuote(argv) : `sudo -n -- ${shellQuote(argv)}`;
}

export class SshSession {
  private sftpP?: Promise<SFTPWrapper>;
  private constructor(readonly target: SshTarget, private readonly client: Client, private readonly log?: WriteStream) {}

  static async connect(target: SshTarget, opts: { logFile?: string; readyTimeoutMs?: number } = {}): Promise<SshSession> {
    let key: Buffer;
    try {
      key = readFileSync(target.identityFile);
    } catch (e) {
      throw new SshError(`cannot read ${target.name}'s ssh key ${target.identityFile} (${(e as Error).message}); run \`vagrant ssh-config ${target.name}\` in the lab's vagrant folder`);
    }
    const readyTimeout = opts.readyTimeoutMs ?? 60_000;
    const open = (c: Client, cfg: Record<string, unknown>, what: string) =>
      new Promise<void>((ok, fail) => {
        c.once('ready', () => ok());
        c.once('error', (e) => fail(new SshError(`ssh to ${what} failed: ${e.message}; is it up and reachable? (\`electrode-lab status\`)`)));
        c.connect({ ...cfg, privateKey: key, readyTimeout, keepaliveInterval: 10_000 } as import('ssh2').ConnectConfig);
      });
    const client = new Client();
    if (target.jump) {
      const j = target.jump;
      const hop = new Client();
      await open(hop, { host: j.host, port: j.port, username: j.user ?? target.user }, `${target.name}'s jump host ${j.user ?? target.user}@${j.host}:${j.port}`);
      const sock = await new Promise<import('node:stream').Duplex>((ok, fail) =>
        hop.forwardOut('127.0.0.1', 0, target.host, target.port, (e, s) => (e ? fail(new SshError(`${j.host} cannot reach ${target.host}:${target.port}: ${e.message}`)) : ok(s))),
      );
      client.once('close', () => hop.end());
      await open(client, { sock, username: target.user }, `${target.name} (${target.user}@${target.host}:${target.port} via ${j.host})`);
    } else {
      await open(client, { host: target.host, port: target.port, username: target.user }, `${target.name} (${target.user}@${target.host}:${target.port})`);
    }
    const log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
    return new SshSession(target, client, log);
  }

  /** Runs a shell command line on the guest. */
  async exec(command: string, opts: SshExecOptions = {}): Promise<RunResult> {
    const t0 = performance.now();
    this.log?.write(`\n$ ${command}\n`);
    const argv = ['ssh', `${this.target.user}@${this.target.name}`, command];
    const result = await new Promise<RunResult>((ok, fail) => {
      this.client.exec(command, (err: Error | undefined, ch: ClientChannel) => {
        if (err) return fail(new SshError(`ssh exec on ${this.target.name} failed: ${err.message}`));
        let stdout = '';
        let stderr = '';
        let code: number | null = null;
        let signal: string | null = null;
        let timer: NodeJS.Timeout | undefined;
        if (opts.timeoutMs) {
          timer = setTimeout(() => {
            signal = 'TIMEOUT';
            ch.close();
          }, opts.timeoutMs);
        }
        ch.on('data', (b: Buffer) => {
          stdout += b.toString();
          if (!opts.bulkStdout) this.log?.write(b);
          if (opts.echo) writeOut(b);
        });
        ch.stderr.on('data', (b: Buffer) => {
          stderr += b.toString();
          this.log?.write(b);
          if (opts.echo) writeErr(b);
        });
        ch.on('exit', (c: number | null, sig?: string) => {
          code = c;
          if (sig) signal = sig;
        });
        ch.on('close', () => {
          if (timer) clearTimeout(timer);
          ok({ argv, exitCode: code, signal, durationMs: Math.round(performance.now() - t0), stdout, stderr });
        });
        if (opts.input !== undefined) ch.end(opts.input);
        else ch.end();
      });
    });
    this.log?.write(`${opts.bulkStdout ? `# (${result.stdout.length} bytes of stdout not logged)\n` : ''}# exit ${result.exitCode ?? result.signal} in ${result.durationMs} ms\n`);
    if (opts.check !== false && (result.exitCode !== 0 || result.signal)) {
      const tail = (result.stderr || result.stdout).trim().split('\n').slice(-5).join('\n');
      throw new SshError(`${this.target.name}: \`${command}\` ${result.signal ? `ended by ${result.signal}` : `exited with ${result.exitCode}`}${tail ? `:\n${tail}` : ''}`, result);
    }
    return result;
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpP ??= new Promise((ok, fail) => this.client.sftp((e, s) => (e ? fail(new SshError(`sftp to ${this.target.name}: ${e.message}`)) : ok(s))));
    return this.sftpP;
  }

  async putFile(local: string, remote: string, mode = 0o644): Promise<void> {
    const s = await this.sftp();
    this.log?.write(`\n# put ${local} -> ${remote}\n`);
    await new Promise<void>((ok, fail) => s.fastPut(local, remote, { mode }, (e) => (e ? fail(new SshError(`copy ${local} to ${this.target.name}:${remote}: ${e.message}`)) : ok())));
  }

  async getFile(remote: string, local: string): Promise<void> {
    const s = await this.sftp();
    await new Promise<void>((ok, fail) => s.fastGet(remote, local, (e) => (e ? fail(new SshError(`copy ${this.target.name}:${remote}: ${e.message}`)) : ok())));
  }

  close(): void {
    this.client.end();
    this.log?.end();
  }
}
