// Prometheus metrics of one daemon (`--metrics HOST:PORT`, text format at /metrics), with
// prom-client. Events come through the node's observer (core/observer.ts); counters the
// node keeps anyway (membership, replication) are read at each scrape. Every figure is this
// node's own: subtasks it ran, instances it created or saw end as leader, members as it
// sees them; sum or take the max over nodes in queries.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeObserver } from '../records/observer.js';
import type { ChorusNode } from '../node/node.js';

const SECONDS = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];
const DETECTION_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64];
const FLUSH_SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

/** A counter whose value is read from a number the node keeps (monotonic), at each scrape. */
function mirroredCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

export class DaemonMetrics implements NodeObserver {
  readonly registry = new Registry();
  private readonly instancesCreated: Counter<'job' | 'trigger'>;
  private readonly instancesFinished: Counter<'job' | 'status'>;
  private readonly attemptsEnded: Counter<'job' | 'kind' | 'status' | 'reason'>;
  private readonly attemptSeconds: Histogram<'job' | 'kind'>;
  private readonly leaderChanges: Counter;
  private readonly detectionSeconds: Histogram;
  private readonly flushSeconds: Histogram<'kind'>;
  private readonly flushFailures: Counter;
  private readonly stateBytes: Gauge;

  constructor() {
    const registers = [this.registry];
    // Process and runtime: CPU, memory, handles, and nodejs_eventloop_lag_seconds.
    collectDefaultMetrics({ register: this.registry, prefix: 'chorus_' });
    // Gauges prom-client names *_total, which `promtool check metrics` refuses (a counter's suffix).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(`chorus_${name}`);
    this.instancesCreated = new Counter({ name: 'chorus_instances_created_total', help: 'Instances this node created as leader, by job and trigger.', labelNames: ['job', 'trigger'], registers });
    this.instancesFinished = new Counter({
      name: 'chorus_instances_finished_total',
      help: 'Instances seen ending while this node was the leader, by job and status.',
      labelNames: ['job', 'status'],
      registers,
    });
    this.attemptsEnded = new Counter({
      name: 'chorus_attempts_ended_total',
      help: 'Attempts this node ran that ended (kind subtask, pre or post), by job, status and reason (reason "none" for a success).',
      labelNames: ['job', 'kind', 'status', 'reason'],
      registers,
    });
    this.attemptSeconds = new Histogram({ name: 'chorus_attempt_duration_seconds', help: 'Run time of the attempts this node ran, by job and kind.', labelNames: ['job', 'kind'], buckets: SECONDS, registers });
    this.leaderChanges = new Counter({ name: 'chorus_leader_changes_total', help: 'Times the leader this node sees changed.', registers });
    this.detectionSeconds = new Histogram({
      name: 'chorus_failure_detection_seconds',
      help: 'For each member this node declared dead: the time since it last heard from it.',
      buckets: DETECTION_SECONDS,
      registers,
    });
    this.flushSeconds = new Histogram({ name: 'chorus_store_flush_seconds', help: 'Time of each write of the state files (kind append or snapshot).', labelNames: ['kind'], buckets: FLUSH_SECONDS, registers });
    this.flushFailures = new Counter({ name: 'chorus_store_flush_failures_total', help: 'Writes of the state files that failed (tried again).', registers });
    this.stateBytes = new Gauge({ name: 'chorus_store_bytes', help: 'Size of the state files (snapshot and change log) after the last write.', registers });
  }

