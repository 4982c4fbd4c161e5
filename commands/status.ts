import { Command } from '@oclif/core';

export default class Status extends Command {
  static override description = 'Show this node.';
  async run(): Promise<void> {
    this.log('not yet');
  }
}
