#!/usr/bin/env node
// Entry point of the `chorus` command. The version check comes first and uses no
// imports, so an old Node gets a plain message instead of a stack trace.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `chorus needs Node.js 22.12 or newer; this is Node.js ${process.versions.node} (${process.execPath}).\n` +
      'Run it through the project (bin/chorus ... or npx chorus ...), which uses the pinned Node 24, or use the single executable dist/chorus.\n',
  );
  process.exit(1);
}
const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
