// Every chorus command, listed explicitly: oclif loads this map instead of scanning
// folders, which keeps start-up fast and lets the single executable bundle them.
import Daemon from './daemon.js';
import Help from './help.js';
import InstanceCancel from './instance/cancel.js';
import InstanceList from './instance/list.js';
import InstanceLogs from './instance/logs.js';
import InstancePause from './instance/pause.js';
import InstanceResume from './instance/resume.js';
import InstanceShow from './instance/show.js';
import InstanceWait from './instance/wait.js';
import JobAdd from './job/add.js';
import JobApply from './job/apply.js';
import JobDisable from './job/disable.js';
import JobEnable from './job/enable.js';
import JobExport from './job/export.js';
import JobHistory from './job/history.js';
import JobList from './job/list.js';
import JobPlan from './job/plan.js';
import JobRm from './job/rm.js';
import JobRun from './job/run.js';
import JobShow from './job/show.js';
import Keygen from './keygen.js';
import NodeDrain from './node/drain.js';
import NodeUndrain from './node/undrain.js';
import Nodes from './nodes.js';
import Run from './run.js';
import Status from './status.js';
import TokenCreate from './token/create.js';
import TokenList from './token/list.js';
import TokenRevoke from './token/revoke.js';
import Ui from './ui.js';
import Version from './version.js';

export const COMMANDS = {
  daemon: Daemon,
  status: Status,
  nodes: Nodes,
  'node:drain': NodeDrain,
  'node:undrain': NodeUndrain,
  run: Run,
  keygen: Keygen,
  help: Help,
  version: Version,
  'job:add': JobAdd,
  'job:apply': JobApply,
  'job:export': JobExport,
  'job:history': JobHistory,
  'job:list': JobList,
  'job:plan': JobPlan,
  'job:show': JobShow,
  'job:rm': JobRm,
  'job:enable': JobEnable,
  'job:disable': JobDisable,
  'job:run': JobRun,
  'instance:list': InstanceList,
  'instance:show': InstanceShow,
  'instance:wait': InstanceWait,
  'instance:logs': InstanceLogs,
  'instance:cancel': InstanceCancel,
  'instance:pause': InstancePause,
  'instance:resume': InstanceResume,
  'token:create': TokenCreate,
  'token:list': TokenList,
  'token:revoke': TokenRevoke,
  ui: Ui,
};
