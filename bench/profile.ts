// A CPU profile of a running daemon, taken from outside: SIGUSR1 opens Node's inspector on
// 127.0.0.1 (port 9229 unless another is free), the profiler runs over the Chrome DevTools
// protocol (Node's own WebSocket), and the result is summed by function (self time). For
// benchmarks that ask what a busy node spends its time on; never used by the daemon.
import { writeFileSync } from 'node:fs';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

export interface Profiling {
  /** Stops the profiler, writes the profile to `file` (for DevTools) and returns it. */
  stop(file: string): Promise<CpuProfile>;
}

/** Starts profiling process `pid` (it must be a Node process that may be signalled). */
export async function profileProcess(pid: number, port = 9229): Promise<Profiling> {
  process.kill(pid, 'SIGUSR1');
  let targets: { webSocketDebuggerUrl: string }[] | null = null;
  for (let i = 0; i < 100 && targets === null; i++) {
    try {
      targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const url = targets?.[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`process ${pid} opened no inspector on 127.0.0.1:${port}`);
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', resolve);
    ws.addEventListener('error', reject);
  });
  let nextId = 0;
  const pending = new Map<number, (result: unknown) => void>();
  ws.addEventListener('message', (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown };
    if (m.id !== undefined) pending.get(m.id)?.(m.result);
  });
  const send = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve) => {
      const id = ++nextId;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send('Profiler.enable');
  await send('Profiler.setSamplingInterval', { interval: 1000 });
  await send('Profiler.start');
  return {
    async stop(file) {
      const { profile } = (await send('Profiler.stop')) as { profile: CpuProfile };
      ws.close();
      writeFileSync(file, JSON.stringify(profile));
      return profile;
    },
  };
}

/** The functions that took the most time themselves, with their share: `12.3 %  1234 ms  name file:line`. */
export function topSelfTime(profile: CpuProfile, count: number): string[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  profile.samples.forEach((sample, i) => {
    const frame = byId.get(sample)?.callFrame;
    if (!frame) return;
    const key = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([key, us]) => `${((100 * us) / total).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`);
}
