// What the CLI prints of text from the cluster, end to end in-process against a stand-in
// daemon: escaped for people on stdout and stderr (error messages too), raw with --json.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../api/client.js';
import type { NodeView } from '../api/views.js';
import { runCli, type CliRun } from '../testing/run-cli.js';

const EVIL = '\x1b]0;pwned\x07\x1b[2J';
const SHOWN = '\\x1b]0;pwned\\x07\\x1b[2J';
// eslint-disable-next-line no-control-regex -- looking for what must not be printed
const RAW = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r(?!\n)/;

const node: NodeView = {
  nodeId: '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVeabcdef123456',
  name: 'n\x1b[8m',
  tags: { r: '\u202e' },
  addrs: [],
  incarnation: 1,
  state: 'alive',
  leader: true,
  keeper: true,
  draining: false,
  lastSeenMs: null,
  lastSeen: null,
  suspicion: null,
};

/** Answers as a chorus daemon would: the node list, and an error that quotes remote text for anything else. */
let daemon: Server;
let api: string;

beforeAll(async () => {
  daemon = createServer((req, res) => {
    const [status, body] = req.url === '/v1/nodes' ? [200, [node]] : [500, { error: 'internal', message: `node web-1 answered: ${EVIL}` }];
    res.writeHead(status, { 'content-type': 'application/json', 'x-chorus-version': '0.0.0-test' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => daemon.listen(0, '127.0.0.1', () => r()));
  api = `127.0.0.1:${(daemon.address() as AddressInfo).port}`;
});

afterAll(() => {
  daemon.close();
});

const cli = (args: string[]): Promise<CliRun> => runCli([...args, '--api', api, '--token', 't']);

describe('text from the cluster on the way out of the CLI', () => {
  it('a table of nodes shows names and tags escaped; --json gives them raw', async () => {
    const human = await cli(['nodes']);
    expect(human.exitCode, human.context).toBe(EXIT.ok);
    expect(human.stdout).not.toMatch(RAW);
    expect(human.stdout).toMatch(/│ n\\x1b\[8m +│ alive +│ leader +│ +│ r=\\u202e +│/);
    const json = await cli(['nodes', '--json']);
    expect(json.json<NodeView[]>()).toEqual([node]);
  });

  it("an error message that quotes remote text is escaped on stderr, and raw in --json's error document", async () => {
    const human = await cli(['status']);
    expect(human.exitCode, human.context).toBe(EXIT.failed);
    expect(human.stderr).not.toMatch(RAW);
    expect(human.stderr).toContain(`Error: node web-1 answered: ${SHOWN}\n`);
    const json = await cli(['status', '--json']);
    expect(json.json()).toMatchObject({ error: 'internal', message: `node web-1 answered: ${EVIL}` });
    expect(json.stderr).toContain(SHOWN);
  });
});
