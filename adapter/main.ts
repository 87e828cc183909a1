// The debug adapter as a program: `node dist/adapter.js` speaks DAP on stdio, `--server=PORT` on a TCP
// port (one session per connection).

import { DebugSession } from '@vscode/debugadapter';
import { SPythonDebugSession } from './session';

DebugSession.run(SPythonDebugSession);
