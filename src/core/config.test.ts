// One config: every knob has a default that validates, and combinations that cannot work
// are refused with every problem named at once.
import { describe, expect, it } from 'vitest';
import { ConfigError, configFrom, defaultConfig, validateConfig, type ChorusConfig } from './config.js';

const problemsOf = (overrides: Partial<ChorusConfig>): string[] => {
  try {
    configFrom(overrides);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('validateConfig', () => {
  it('accepts the defaults', () => {
    expect(validateConfig(defaultConfig)).toBe(defaultConfig);
    expect(configFrom({})).toEqual(defaultConfig);
  });

  it.each([
    [{ suspectAfterMs: 2000, deadAfterMs: 2000 }, /suspectAfterMs \(2000\) must be less than deadAfterMs \(2000\)/],
    [{ heartbeatIntervalMs: 1500 }, /heartbeatIntervalMs \(1500\) must be less than suspectAfterMs \(1200\)/],
    [{ pingTimeoutMs: 2500 }, /pingTimeoutMs \(2500\) must be at most deadAfterMs \(2000\)/],
    [{ retryBackoffBaseMs: 60_000 }, /retryBackoffBaseMs \(60000\) must be at most retryBackoffMaxMs/],
    [{ joinRetryBaseMs: 10_000 }, /joinRetryBaseMs \(10000\) must be at most joinRetryMaxMs/],
    [{ maxDeltaBytes: 2 * 1024 * 1024 }, /maxDeltaBytes \(2097152\) must be less than maxPublishBytes/],
    [{ maxPublishBytes: 16 * 1024 * 1024 }, /maxPublishBytes \(16777216\) must be at most maxMessageBytes/],
    [{ maxConcurrentSubtasks: 0 }, /maxConcurrentSubtasks is 0; it must be at least 1/],
    [{ leaderTickMs: -5 }, /leaderTickMs is -5; it must be a whole number ≥ 0/],
    [{ requestTimeoutMs: Number.NaN }, /requestTimeoutMs is null; it must be a whole number/],
    [{ repairStaleConnections: 'yes' as unknown as boolean }, /repairStaleConnections is "yes"; it must be true or false/],
  ])('refuses %j', (overrides, message) => {
    expect(problemsOf(overrides).join('\n')).toMatch(message);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf({ suspectAfterMs: 3000, workerTickMs: 0, retainInstancesPerJob: 1.5 });
    expect(problems).toHaveLength(3);
    expect(() => configFrom({ workerTickMs: 0, retainInstancesPerJob: 1.5 })).toThrow(/^invalid configuration: .*workerTickMs.*; .*retainInstancesPerJob/);
  });

  it('refuses a knob that does not exist, by name', () => {
    expect(problemsOf({ heartbeatMs: 5 } as unknown as Partial<ChorusConfig>)).toEqual([expect.stringMatching(/^heartbeatMs is not a setting \(known: leaderTickMs, /)]);
  });
});
