// dist/adapter.js, the debug adapter as a program: runs its bundle (dist/adapter-main.js, from
// adapter/main.ts) with V8's code cache.

import * as path from 'node:path';
import { runBundle } from './codecache';

runBundle(path.join(__dirname, 'adapter-main.js'), 'adapter');
