// How an attempt ended, in words: "failed (exit-code 3)", "failed (signal SIGKILL)",
// "succeeded". The one renderer of it, for the CLI, the dashboard and the daemon's log:
// pure, and free of imports and of Node's and the DOM's types, so the browser bundle
// (scripts/build-ui.mjs) takes the same code as the daemon.

/** What the words are made of: an attempt's view, a log group, the worker's outcome all have it. */
export interface EndedAs {
  status: string;
  reason: string | null;
  exitCode: number | null;
  /** Set (with reason `signal`) to the signal that killed the command. */
  signal?: string | null;
}

/**
 * The reason with what it carries: "exit-code 3", "signal SIGKILL", "node-lost"; null
 * without a reason. A record from before `signal` existed may say `exit-code` without a
 * code (the command died by a signal): then the reason alone.
 */
export function reasonText(a: EndedAs): string | null {
  if (a.reason === null) return null;
  if (a.reason === 'exit-code' && a.exitCode !== null) return `exit-code ${a.exitCode}`;
  if (a.reason === 'signal' && a.signal) return `signal ${a.signal}`;
  return a.reason;
}

/** The status, and the reason when there is one: "failed (exit-code 3)", "failed (signal SIGKILL)", "failed (node-lost)", "succeeded". */
export function outcomeText(a: EndedAs): string {
  const why = reasonText(a);
  return why === null ? a.status : `${a.status} (${why})`;
}
