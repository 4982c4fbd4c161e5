import { instanceActionCommand } from '../../src/cli/actions.js';

export default instanceActionCommand('cancel', 'Cancel an instance: running subtasks are killed (whole process group), pending ones never start.', () => 'cancel requested');
