// Shared by the sanitizer and fuzz tests (not a test file itself): when they run.

import { spawnSync } from 'node:child_process';

function haveClang(): boolean {
  return spawnSync('clang', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Without clang (the sanitizer and fuzz builds need it) a test is skipped, except in CI. */
export const CLANG_SKIP: { skip?: string } =
  haveClang() || process.env.CI ? {} : { skip: 'clang not installed (apt-get install clang libclang-rt-14-dev)' };

/** CLANG_SKIP, and SPYTHON_SKIP_SANITIZERS=1 skips the sanitizer runs. */
export const SANITIZERS_SKIP: { skip?: string } =
  process.env.SPYTHON_SKIP_SANITIZERS === '1' ? { skip: 'SPYTHON_SKIP_SANITIZERS=1' } : CLANG_SKIP;
