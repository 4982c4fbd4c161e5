import { Command, Flags } from '@oclif/core';
import { CHORUS_VERSION } from '../src/core/version.js';

export default class Version extends Command {
  static override description = 'Print the chorus version and the Node.js version it runs on.';
  static override examples = ['<%= config.bin %> version', '<%= config.bin %> version --json'];
  static override flags = { json: Flags.boolean({ description: 'print exactly one JSON document on stdout: {"version": ..., "node": ...}' }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(Version);
    process.stdout.write(
      flags.json ? `${JSON.stringify({ version: CHORUS_VERSION, node: process.version })}\n` : `chorus ${CHORUS_VERSION} (node ${process.version})\n`,
    );
  }
}
