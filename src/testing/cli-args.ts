// What a CLI run looks like to a test, whether it ran in a process of its own
// (cluster-tests/support/cli.ts) or in the test process (run-cli.ts): its arguments, a
// context for assertion messages, and its stdout as one JSON document.
import { shellWord } from '../core/shell-quote.js';

/** Adds `--data-dir DIR` to the arguments (before a `--` separator, if any). */
export function withDataDir(args: string[], dataDir: string | undefined): string[] {
  if (dataDir === undefined) return [...args];
  const sep = args.indexOf('--');
  if (sep < 0) return [...args, '--data-dir', dataDir];
  return [...args.slice(0, sep), '--data-dir', dataDir, ...args.slice(sep)];
}

export interface CliOutput {
  /** Everything about the run, for assertion messages: expect(r.exitCode, r.context). */
  context: string;
  /** stdout parsed as exactly one JSON document; throws with the context otherwise. */
  json<T = unknown>(): T;
}

/** The context and JSON reader of a finished run; `how` is the exit line ("exit: 0", "exit: null signal: SIGKILL"). */
export function cliOutput(argv: string[], how: string, stdout: string, stderr: string): CliOutput {
  const context = `$ chorus ${argv.map(shellWord).join(' ')}\n${how}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
  return {
    context,
    json<T>(): T {
      try {
        return JSON.parse(stdout) as T;
      } catch (err) {
        throw new Error(`stdout is not exactly one JSON document (${(err as Error).message}):\n${context}`, { cause: err });
      }
    },
  };
}
