import { Command, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { ClientError, defaultDataDir, EXIT } from '../src/api/client.js';
import { badInput, parseTags } from '../src/cli/job-spec.js';

export default class Daemon extends Command {
  static override description = 'Run a chorus node in the foreground. SIGTERM or SIGINT leaves the cluster and exits 0.';
  static override examples = [
    '<%= config.bin %> daemon --data-dir /var/lib/chorus --name web-1 --tag role=web',
    '<%= config.bin %> daemon --data-dir /var/lib/chorus --listen /ip4/0.0.0.0/tcp/7400 --join /ip4/10.0.0.5/tcp/7400 --tag role=web',
    '<%= config.bin %> daemon --data-dir /var/lib/chorus --swarm-key /etc/chorus/swarm.key --join /ip4/10.0.0.5/tcp/7400',
  ];
  static override flags = {
    'data-dir': Flags.string({ description: 'data directory (one daemon per directory) [default: $CHORUS_DATA_DIR or ~/.chorus]', env: 'CHORUS_DATA_DIR' }),
    listen: Flags.string({ multiple: true, description: 'libp2p multiaddr to listen on (repeatable)', default: ['/ip4/0.0.0.0/tcp/7400'] }),
    join: Flags.string({ multiple: true, description: 'multiaddr of a member to join through (repeatable)' }),
    api: Flags.string({ description: 'HOST:PORT of the control API (port 0 picks a free one)', default: '127.0.0.1:7410' }),
    name: Flags.string({ description: 'human name of this node [default: hostname]' }),
    tag: Flags.string({ multiple: true, description: 'KEY=VALUE tag of this node, matched by job --tag (repeatable)' }),
    mdns: Flags.boolean({ description: 'also find members on the LAN by multicast DNS' }),
    'swarm-key': Flags.string({ description: 'file with a pre-shared key: only nodes with the same key can connect' }),
    'log-level': Flags.string({ options: ['trace', 'debug', 'info', 'warn', 'error', 'silent'], default: 'info' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Daemon);
    const { apiHost, apiPort } = parseApi(flags.api);
    // Loaded here, not at the top: every command's start-up pays for top-level imports.
    const { multiaddr } = await import('@multiformats/multiaddr');
    for (const address of flags.listen) checkMultiaddr(multiaddr, '--listen', address);
    for (const address of flags.join ?? []) checkMultiaddr(multiaddr, '--join', address);
    const { runDaemon, DaemonStartError } = await import('../src/daemon/main.js');
    try {
      await runDaemon({
        dataDir: resolve(flags['data-dir'] ?? defaultDataDir()),
        listen: flags.listen,
        join: flags.join ?? [],
        apiHost,
        apiPort,
        name: flags.name ?? null,
        tags: parseTags(flags.tag),
        mdns: flags.mdns,
        swarmKeyFile: flags['swarm-key'] ?? null,
        logLevel: flags['log-level'],
      });
      // Everything is stopped and flushed; do not wait for libraries' idle timers.
      process.exit(0);
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

/** A --listen or --join value must be a TCP multiaddr, like /ip4/10.0.0.5/tcp/7400. */
function checkMultiaddr(multiaddr: (text: string) => { getComponents(): { name: string }[] }, flag: string, value: string): void {
  let protocols: string[];
  try {
    protocols = multiaddr(value).getComponents().map((c) => c.name);
  } catch (err) {
    throw badInput(`${flag} ${value}: not a multiaddr (${(err as Error).message}); write it like /ip4/10.0.0.5/tcp/7400`);
  }
  if (!protocols.includes('tcp') || !protocols.some((p) => ['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(p))) {
    throw badInput(`${flag} ${value}: give an address and a TCP port, like /ip4/10.0.0.5/tcp/7400`);
  }
}

/** HOST:PORT, or the http:// URL that chorus status shows (the API speaks plain HTTP; no path). */
function parseApi(value: string): { apiHost: string; apiPort: number } {
  const match = /^(?:http:\/\/)?([^/\s]+):(\d+)\/?$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw badInput(`--api ${value}: write it as HOST:PORT, for example 127.0.0.1:7410 (port 0 picks a free one)`);
  return { apiHost: (match[1] as string).replace(/^\[|\]$/g, ''), apiPort: port };
}
