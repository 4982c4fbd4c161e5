// The variables that name one attempt's processes: every command runs with them, and what
// must be killed of an attempt (a crash's leftovers, an escape from the process group) is
// found by them. Pure, for the worker and the executor alike.

/** What tells one attempt's processes from every other's: variables they all carry, and ones they lack. */
export interface AttemptMarks {
  /** CHORUS_INSTANCE_ID, CHORUS_NODE_ID, CHORUS_ATTEMPT, and CHORUS_STEP for a --pre/--post step. */
  vars: Record<string, string>;
  /** Variables it was started without (a subtask has no CHORUS_STEP). */
  absent: string[];
}

const MARK_KEYS = ['CHORUS_INSTANCE_ID', 'CHORUS_NODE_ID', 'CHORUS_ATTEMPT'] as const;

/**
 * The marks of the attempt that runs with `env`, or null when `env` does not name one (no
 * CHORUS_INSTANCE_ID, CHORUS_NODE_ID and CHORUS_ATTEMPT): then no search may be made, as it
 * would match every process.
 */
export function attemptMarks(env: Record<string, string>): AttemptMarks | null {
  if (!MARK_KEYS.every((key) => (env[key] ?? '') !== '')) return null;
  const vars: Record<string, string> = {};
  for (const key of MARK_KEYS) vars[key] = env[key] as string;
  // A subtask's command has no CHORUS_STEP: that tells it from the instance's --pre/--post.
  if (env.CHORUS_STEP === undefined) return { vars, absent: ['CHORUS_STEP'] };
  return { vars: { ...vars, CHORUS_STEP: env.CHORUS_STEP }, absent: [] };
}
