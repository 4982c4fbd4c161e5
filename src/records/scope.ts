// Who holds which record (DESIGN.md, guarantee 6). The keepers hold every record. Every
// other member holds the records the whole cluster needs (members, jobs, instances and
// their cancels and pauses, fire decisions, webhook deliveries) and, of the work records,
// only its own: the subtasks it owns and the steps it runs. So a broadcast's results
// travel to the keepers, and a member's memory is bounded by its own work.
import type { AnyRecord } from './types.js';

/** The one member besides the keepers that holds `record`, or null when every member does. */
export function holderOf(record: AnyRecord): string | null {
  if (record.kind === 'subtask') return record.record.nodeId;
  if (record.kind === 'step') return record.record.runnerNodeId;
  return null;
}

/**
 * The same, read from a record as it arrived (not yet validated), so that a member drops
 * another's work before it parses and checks it. Undefined: not a work record it can tell.
 */
export function holderOfRaw(item: unknown): string | null | undefined {
  if (typeof item !== 'object' || item === null) return undefined;
  const { kind, record } = item as { kind?: unknown; record?: unknown };
  if (typeof record !== 'object' || record === null) return undefined;
  const holder = kind === 'subtask' ? (record as { nodeId?: unknown }).nodeId : kind === 'step' ? (record as { runnerNodeId?: unknown }).runnerNodeId : null;
  return typeof holder === 'string' || holder === null ? holder : undefined;
}
