import { instanceActionCommand } from '../../src/cli/actions.js';

export default instanceActionCommand(
  'pause',
  'Pause a rolling broadcast: no further subtask is released until `instance resume`; released ones run to their end.',
  (view) => `paused: no further subtask is released until \`chorus instance resume ${view.id}\``,
);
