import { Command, Flags } from '@oclif/core';
import { ClientError, EXIT } from '../src/api/client.js';
import { badInput } from '../src/cli/job-spec.js';

export default class Daemon extends Command {
  static override description = 'Run a chorus node in the foreground. SIGTERM or SIGINT leaves the cluster and exits 0.';
  static override examples = [
    '<%= config.bin %> daemon --data-dir /var/lib/chorus --name web-1 --tag role=web',
    '<%= config.bin %> daemon --data-dir /var/lib/chorus --listen /ip4/0.0.0.0/tcp/7400 --join /ip4/10.0.0.5/tcp/7400 --tag role=web',
    '<%= config.bin %> daemon --data-dir /var/lib/chorus --swarm-key /etc/chorus/swarm.key --join /ip4/10.0.0.5/tcp/7400',
  ];
  static override flags = {
    config: Flags.string({ description: 'TOML file with any of these settings and [tuning] (a flag wins over CHORUS_* variables, which win over the file) [env: CHORUS_CONFIG]' }),
    'print-config': Flags.boolean({ description: 'print the effective configuration as TOML (a file --config takes) and exit' }),
    'data-dir': Flags.string({ description: 'data directory (one daemon per directory) [default: ~/.chorus] [env: CHORUS_DATA_DIR]' }),
    listen: Flags.string({ multiple: true, description: 'libp2p multiaddr to listen on (repeatable) [default: /ip4/0.0.0.0/tcp/7400] [env: CHORUS_LISTEN, comma-separated]' }),
    join: Flags.string({ multiple: true, description: 'multiaddr of a member to join through (repeatable) [env: CHORUS_JOIN, comma-separated]' }),
    api: Flags.string({ description: 'HOST:PORT of the control API (port 0 picks a free one) [default: 127.0.0.1:7410] [env: CHORUS_API]' }),
    name: Flags.string({ description: 'human name of this node [default: hostname] [env: CHORUS_NAME]' }),
    tag: Flags.string({ multiple: true, description: 'KEY=VALUE tag of this node, matched by job --tag (repeatable) [env: CHORUS_TAGS, comma-separated]' }),
    mdns: Flags.boolean({ description: 'also find members on the LAN by multicast DNS [env: CHORUS_MDNS]', allowNo: true }),
    'swarm-key': Flags.string({ description: 'file with a pre-shared key: only nodes with the same key can connect [env: CHORUS_SWARM_KEY]' }),
    metrics: Flags.string({ description: 'serve Prometheus metrics at http://HOST:PORT/metrics [env: CHORUS_METRICS]' }),
    'log-format': Flags.string({ options: ['json', 'pretty'], description: 'JSON lines, or readable lines [default: pretty on a terminal, json otherwise] [env: CHORUS_LOG_FORMAT]' }),
    'tls-cert': Flags.string({ description: 'PEM certificate: the API speaks HTTPS (needed to listen beyond loopback) [env: CHORUS_TLS_CERT]' }),
    'tls-key': Flags.string({ description: 'PEM private key of --tls-cert [env: CHORUS_TLS_KEY]' }),
    'insecure-api': Flags.boolean({ description: 'let the API listen beyond loopback without TLS (tokens travel in clear; warned at every start) [env: CHORUS_INSECURE_API]', allowNo: true }),
    'log-level': Flags.string({ options: ['trace', 'debug', 'info', 'warn', 'error', 'silent'], description: '[default: info] [env: CHORUS_LOG_LEVEL]' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Daemon);
    // Loaded here, not at the top: every command's start-up pays for top-level imports.
    const settingsModule = await import('../src/daemon/settings.js');
    const { layerFromEnv, layerFromFlags, readConfigFile, resolveSettings, settingsToToml, liveChanges, parseApiAddress, SettingsError } = settingsModule;
    const configFile = flags.config ?? (process.env.CHORUS_CONFIG?.trim() || undefined);
    const load = async () => {
      const file = configFile === undefined ? {} : await readConfigFile(configFile);
      return resolveSettings({ flags: layerFromFlags(flags), env: layerFromEnv(process.env), file });
    };
    let resolved: Awaited<ReturnType<typeof load>>;
    try {
      resolved = await load();
    } catch (err) {
      if (err instanceof SettingsError) throw badInput(err.message);
      throw err;
    }
    if (flags['print-config']) {
      process.stdout.write(settingsToToml(resolved));
      return;
    }
    let current = resolved.settings;
    const api = parseApiAddress(current.api) as { host: string; port: number };
    const { runDaemon, DaemonStartError } = await import('../src/daemon/main.js');
    try {
      await runDaemon({
        dataDir: current.dataDir,
        listen: current.listen,
        join: current.join,
        apiHost: api.host,
        apiPort: api.port,
        name: current.name,
        tags: current.tags,
        mdns: current.mdns,
        swarmKeyFile: current.swarmKey,
        logLevel: current.logLevel,
        logFormat: current.logFormat,
        config: current.tuning,
        metrics: current.metrics === null ? null : parseApiAddress(current.metrics),
        tls: current.tlsCert !== null && current.tlsKey !== null ? { certFile: current.tlsCert, keyFile: current.tlsKey } : null,
        insecureApi: current.insecureApi,
        ...(configFile === undefined
          ? {}
          : {
              reload: async () => {
                const next = (await load()).settings;
                const changes = liveChanges(current, next);
                current = { ...current, tags: next.tags, logLevel: next.logLevel };
                return changes;
              },
            }),
      });
    } catch (err) {
      if (err instanceof DaemonStartError) {
        process.stderr.write(`Error: ${err.message}\n`);
        this.exit(err.exitCode === 2 ? EXIT.badInput : EXIT.failed);
      }
      throw err;
    }
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    if (err instanceof ClientError) {
      process.stderr.write(`Error: ${err.message}\n`);
      return this.exit(err.exitCode);
    }
    return super.catch(err);
  }
}
