// The architecture check (`npm run lint`): no import circles, and no import from a lower
// layer to a higher one. The layers, lowest first (README "Architecture" says what each
// folder is); folders on one line are peers and do not import each other.
const LAYERS = [
  ['core'], // clock, config, transport interface, log, limits: no chorus imports
  ['records'], // records, their merge, signatures, validation, cron schedules
  ['store'], // the record store, the journal, output files, data-dir paths
  ['executor', 'network'], // running commands; libp2p
  ['cluster'], // membership (SWIM), leadership, replication, RPC
  ['output'], // live and saved output, following it
  ['scheduler'], // the leader's work: fires, instances, webhooks, run requests
  ['worker'], // running this node's own subtasks
  ['node'], // the sans-I/O node: wires the parts above
  ['api'], // the control-plane service, its HTTP server and client, views
  ['cli', 'ui', 'daemon'], // the CLI's helpers, the dashboard, the daemon process
  ['commands'], // oclif commands
];

const folderPath = (folder) => (folder === 'commands' ? '^commands/' : `^src/${folder}/`);
const rankOf = new Map(LAYERS.flatMap((layer, rank) => layer.map((folder) => [folder, rank])));

const layering = [...rankOf].flatMap(([folder, rank]) => {
  const notBelow = [...rankOf].filter(([other, r]) => other !== folder && r >= rank).map(([other]) => other);
  if (notBelow.length === 0) return []; // the top layer may import every other
  return {
    name: `layer-${folder}`,
    comment: `${folder} may import only the layers below it: ${LAYERS.slice(0, rank).flat().join(', ') || 'none'}`,
    severity: 'error',
    from: { path: folderPath(folder), pathNot: '\\.test\\.ts$' },
    to: { path: notBelow.map(folderPath).join('|') },
  };
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'an import circle: one of these modules belongs lower down',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layering,
    {
      name: 'no-test-support-in-product',
      comment: 'src/testing/ is test support: the product does not import it',
      severity: 'error',
      from: { path: '^(src|commands)/', pathNot: '(\\.test\\.ts$)|^src/testing/' },
      to: { path: '^src/testing/' },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports count: they tie the layers as much as any other.
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
