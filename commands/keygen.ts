import { Command, Flags } from '@oclif/core';

export default class Keygen extends Command {
  static override description =
    'Print a new swarm key. Every node of a cluster is started with the same key file (--swarm-key FILE); a peer without it cannot connect.';
  static override examples = [
    '<%= config.bin %> keygen > swarm.key && chmod 600 swarm.key',
    '<%= config.bin %> daemon --swarm-key swarm.key --join /ip4/10.0.0.5/tcp/7400',
  ];
  static override flags = { json: Flags.boolean({ description: 'print exactly one JSON document on stdout: {"swarmKey": TEXT}' }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(Keygen);
    const { generateSwarmKey } = await import('../src/network/swarm-key.js');
    const key = generateSwarmKey();
    process.stdout.write(flags.json ? `${JSON.stringify({ swarmKey: key })}\n` : key);
  }
}
