// Invariant errors: a broken guarantee is a bug, and a node that hit one must stop, naming
// the guarantee, rather than log a line and go on (DESIGN.md, "The guarantees").
// Operating errors (a command that cannot spawn, a full disk) are not invariants: they
// are handled where they happen and reported.

/** The guarantees of DESIGN.md, by number, as an invariant error names them. */
export const GUARANTEES = {
  1: 'a subtask belongs to one node forever',
  2: 'only the owner runs it',
  3: 'at most once per attempt, across crashes',
  4: 'the target set is fixed at creation',
  5: 'retries stay home',
  6: 'replicas converge',
  7: 'two leaders cannot double a fire',
  8: 'an acknowledged write is not lost',
} as const;

export type Guarantee = keyof typeof GUARANTEES;

/** A broken invariant. The daemon stops on it; the simulator fails the run. */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';

  constructor(
    /** The guarantee it protects, or null for an internal invariant that none names. */
    readonly guarantee: Guarantee | null,
    detail: string,
  ) {
    super(guarantee === null ? `invariant broken: ${detail}` : `invariant broken (guarantee ${guarantee}: ${GUARANTEES[guarantee]}): ${detail}`);
  }
}

/** Throws an InvariantError naming `guarantee` unless `condition` holds. */
export function invariant(condition: unknown, guarantee: Guarantee | null, detail: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantError(guarantee, typeof detail === 'function' ? detail() : detail);
}

export function isInvariantError(err: unknown): err is InvariantError {
  return err instanceof InvariantError;
}
