import { instanceActionCommand } from '../../src/cli/actions.js';

export default instanceActionCommand('resume', 'Resume a paused rolling broadcast: the leader releases its subtasks again.', () => 'resumed');
