import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../core/config.js';
import {
  DEFAULT_SETTINGS,
  exactDuration,
  layerFromEnv,
  layerFromFlags,
  layerFromToml,
  liveChanges,
  resolveSettings,
  settingsToToml,
  SettingsError,
} from './settings.js';
import { parseDuration } from '../core/duration.js';

const FILE = '/etc/chorus/chorus.toml';

const fileText = `
data-dir = "state"
listen = ["/ip4/0.0.0.0/tcp/7500"]
join = ["/ip4/10.0.0.5/tcp/7400"]
api = "127.0.0.1:7510"
name = "from-file"
mdns = true
swarm-key = "/etc/chorus/swarm.key"
log-level = "warn"

[tags]
role = "web"
zone = "a"

[tuning]
probe-timeout = "400ms"
retain-records = 5000
misfire-grace = 0
`;

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SettingsError);
    return (err as Error).message;
  }
  throw new Error('expected a SettingsError');
}

describe('daemon settings', () => {
  it('takes every key from the file, relative paths from its directory', () => {
    const layer = layerFromToml(fileText, FILE);
    expect(layer).toEqual({
      dataDir: '/etc/chorus/state',
      listen: ['/ip4/0.0.0.0/tcp/7500'],
      join: ['/ip4/10.0.0.5/tcp/7400'],
      api: '127.0.0.1:7510',
      name: 'from-file',
      mdns: true,
      swarmKey: '/etc/chorus/swarm.key',
      logLevel: 'warn',
      tags: { role: 'web', zone: 'a' },
      tuning: { probeTimeoutMs: 400, retainRecords: 5000, misfireGraceMs: 0 },
    });
  });

  it('a flag wins over the environment, which wins over the file, which wins over the default', () => {
    const file = layerFromToml(fileText, FILE);
    const env = layerFromEnv({ CHORUS_NAME: 'from-env', CHORUS_LOG_LEVEL: 'debug', CHORUS_JOIN: '/ip4/10.0.0.6/tcp/7400, /ip4/10.0.0.7/tcp/7400', CHORUS_TAGS: 'role=db' });
    const flags = layerFromFlags({ name: 'from-flag', tag: ['role=cache'] });
    const { settings, sources } = resolveSettings({ flags, env, file });
    expect(settings.name).toBe('from-flag');
    expect(settings.tags).toEqual({ role: 'cache' }); // tags as a whole, not merged across sources
    expect(settings.logLevel).toBe('debug');
    expect(settings.join).toEqual(['/ip4/10.0.0.6/tcp/7400', '/ip4/10.0.0.7/tcp/7400']);
    expect(settings.api).toBe('127.0.0.1:7510');
    expect(settings.tuning).toEqual({ probeTimeoutMs: 400, retainRecords: 5000, misfireGraceMs: 0 });
    expect(sources).toMatchObject({ name: 'flag', tags: 'flag', 'log-level': 'env', join: 'env', api: 'file', 'tuning.probe-timeout': 'file', 'tuning.probe-interval': 'default' });

    const none = resolveSettings({ flags: {}, env: {}, file: {} });
    expect(none.settings).toEqual({ ...DEFAULT_SETTINGS });
    expect(new Set(Object.values(none.sources))).toEqual(new Set(['default']));
  });

  it('an empty variable counts as not set; a bad one is named', () => {
    expect(layerFromEnv({ CHORUS_NAME: '', CHORUS_API: '  ' })).toEqual({});
    expect(errorOf(() => layerFromEnv({ CHORUS_MDNS: 'maybe' }))).toBe('CHORUS_MDNS=maybe: write true or false');
    expect(errorOf(() => layerFromEnv({ CHORUS_TAGS: 'role' }))).toContain('CHORUS_TAGS=role: "role" is not KEY=VALUE');
    expect(errorOf(() => layerFromEnv({ CHORUS_LISTEN: '/ip4/1.2.3.4' }))).toContain('CHORUS_LISTEN: /ip4/1.2.3.4: give an address and a TCP port');
    expect(errorOf(() => layerFromEnv({ CHORUS_LOG_LEVEL: 'loud' }))).toContain('must be one of trace, debug, info, warn, error, silent');
  });

  it('a bad flag is named with its value', () => {
    expect(errorOf(() => layerFromFlags({ api: 'nope' }))).toBe('--api nope: write it as HOST:PORT, for example 127.0.0.1:7410 (port 0 picks a free one)');
    expect(errorOf(() => layerFromFlags({ tag: ['role'] }))).toContain('--tag role: write it as KEY=VALUE');
    expect(errorOf(() => layerFromFlags({ join: ['10.0.0.5:7400'] }))).toContain('--join 10.0.0.5:7400: not a multiaddr');
    expect(layerFromFlags({ api: 'http://127.0.0.1:7410' })).toEqual({ api: 'http://127.0.0.1:7410' });
  });

  it('refuses anything unknown or invalid in the file, naming the file, the key and what is allowed', () => {
    const cases: [string, string][] = [
      ['lisen = []', `${FILE}: unknown key "lisen" (allowed: data-dir, listen, join, api, name, tags, mdns, swarm-key, log-level, log-format, metrics, tls-cert, tls-key, insecure-api, tuning)`],
      ['listen = 7400', `${FILE}: key "listen": must be a list of multiaddrs, like ["/ip4/10.0.0.5/tcp/7400"]; got 7400`],
      ['listen = ["/ip4/1.2.3.4"]', `${FILE}: key "listen": /ip4/1.2.3.4: give an address and a TCP port, like /ip4/10.0.0.5/tcp/7400`],
      ['api = "127.0.0.1:99999"', `${FILE}: key "api": 127.0.0.1:99999: write it as HOST:PORT`],
      ['mdns = "yes"', `${FILE}: key "mdns": must be true or false; got "yes"`],
      ['log-level = "loud"', `${FILE}: key "log-level": must be one of trace, debug, info, warn, error, silent; got "loud"`],
      ['tags = ["role=web"]', `${FILE}: key "tags": must be a table of strings, like tags = { role = "web" }; got a list`],
      ['tags = { role = 1 }', `${FILE}: key "tags": tag role must be a string, got 1`],
      ['[tags]\nrole = "web"\nlog-level = "info"', `${FILE}: key "tags.log-level": log-level is a setting, not a tag: in TOML every key after a [tags] line belongs to that table; move it above [tags]`],
      ['name = ""', `${FILE}: key "name": must not be empty`],
      ['tuning = 3', `${FILE}: key "tuning" must be a table ([tuning]); got 3`],
      ['[tuning]\nprobe-timout = "1s"', `${FILE}: unknown key "tuning.probe-timout" (allowed in [tuning]: probe-interval, probe-timeout,`],
      ['[tuning]\nprobe-timeout = 400', `${FILE}: key "tuning.probe-timeout": must be a duration like "500ms", "30s" or "5m"; got 400`],
      ['[tuning]\nprobe-timeout = "4 seconds"', `${FILE}: key "tuning.probe-timeout": "4 seconds" is not a duration`],
      ['[tuning]\nretain-records = "many"', `${FILE}: key "tuning.retain-records": must be a whole number; got "many"`],
      ['[tuning]\nretain-records = 0', `${FILE}: tuning.retain-records is 0; it must be`],
      ['[tuning]\nprobe-timeout = "5s"', `${FILE}: tuning.probe-timeout (5000) must be less than tuning.probe-interval (1000)`],
      ['name = "a"\nname = "b"', `${FILE}:2:1: not valid TOML: trying to redefine an already defined table or value`],
      ['name = "unterminated', `${FILE}:1:8: not valid TOML:`],
    ];
    for (const [text, message] of cases) expect(errorOf(() => layerFromToml(text, FILE)), text).toContain(message);
  });

  it('--print-config prints a file that --config takes back to the same settings', () => {
    const resolved = resolveSettings({ flags: layerFromFlags({ name: 'n1' }), env: layerFromEnv({ CHORUS_TAGS: 'role=web' }), file: layerFromToml(fileText, FILE) });
    const text = settingsToToml(resolved);
    expect(text).toContain('# from flags: name');
    expect(text).toContain('# from the environment: tags');
    const again = resolveSettings({ flags: {}, env: {}, file: layerFromToml(text, '/elsewhere/printed.toml') }).settings;
    // Every tunable knob is printed with its effective value, defaults included.
    expect(again.tuning.probeIntervalMs).toBe(defaultConfig.probeIntervalMs);
    expect({ ...again, tuning: {} }).toEqual({ ...resolved.settings, tuning: {} });
    expect({ ...defaultConfig, ...again.tuning }).toEqual({ ...defaultConfig, ...resolved.settings.tuning });
  });

  it('writes durations that parse back exactly', () => {
    for (const ms of [1, 400, 1000, 1500, 60_000, 90_000, 3_600_000, 86_400_000, 2 * 86_400_000 + 1]) {
      const text = exactDuration(ms);
      expect(typeof text).toBe('string');
      expect(parseDuration(text as string)).toBe(ms);
    }
    expect(exactDuration(0)).toBe(0);
  });

  it('on SIGHUP, tags and the log level change live; anything else needs a restart', () => {
    const before = resolveSettings({ flags: {}, env: {}, file: layerFromToml(fileText, FILE) }).settings;
    const after = resolveSettings({
      flags: {},
      env: {},
      file: layerFromToml(fileText.replace('zone = "a"', 'zone = "b"').replace('log-level = "warn"', 'log-level = "debug"').replace('"from-file"', '"renamed"').replace('retain-records = 5000', 'retain-records = 6000'), FILE),
    }).settings;
    expect(liveChanges(before, after)).toEqual({ tags: { role: 'web', zone: 'b' }, logLevel: 'debug', restartNeeded: ['name', 'tuning.retain-records'] });
    expect(liveChanges(before, before)).toEqual({ tags: null, logLevel: null, restartNeeded: [] });
    // The same tags in another order are no change.
    expect(liveChanges(before, { ...before, tags: { zone: 'a', role: 'web' } }).tags).toBeNull();
  });
});
