// What a starting daemon has started so far, so that a start that fails part-way stops it
// all again, the last started first, and leaves nothing running and the directory unlocked.
import type { Logger } from '../core/log.js';

export class StartedParts {
  private readonly parts: { name: string; stop: () => unknown }[] = [];

  constructor(private readonly log: Logger) {}

  /** `stop` undoes a part that has just started (or begun to start: it must cope with a half-started one). */
  add(name: string, stop: () => unknown): void {
    this.parts.push({ name, stop });
  }

  /**
   * Stops every part, in the reverse order of add(). A part that fails to stop is logged and
   * the others are stopped all the same: the error that failed the start is the one to report.
   */
  async stopAll(): Promise<void> {
    for (const part of this.parts.splice(0).reverse()) {
      try {
        await part.stop();
      } catch (err) {
        this.log.error({ err, part: part.name }, `the start failed, and stopping ${part.name} failed too: ${(err as Error).message}`);
      }
    }
  }
}
