// One config: every knob has a default that validates, and combinations that cannot work
// are refused with every problem named at once.
import { describe, expect, it } from 'vitest';
import { MAX_TIMEOUT_MS } from './clock.js';
import { ConfigError, configFrom, defaultConfig, membershipTickMs, validateConfig, type ChorusConfig } from './config.js';

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

  it('keeps the default of an override left undefined', () => {
    expect(configFrom({ probeIntervalMs: undefined, killGraceMs: 10 })).toEqual({ ...defaultConfig, killGraceMs: 10 });
  });

  it.each([
    // One knob on its own.
    [{ leaderTickMs: -5 }, /^leaderTickMs is -5; it must be at least 1$/],
    [{ requestTimeoutMs: Number.NaN }, /^requestTimeoutMs is NaN; it must be a whole number ≥ 1$/],
    [{ dialTimeoutMs: Number.POSITIVE_INFINITY }, /^dialTimeoutMs is Infinity; it must be a whole number ≥ 1$/],
    [{ retainInstancesPerJob: 1.5 }, /^retainInstancesPerJob is 1.5; it must be a whole number ≥ 1$/],
    [{ maxConcurrentSubtasks: 0 }, /^maxConcurrentSubtasks is 0; it must be at least 1$/],
    [{ retainInstancesPerJob: 0 }, /^retainInstancesPerJob is 0; it must be at least 1$/],
    [{ maxAttemptHistory: 0 }, /^maxAttemptHistory is 0; it must be at least 1$/],
    [{ killGraceMs: -1 }, /^killGraceMs is -1; it must be a whole number ≥ 0$/],
    [{ storeFlushDelayMs: '5' as unknown as number }, /^storeFlushDelayMs is "5"; it must be a whole number ≥ 0$/],
    [{ repairStaleConnections: 'yes' as unknown as boolean }, /^repairStaleConnections is "yes"; it must be true or false$/],
    [{ killGraceMs: MAX_TIMEOUT_MS + 1 }, /^killGraceMs is 2147483648; it must be at most 2147483647 \(Node fires a timer longer than that at once\)$/],
    [{ requestTimeoutMs: MAX_TIMEOUT_MS + 1 }, /^requestTimeoutMs is 2147483648; it must be at most 2147483647/],
    [{ leaderTryMs: MAX_TIMEOUT_MS + 1 }, /^leaderTryMs is 2147483648; it must be at most 2147483647/],
    [{ webhookTimeoutMs: MAX_TIMEOUT_MS + 1 }, /^webhookTimeoutMs is 2147483648; it must be at most 2147483647/],
    [{ fireOnTimeMs: 0 }, /^fireOnTimeMs is 0; it must be at least 1$/],
    // Combinations.
    [{ probeTimeoutMs: 1000 }, /^probeTimeoutMs \(1000\) must be less than probeIntervalMs \(1000\): a direct probe must time out before the next probe is due$/],
    [{ probeIntervalMs: 500, probeTimeoutMs: 300, suspicionMult: 1 }, /^suspicionMult \(1\) × probeIntervalMs \(500\) = 500 ms must exceed stallThresholdMs \(400\) plus the 100 ms membership tick, here 500: a stall/],
    [{ stallThresholdMs: 900, suspicionMult: 1 }, /^suspicionMult \(1\) × probeIntervalMs \(1000\) = 1000 ms must exceed stallThresholdMs \(900\) plus .* here 1100/],
    [{ suspicionMaxMult: 0.5 }, /^suspicionMaxMult is 0.5/],
    [{ suspicionMult: 4 }, /^suspicionMult \(4\) must be at most suspicionMaxMult \(3\): the suspicion timeout starts at its maximum/],
    [{ retryBackoffBaseMs: 60_000 }, /^retryBackoffBaseMs \(60000\) must be at most retryBackoffMaxMs \(30000\)/],
    [{ joinRetryBaseMs: 10_000 }, /^joinRetryBaseMs \(10000\) must be at most joinRetryMaxMs \(5000\)/],
    [{ webhookBackoffBaseMs: 120_000 }, /^webhookBackoffBaseMs \(120000\) must be at most webhookBackoffMaxMs \(60000\)/],
    [{ followAskWaitMs: 30_001 }, /^followAskWaitMs \(30001\) must be at most 30000: a node refuses to hold a follower's question longer$/],
    [{ peerRedialMaxMs: 100 }, /^peerRedialBaseMs \(500\) must be at most peerRedialMaxMs \(100\)/],
    [{ maxDeltaBytes: 1024 * 1024 }, /^maxDeltaBytes \(1048576\) must be less than maxPublishBytes \(1048576\)/],
    [{ maxMessageBytes: 900 * 1024 }, /^maxPublishBytes \(1048576\) must be at most maxMessageBytes \(921600\)/],
    [{ maxPublishBytes: 4 * 1024 * 1024, maxMessageBytes: 8 * 1024 * 1024 }, /^maxPublishBytes \(4194304\) must be at most 4193280: gossipsub drops RPCs over 4194304 bytes/],
    [{ maxOutputBytes: 4 * 1024 * 1024 }, /^maxOutputBytes \(4194304\) must be less than half of maxMessageBytes \(1048576\)/],
    [{ syncPageBytes: 1024 * 1024 }, /^syncPageBytes \(1048576\) must be less than maxMessageBytes \(1048576\): a page of records/],
    [{ reapAfterMs: 30_000 }, /^pushPullIntervalMs \(30000\) must be less than reapAfterMs \(30000\): a member must be held dead or left for longer than a push\/pull period/],
  ])('refuses %j', (overrides, message) => {
    const problems = problemsOf(overrides);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });

  it('lets 0 mean "none" or "at once" where it does', () => {
    const zeros = {
      storeFlushDelayMs: 0,
      misfireGraceMs: 0,
      stepSettleMs: 0,
      killGraceMs: 0,
      pipeDrainGraceMs: 0,
      leaderStableMs: 0,
      selfSettleMs: 0,
      gossipStreamSettleMs: 0,
      workerStopSlackMs: 0,
      maxViewErrors: 0,
      leaveRecentMs: 0,
      followGatherMs: 0,
      rootSyncQuietMs: 0,
      pullingWindowMs: 0,
      relayBatchPerPeerMs: 0,
    };
    expect(configFrom(zeros)).toMatchObject(zeros);
  });

  it('accepts a slower cluster whose knobs fit together', () => {
    expect(() => configFrom({ probeIntervalMs: 1000, probeTimeoutMs: 500, suspicionMult: 4, suspicionMaxMult: 6, stallThresholdMs: 1000 })).not.toThrow();
  });

  it('reports every problem at once', () => {
    const problems = problemsOf({ probeTimeoutMs: 1200, workerTickMs: 0, retainInstancesPerJob: 1.5, maxDeltaBytes: 2 * 1024 * 1024 });
    expect(problems).toEqual([
      expect.stringMatching(/^workerTickMs is 0/),
      expect.stringMatching(/^retainInstancesPerJob is 1.5/),
      expect.stringMatching(/^probeTimeoutMs \(1200\) must be less than probeIntervalMs/),
      expect.stringMatching(/^maxDeltaBytes \(2097152\) must be less than maxPublishBytes/),
    ]);
    expect(() => configFrom({ workerTickMs: 0, retainInstancesPerJob: 1.5 })).toThrow(/^invalid configuration: workerTickMs.*; retainInstancesPerJob/);
  });

  it('does not judge a combination through a knob that is already wrong on its own', () => {
    expect(problemsOf({ probeIntervalMs: Number.NaN })).toEqual([expect.stringMatching(/^probeIntervalMs is NaN/)]);
  });

  it('refuses a knob that does not exist, by name, with the other problems', () => {
    const typo = { probeIntervalMS: 300 } as unknown as Partial<ChorusConfig>;
    expect(problemsOf(typo)).toEqual(['probeIntervalMS is not a setting (did you mean probeIntervalMs?)']);
    const unknown = { heartbeatMs: 5, workerTickMs: 0 } as unknown as Partial<ChorusConfig>;
    expect(problemsOf(unknown)).toEqual([expect.stringMatching(/^heartbeatMs is not a setting \(known: leaderTickMs, leaderIdleTickMs, workerTickMs, /), expect.stringMatching(/^workerTickMs is 0/)]);
  });

  it('refuses a config that lacks a knob', () => {
    const { probeIntervalMs: _, ...partial } = defaultConfig;
    expect(() => validateConfig(partial as ChorusConfig)).toThrow(/^invalid configuration: probeIntervalMs is missing; it must be a whole number ≥ 1$/);
  });
});

describe('membership timing', () => {
  it('ticks at a fifth of the probe interval, at least every 10 ms', () => {
    expect(membershipTickMs(defaultConfig)).toBe(200);
    expect(membershipTickMs({ probeIntervalMs: 1001 })).toBe(200);
    expect(membershipTickMs({ probeIntervalMs: 20 })).toBe(10);
  });
});
