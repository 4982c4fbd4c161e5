// What the tests need from Debian's packages, installed here rather than by hand:
// promtool (package `prometheus`) checks a scrape of /metrics; openssl makes the TLS tests' certificates; chromium runs the
// dashboard's browser tests. Needs root and apt-get; where
// that is not possible it says so, and the test that needs the tool fails with that reason.
import { spawnSync } from 'node:child_process';

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const NEEDED = [
  { command: 'promtool', pkg: 'prometheus' },
  { command: 'openssl', pkg: 'openssl' }, // certificates for the TLS API tests
  { command: 'chromium', pkg: 'chromium' }, // the dashboard's browser tests (puppeteer-core drives it; about 20 s to install)
];

for (const { command, pkg } of NEEDED) {
  if (has(command)) continue;
  if (process.getuid?.() !== 0 || !has('apt-get')) {
    console.warn(`test-deps: ${command} is missing and cannot be installed here (needs root and apt-get): install the Debian package ${pkg}`);
    continue;
  }
  console.log(`test-deps: installing ${pkg} (for ${command}) from Debian's packages`);
  const install = `apt-get install -y --no-install-recommends ${pkg} || (apt-get update && apt-get install -y --no-install-recommends ${pkg})`;
  const r = spawnSync('sh', ['-c', install], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0 || !has(command)) console.warn(`test-deps: installing ${pkg} failed (exit ${r.status}); the tests that need ${command} will fail`);
}
