// `instance logs --group`: nodes whose current attempt ended the same way with the same
// output, shown once with the list of those nodes, as `dshbak -c` does for pdsh. stdout,
// stderr and the outcome (status, reason, exit code or signal) must all be equal: two nodes that
// printed the same but exited differently are not the same. The pre and post steps are
// groups of their own.
import type { LogGroup, LogView } from './control-plane.js';
import type { AttemptView, InstanceView } from './views.js';
import type { StepName } from '../records/types.js';

interface Item {
  node: LogGroup['nodes'][number];
  step: StepName | null;
  outcome: AttemptView;
  log: LogView | undefined;
}

/**
 * The groups of an instance's output (of one node when `only` is given): the pre step, then
 * the subtasks' groups, biggest first (ties: by their first node's name), then the post step.
 */
export function groupLogs(view: InstanceView, logs: readonly LogView[], options: { only?: string | null; nameOf?: (nodeId: string) => string | null } = {}): LogGroup[] {
  const only = options.only ?? null;
  const wanted = (nodeId: string | null): nodeId is string => nodeId !== null && (only === null || nodeId === only);
  const names = new Map(view.subtasks.map((s) => [s.nodeId, s.nodeName]));
  const nameOf = options.nameOf ?? ((nodeId: string) => names.get(nodeId) ?? null);
  const itemOf = (nodeId: string, step: StepName | null, outcome: AttemptView): Item => ({
    node: { nodeId, name: nameOf(nodeId), attempt: outcome.attempt },
    step,
    outcome,
    log: logOf(logs, nodeId, step, outcome.attempt),
  });
  const steps = (step: StepName) => {
    const s = view[step];
    return s && wanted(s.nodeId) ? [itemOf(s.nodeId, step, s)] : [];
  };
  const subtaskGroups = groupItems(view.subtasks.filter((s) => wanted(s.nodeId)).map((s) => itemOf(s.nodeId, null, s))).sort(
    (a, b) => b.nodes.length - a.nodes.length || byName(a.nodes[0]!, b.nodes[0]!),
  );
  return [...groupItems(steps('pre')), ...subtaskGroups, ...groupItems(steps('post'))];
}

function groupItems(items: Item[]): LogGroup[] {
  const groups = new Map<string, LogGroup>();
  for (const { node, step, outcome, log } of items) {
    const group: LogGroup = {
      nodes: [],
      step,
      status: outcome.status,
      reason: outcome.reason,
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      stdout: log?.stdout ?? '',
      stderr: log?.stderr ?? '',
      stdoutDroppedBytes: log?.stdoutDroppedBytes ?? 0,
      stderrDroppedBytes: log?.stderrDroppedBytes ?? 0,
    };
    const key = JSON.stringify(group);
    const same = groups.get(key) ?? group;
    groups.set(key, same);
    same.nodes.push(node);
  }
  for (const group of groups.values()) group.nodes.sort(byName);
  return [...groups.values()];
}

/**
 * A node's log of that very attempt; or, when the daemon could not reach the node, the
 * note it put in its place (attempt 0). A running attempt has no log yet.
 */
function logOf(logs: readonly LogView[], nodeId: string, step: StepName | null, attempt: number): LogView | undefined {
  const mine = logs.filter((l) => l.nodeId === nodeId);
  return mine.find((l) => (l.step ?? null) === step && l.attempt === attempt) ?? mine.find((l) => l.attempt === 0);
}

/** By name as people sort them (web-2 before web-10), nodes without a name by id, last. */
function byName(a: { nodeId: string; name: string | null }, b: { nodeId: string; name: string | null }): number {
  if (a.name !== null && b.name !== null) return a.name.localeCompare(b.name, 'en', { numeric: true }) || a.nodeId.localeCompare(b.nodeId);
  if (a.name !== b.name) return a.name === null ? 1 : -1;
  return a.nodeId.localeCompare(b.nodeId);
}
