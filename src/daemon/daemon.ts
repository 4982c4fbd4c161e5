// The daemon: one process owning one data directory. It takes the lock, opens the files
// (state, journal, keys, token), starts libp2p, assembles the node (assemble.ts) and
// serves its control-plane service over HTTP; stop undoes all of it, in reverse order, and so
// does a start that fails part-way (started-parts.ts).
import { mkdir, readFile, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { systemClock, type Clock } from '../core/clock.js';
import type { InvariantError } from '../core/assert.js';
import { configFrom, type ChorusConfig } from '../core/config.js';
import { LogRepeats, type Logger } from '../core/log.js';
import { CHORUS_VERSION } from '../core/version.js';
import { ApiServer } from '../api/server.js';
import { ControlService } from '../api/service.js';
import { KeeperQueries } from '../api/keeper-queries.js';
import { MAX_ANSWER_BYTES, webhookClient } from '../scheduler/webhook-io.js';
import { iso, webhookBody } from '../api/views.js';
import { probeContainment, type Containment } from '../executor/containment.js';
import { processExecutor } from '../executor/process-executor.js';
import { Libp2pTransport, transportConfigOf } from '../network/libp2p-transport.js';
import { loadOrCreatePrivateKey } from '../network/peer-key.js';
import { Ed25519RecordKeys } from '../network/record-keys.js';
import { writeFileDurable } from '../store/durable-file.js';
import { FileJournal } from '../store/journal.js';
import { DataDirLock } from '../store/lock.js';
import { FileOutputStore } from '../store/output-store.js';
import { RecordStore } from '../store/record-store.js';
import { StateFilePersister } from '../store/state-file.js';
import { assembleNode } from '../node/assemble.js';
import { TokenStore } from '../api/tokens.js';
import type { DaemonMetrics } from './metrics.js';
import type { PrivateKey } from '@libp2p/interface';
import { loadOrCreateToken, removeLeftoverCopies, reportVanished, swarmKeyOf, vanishedFiles } from './data-dir.js';
import { TOPICS, type ChorusNode } from '../node/node.js';
import { dataPaths, type NodeInfo } from '../store/paths.js';
import { StartedParts } from './started-parts.js';

/** A flag whose value cannot work (the daemon exits 2, naming the flag). */
export class DaemonFlagError extends Error {}

export interface DaemonOptions {
  dataDir: string;
  listen: string[];
  join: string[];
  apiHost: string;
  apiPort: number;
  name: string | null;
  tags: Record<string, string>;
  mdns: boolean;
  /** Swarm key file shared by every node; null uses (or creates) DIR/swarm.key. There is no keyless mode. */
  swarmKeyFile: string | null;
  log: Logger;
  config?: Partial<ChorusConfig>;
  /** Serve the API over HTTPS with this certificate and key (PEM files). */
  tls?: { certFile: string; keyFile: string } | null;
  /** Let the API listen beyond loopback without TLS (tokens in clear; warned at every start). */
  insecureApi?: boolean;
  /** Serve Prometheus metrics at http://HOST:PORT/metrics (`--metrics`); null: none. */
  metrics?: { host: string; port: number } | null;
  clock?: Clock;
  /** What holds each attempt's processes together (a test forces one); default: probed at start (probeContainment). */
  containment?: Containment;
  /** A broken invariant (already logged): the process must stop. Default: exit 70 at once. */
  onFatal?: (err: InvariantError) => void;
}

const inUse = (err: unknown) => /EADDRINUSE/.test(`${(err as NodeJS.ErrnoException)?.code} ${(err as Error)?.message}`);

/** Exit status of a daemon stopped by a broken invariant (EX_SOFTWARE). */
export const EXIT_INVARIANT = 70;

export class ChorusDaemon {
  private stopping = false;
  /** The /metrics server, when there is one (closed at stop). */
  metricsServer: Server | null = null;

  private constructor(
    private readonly options: DaemonOptions,
    private readonly lock: DataDirLock,
    private readonly transport: Libp2pTransport,
    private readonly keys: Ed25519RecordKeys,
    private readonly journal: FileJournal,
    readonly node: ChorusNode,
    readonly service: ControlService,
    private readonly api: ApiServer,
    private readonly nodeLog: Logger,
    private readonly containment: Containment,
  ) {}

  /** Changes what is logged from now on (SIGHUP after the config file changed it). */
  setLogLevel(level: string): void {
    this.options.log.level = level;
    this.nodeLog.level = level;
  }

  /**
   * Starts a daemon: the data directory's files, the network, the node, then the servers. A
   * start that fails part-way stops what it started, the last first, and releases the lock.
   */
  static async start(options: DaemonOptions): Promise<ChorusDaemon> {
    const config = configFrom(options.config ?? {}); // before anything is opened: a bad knob changes nothing
    const tls = await apiTlsOf(options);
    await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
    const lock = DataDirLock.acquire(options.dataDir);
    const started = new StartedParts(options.log);
    started.add('the data directory lock', () => lock.release());
    try {
      return await ChorusDaemon.startLocked(options, config, tls, lock, started);
    } catch (err) {
      await started.stopAll();
      throw err;
    }
  }

  /** The start once the data directory is ours; every part it starts is added to `started`. */
  private static async startLocked(options: DaemonOptions, config: ChorusConfig, tls: ApiTls, lock: DataDirLock, started: StartedParts): Promise<ChorusDaemon> {
    const { dataDir, log } = options;
    const clock = options.clock ?? systemClock;
    const paths = dataPaths(dataDir);
    // prom-client is loaded only by a daemon that serves metrics.
    const metrics = options.metrics ? new (await import('./metrics.js')).DaemonMetrics() : null;
    const files = await openDataDir(options, config, clock, metrics, started);
    const transport = await startTransport(options, config, files.privateKey, started);
    const nodeId = transport.localId;
    await adoptUnsignedRecords(files.store, nodeId, files.keys, log);
    const nodeLog = log.child({ node: nodeId.slice(-8) });
    const containment = options.containment ?? probeContainment(nodeId);
    started.add('the process containment', () => containment.close());
    nodeLog.info({ containment: containment.view.kind, detail: containment.view.detail }, `a timeout or a cancel kills ${containment.view.detail}`);
    let apiUrl = '';
    const node = buildNode({ options, config, clock, files, transport, containment, metrics, nodeLog });
    const service = new ControlService({ node, clock, log: nodeLog, host: { api: () => apiUrl, dataDir, memory: memorySnapshot, networkCounters: () => transport.stats(), containment: containment.view } });
    metrics?.attach(node);
    reportVanished(files.vanished, dataDir, node, log);
    await writeFileDurable(paths.nodeId, `${nodeId}\n`);
    // A member that is not a keeper asks a keeper what reads the cluster's work.
    const api = new ApiServer(new KeeperQueries(service, node), await TokenStore.open(paths.tokens, await loadOrCreateToken(paths.token)), log);
    const daemon = new ChorusDaemon(options, lock, transport, files.keys, files.journal, node, service, api, nodeLog, containment);
    started.add('the node', () => node.leave());
    await node.start();
    started.add('the --join retries', () => {
      daemon.stopping = true;
    });
    for (const address of options.join) void daemon.joinThrough(address, config);
    const servers = await startServers(options, api, tls, metrics, started);
    apiUrl = servers.apiUrl;
    daemon.metricsServer = servers.metrics?.server ?? null;
    await files.store.flush();
    const info: NodeInfo = {
      nodeId,
      name: node.selfRecord.name,
      multiaddrs: transport.addresses(),
      api: apiUrl,
      pid: process.pid,
      version: CHORUS_VERSION,
      startedAt: iso(clock.now()) as string,
      ...(servers.metrics ? { metrics: servers.metrics.url } : {}),
      ...(options.tls ? { tlsCert: resolve(options.tls.certFile) } : {}),
    };
    await writeFileDurable(paths.nodeInfo, `${JSON.stringify(info, null, 2)}\n`);
    log.info({ nodeId, api: apiUrl, multiaddrs: info.multiaddrs }, 'chorus daemon ready');
    return daemon;
  }

  /**
   * Dials a --join address until it answers (the member may start after us), with backoff;
   * says so at the first failure and then once a minute, not at every try.
   */
  private async joinThrough(address: string, config: ChorusConfig): Promise<void> {
    const { clock = systemClock, log } = this.options;
    let lastReportMs = -Infinity;
    for (let attempt = 0; !this.stopping; attempt++) {
      try {
        const peer = await this.transport.dialAddr(address);
        log.info({ address, peer, attempts: attempt + 1 }, 'joined through member');
        return;
      } catch (err) {
        if (this.stopping) return;
        if (clock.now() - lastReportMs >= config.joinRetryReportMs) {
          lastReportMs = clock.now();
          log.warn({ address, err: (err as Error).message, attempts: attempt + 1 }, `cannot reach --join ${address} yet; still trying (reported once a minute)`);
        }
        await new Promise<void>((r) => clock.setTimer(Math.min(config.joinRetryBaseMs * 2 ** attempt, config.joinRetryMaxMs), r));
      }
    }
  }

  /** Graceful stop: leave the cluster, cancel running attempts, flush state, release the lock. */
  async stop(): Promise<void> {
    this.stopping = true;
    // First, so no client mistakes a stopping daemon for a running one.
    await rm(dataPaths(this.options.dataDir).nodeInfo, { force: true });
    await this.node.leave();
    this.containment.close();
    await this.api.close();
    await new Promise<void>((resolve) => (this.metricsServer ? this.metricsServer.close(() => resolve()) : resolve()));
    await this.node.store.close();
    await this.transport.stop();
    await this.keys.close();
    this.journal.close();
    this.lock.release();
  }
}

type ApiTls = { cert: Buffer; key: Buffer } | null;

/** The API's certificate and key, if any; refuses an API other hosts can reach in clear text unless --insecure-api says so (then warns). */
async function apiTlsOf(options: DaemonOptions): Promise<ApiTls> {
  const tls = options.tls ? await readTls(options.tls) : null;
  const exposed = !isLoopback(options.apiHost);
  if (exposed && !tls && !options.insecureApi) {
    throw new DaemonFlagError(
      `--api ${options.apiHost}:${options.apiPort}: an API other hosts can reach needs TLS, or its tokens travel in clear: ` +
        'give --tls-cert FILE --tls-key FILE (or --insecure-api to accept clear text)',
    );
  }
  if (exposed && !tls) options.log.warn({ api: `${options.apiHost}:${options.apiPort}` }, `the API listens on ${options.apiHost} without TLS (--insecure-api): tokens and commands travel in clear`);
  return tls;
}

/** The files of a locked data directory, open: what the node is built from. */
interface OpenDataDir {
  store: RecordStore;
  journal: FileJournal;
  privateKey: PrivateKey;
  keys: Ed25519RecordKeys;
  vanished: Awaited<ReturnType<typeof vanishedFiles>>;
}

/** Cleans up after a crashed daemon, then loads the state, opens the journal and the node's keys. */
async function openDataDir(options: DaemonOptions, config: ChorusConfig, clock: Clock, metrics: DaemonMetrics | null, started: StartedParts): Promise<OpenDataDir> {
  const { dataDir, log } = options;
  const paths = dataPaths(dataDir);
  // We hold the lock, so a node.json here is a crashed daemon's: never let a client trust it.
  await rm(paths.nodeInfo, { force: true });
  const leftovers = await removeLeftoverCopies(dataDir);
  if (leftovers.length > 0) log.info({ removed: leftovers }, `removed ${leftovers.length} half-written cop${leftovers.length === 1 ? 'y' : 'ies'} a previous daemon left in ${dataDir}`);
  const vanished = await vanishedFiles(dataDir);
  const repeats = new LogRepeats(clock);
  const store = new RecordStore({
    persister: new StateFilePersister(dataDir),
    clock,
    flushDelayMs: config.storeFlushDelayMs,
    flushRetryMs: config.storeFlushRetryMs,
    ...(metrics ? { onFlushed: (e: Parameters<DaemonMetrics['storeFlushed']>[0]) => metrics.storeFlushed(e) } : {}),
    // Once a minute per file: a full disk fails every retry (every storeFlushRetryMs) until space is back.
    onFlushError: (err, path) => repeats.log(log, 'error', path, { err, path }, `${(err as Error).message}; the changes stay in memory and are written when it can be (tried every ${config.storeFlushRetryMs} ms)`),
  });
  await store.load();
  // Only once loaded: closing writes what is held, which must never replace a file that failed to load.
  started.add('the record store', () => store.close());
  if (store.tornLogLine) {
    log.warn({ path: paths.stateLog }, `the last line of ${paths.stateLog} was cut short (the daemon stopped in the middle of a write that was never acknowledged); it was dropped`);
  }
  for (const r of store.rejectedOnLoad) {
    log.warn({ record: r.name, index: r.index, error: r.error, quarantine: store.quarantinePath }, `${r.name} in ${store.path} is invalid and was set aside in ${store.quarantinePath}: ${r.error}`);
  }
  const journal = new FileJournal(paths.journal);
  journal.open();
  started.add('the journal', () => journal.close());
  const privateKey = await loadOrCreatePrivateKey(dataDir);
  const keys = new Ed25519RecordKeys(privateKey);
  started.add('the record keys', () => keys.close());
  return { store, journal, privateKey, keys, vanished };
}

/** libp2p, listening; a --listen address in use is a flag error. */
async function startTransport(options: DaemonOptions, config: ChorusConfig, privateKey: PrivateKey, started: StartedParts): Promise<Libp2pTransport> {
  const { log } = options;
  const transport = await Libp2pTransport.create({
    privateKey,
    listen: options.listen,
    mdns: options.mdns,
    swarmKey: await swarmKeyOf(options.swarmKeyFile, options.dataDir, log),
    topics: TOPICS,
    config: transportConfigOf(config),
    onConnectionRefused: (remoteAddr, why) => log.warn({ remoteAddr, why }, `refused a connection from ${remoteAddr}: ${why}`),
    log,
  });
  // Before start(): a start that failed half-way is stopped too.
  started.add('the network', () => transport.stop());
  await transport.start().catch((err: unknown) => {
    throw inUse(err) ? new DaemonFlagError(`--listen ${options.listen.join(' ')}: the address is already in use; pick another port`) : err;
  });
  return transport;
}

/** The node over the open data directory and the started network; nothing of it runs until node.start(). */
function buildNode(parts: {
  options: DaemonOptions;
  config: ChorusConfig;
  clock: Clock;
  files: OpenDataDir;
  transport: Libp2pTransport;
  containment: Containment;
  metrics: DaemonMetrics | null;
  nodeLog: Logger;
}): ChorusNode {
  const { options, config, files, metrics } = parts;
  return assembleNode({
    transport: parts.transport,
    clock: parts.clock,
    random: Math.random,
    config,
    store: files.store,
    keys: files.keys,
    journal: files.journal,
    outputs: new FileOutputStore(dataPaths(options.dataDir).logs),
    executor: processExecutor(parts.containment),
    log: parts.nodeLog,
    fatal: (err) => {
      options.log.fatal({ err, guarantee: err.guarantee }, `${err.message}; the daemon stops`);
      (options.onFatal ?? (() => process.exit(EXIT_INVARIANT)))(err);
    },
    name: options.name ?? hostname(),
    tags: options.tags,
    webhooks: { ...webhookClient({ timeoutMs: config.webhookTimeoutMs, maxAnswerBytes: MAX_ANSWER_BYTES }), body: webhookBody },
    ...(metrics ? { observer: metrics } : {}),
  });
}

/** Signs the records of a state file written before records were signed, and sets aside other nodes' unsigned ones. */
async function adoptUnsignedRecords(store: RecordStore, nodeId: string, keys: Ed25519RecordKeys, log: Logger): Promise<void> {
  const adopted = await store.adoptUnsigned(nodeId, keys);
  if (adopted.signed + adopted.setAside.length === 0) return;
  log.warn(
    { signed: adopted.signed, setAside: adopted.setAside, quarantine: store.quarantinePath },
    `${store.path} was written before records were signed: ${adopted.signed} record(s) of this node signed now` +
      (adopted.setAside.length > 0 ? `, ${adopted.setAside.length} written by other nodes set aside in ${store.quarantinePath}` : ''),
  );
}

/** The control API and, with --metrics, the metrics server, listening; an address in use is a flag error. */
async function startServers(
  options: DaemonOptions,
  api: ApiServer,
  tls: ApiTls,
  metrics: DaemonMetrics | null,
  started: StartedParts,
): Promise<{ apiUrl: string; metrics: { server: Server; url: string } | null }> {
  const apiUrl = await api.listen(options.apiHost, options.apiPort, tls).catch((err: unknown) => {
    throw inUse(err) ? new DaemonFlagError(`--api ${options.apiHost}:${options.apiPort}: the address is already in use; pick another port`) : err;
  });
  started.add('the API', () => api.close());
  if (!metrics || !options.metrics) return { apiUrl, metrics: null };
  const { host, port } = options.metrics;
  const served = await metrics.serve(host, port).catch((err: unknown) => {
    throw inUse(err) ? new DaemonFlagError(`--metrics ${host}:${port}: the address is already in use; pick another port`) : err;
  });
  started.add('the metrics server', () => new Promise<void>((done) => served.server.close(() => done())));
  return { apiUrl, metrics: served };
}

function memorySnapshot() {
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external };
}

/** 127.0.0.0/8, ::1 and localhost: only this host can reach them. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** The certificate and key, checked to form a TLS context before anything starts (a flag error otherwise). */
async function readTls(files: { certFile: string; keyFile: string }): Promise<{ cert: Buffer; key: Buffer }> {
  const read = async (flag: string, path: string) => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new DaemonFlagError(`${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  const cert = await read('--tls-cert', files.certFile);
  const key = await read('--tls-key', files.keyFile);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new DaemonFlagError(`--tls-cert ${files.certFile} --tls-key ${files.keyFile}: not a usable certificate and key (${(err as Error).message})`);
  }
  return { cert, key };
}