  /** The node is assembled after the metrics exist (the store's writes are observed from the start); what is read from it at each scrape is registered here. */
  attach(node: ChorusNode): void {
    const registers = [this.registry];
    // prom-client calls collect() with the metric as `this`.
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('chorus_leader', '1 when this node is the leader.', () => (node.membership.leaderId() === node.id ? 1 : 0));
    gauge('chorus_records', 'Records this node holds.', () => node.store.size());
    gauge('chorus_running_subtasks', 'Attempts this node is running now.', () => node.worker.runningCount());
    gauge('chorus_members_draining', 'Alive members that are draining (take no new work), as this node sees them.', () => node.membership.members().filter((m) => m.draining && m.state === 'alive').length);
    new Gauge({
      name: 'chorus_members',
      help: 'Members as this node sees them, by state.',
      labelNames: ['state'],
      registers,
      collect() {
        const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
        for (const m of node.membership.members()) counts[m.state] = (counts[m.state] ?? 0) + 1;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    const replication = node.replicator.counters;
    const membership = node.membership.counters;
    const mirrored: [string, string, () => number][] = [
      ['chorus_gossip_messages_sent_total', 'Gossip deltas (batches of records) this node published.', () => replication.deltasSent],
      ['chorus_gossip_messages_received_total', 'Gossip deltas this node received.', () => replication.deltasReceived],
      ['chorus_gossip_bytes_sent_total', 'Bytes of gossip deltas this node published.', () => replication.deltaBytesSent],
      ['chorus_gossip_bytes_received_total', 'Bytes of gossip deltas this node received.', () => replication.deltaBytesReceived],
      ['chorus_anti_entropy_exchanges_total', 'Anti-entropy exchanges this node completed.', () => replication.syncsCompleted],
      ['chorus_anti_entropy_failures_total', 'Anti-entropy exchanges that failed.', () => replication.syncsFailed],
      ['chorus_anti_entropy_pages_total', 'Pages of records moved by anti-entropy, either way.', () => replication.syncPages],
      ['chorus_anti_entropy_bytes_sent_total', 'Bytes of anti-entropy pages this node sent.', () => replication.syncBytesSent],
      ['chorus_records_rejected_total', 'Records refused from the network: malformed, or with a wrong signature or writer.', () => replication.recordsRejected],
      ['chorus_records_forged_total', 'Of the rejected records, those whose signature or writer was wrong.', () => replication.recordsForged],
      ['chorus_membership_probes_total', 'SWIM probes this node sent.', () => membership.probesSent],
      ['chorus_membership_suspicions_total', 'Suspicions this node started or heard of.', () => membership.suspicions],
      ['chorus_membership_dead_verdicts_total', 'Members this node declared dead.', () => membership.deadVerdicts],
      ['chorus_membership_reaped_total', 'Members dead or left for reapAfterMs that this node forgot, with their member records.', () => membership.reaped],
      ['chorus_stalls_total', 'Times this node found its own event loop had stalled.', () => membership.stallsDetected],
    ];
    for (const [name, help, read] of mirrored) mirroredCounter(this.registry, name, help, read);
  }

  // ---- NodeObserver ---------------------------------------------------------------

  instanceCreated(e: Parameters<NonNullable<NodeObserver['instanceCreated']>>[0]): void {
    this.instancesCreated.inc({ job: e.job, trigger: e.trigger });
  }

  instanceFinished(e: Parameters<NonNullable<NodeObserver['instanceFinished']>>[0]): void {
    this.instancesFinished.inc({ job: e.job, status: e.status });
  }

  attemptEnded(e: Parameters<NonNullable<NodeObserver['attemptEnded']>>[0]): void {
    const kind = e.step ?? 'subtask';
    this.attemptsEnded.inc({ job: e.job, kind, status: e.status, reason: e.reason ?? 'none' });
    if (e.durationMs !== null) this.attemptSeconds.observe({ job: e.job, kind }, e.durationMs / 1000);
  }

  leaderChanged(): void {
    this.leaderChanges.inc();
  }

  memberDead(e: Parameters<NonNullable<NodeObserver['memberDead']>>[0]): void {
    if (e.silentForMs !== null) this.detectionSeconds.observe(e.silentForMs / 1000);
  }

  storeFlushed(e: Parameters<NonNullable<NodeObserver['storeFlushed']>>[0]): void {
    if (!e.ok) {
      this.flushFailures.inc();
      return;
    }
    this.flushSeconds.observe({ kind: e.compacted ? 'snapshot' : 'append' }, e.durationMs / 1000);
    this.stateBytes.set(e.bytes);
  }

  /** Serves /metrics on host:port; resolves with the address it listens on. */
  async serve(host: string, port: number): Promise<{ server: Server; url: string }> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' }).end(`${req.method} is not allowed on /metrics\n`);
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics failed: ${(err as Error).message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    const bound = typeof address === 'object' && address !== null ? address : { address: host, port };
    const shownHost = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
    return { server, url: `http://${shownHost}:${bound.port}/metrics` };
  }
}
