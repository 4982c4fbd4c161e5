import { Flags } from '@oclif/core';
import { ClientError, EXIT } from '../../src/api/client.js';
import type { LogGroup, LogView } from '../../src/api/control-plane.js';
import { ClientCommand, instanceIdArg, instancePath } from '../../src/cli/base.js';
import { followLogs } from '../../src/cli/follow.js';
import { formatLogGroups, formatLogs } from '../../src/cli/format.js';
import { optionalDurationFlag } from '../../src/cli/job-spec.js';
import { defaultConfig } from '../../src/core/config.js';
import { escapeControl } from '../../src/output/escape.js';

export default class InstanceLogs extends ClientCommand {
  static override description = `Print the captured output (last ${defaultConfig.maxOutputBytes / 1024} KiB of stdout and stderr) of an instance, per node and attempt; --follow prints it as it is written, --group prints identical outputs once.`;
  static override examples = [
    '<%= config.bin %> instance logs 3f2a9c0d1e4b5a67',
    '<%= config.bin %> instance logs 3f2a9c0d1e4b5a67 --node …abcdef123456',
    '<%= config.bin %> instance logs 3f2a9c0d1e4b5a67 --node web-1',
    '<%= config.bin %> instance logs 3f2a9c0d1e4b5a67 --follow',
    '<%= config.bin %> instance logs 3f2a9c0d1e4b5a67 --follow --timeout 10m',
    '<%= config.bin %> instance logs 3f2a9c0d1e4b5a67 --group',
  ];
  static override args = instanceIdArg;
  static override flags = {
    node: Flags.string({ description: 'only this node (name, full id or id suffix)' }),
    follow: Flags.boolean({
      char: 'f',
      description: 'print each line as it is written, as "NODE | line" (stdout) or "NODE ! line" (stderr), until the instance ends; exit 0 if it succeeded, 1 if not. With --json: one JSON object per line ({nodeId, name, stream, step, attempt, text})',
    }),
    timeout: Flags.string({ description: 'with --follow: stop after this long (exit 124), having printed what came by then' }),
    group: Flags.boolean({ description: "each node's last attempt, identical outputs (stdout, stderr and outcome) printed once under the list of their nodes" }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(InstanceLogs);
    if (flags.follow && flags.group) {
      throw new ClientError('--follow and --group cannot be used together: a group compares whole outputs, known once the attempts ended. Follow it, or group it once it ended (chorus instance wait ID; chorus instance logs ID --group)', EXIT.badInput, 'bad-input');
    }
    if (flags.timeout !== undefined && !flags.follow) {
      throw new ClientError('--timeout bounds --follow: without --follow the logs are printed at once (to wait for the end: chorus instance wait ID --timeout DUR)', EXIT.badInput, 'bad-input');
    }
    const timeoutMs = optionalDurationFlag('timeout', flags.timeout);
    const client = await this.client(flags);
    const path = instancePath(args.id, '/logs');
    const node = flags.node ?? null;
    if (flags.follow) {
      const exitCode = await followLogs(client, args.id, node, flags.json, { line: (l) => process.stdout.write(`${flags.json ? l : escapeControl(l)}\n`), warn: (l) => this.progress(l) }, timeoutMs);
      return this.finish(exitCode);
    }
    const query = new URLSearchParams({ ...(flags.group ? { group: '1' } : {}), ...(node === null ? {} : { node }) }).toString();
    if (flags.group) {
      const groups = await client.request<LogGroup[]>('GET', `${path}?${query}`);
      return this.output(groups, () => formatLogGroups(groups));
    }
    const logs = await client.request<LogView[]>('GET', `${path}${query ? `?${query}` : ''}`);
    this.output(logs, () => formatLogs(logs));
  }
}
