/* Checks on the code Python runs: verified imports (the linux_xattr
 * sample; signed manifests, the WindowsCatFile sample's idea) through the
 * open_code hook and at cpython.run_file, the kernel's AT_EXECVE_CHECK
 * (the execveat sample), and a seccomp filter that keeps the script from
 * stamping its own files. */
#ifndef SPY_CODECHECK_H
#define SPY_CODECHECK_H

#include "pyapi.h"

#include <stddef.h>

/* Sets up what the policy asks for (manifest, exemptions, seccomp, the
 * open_code hook); call before the interpreter starts.  Failures end the
 * process with a message. */
void spy_codecheck_start(void);

/* The main script, checked when cpython.run_file is raised (open_code
 * does not see it).  Returns NULL when it may run, else the refusing
 * policy's name, with the reason in why. */
const char *spy_codecheck_main_script(PyObject *args, char *why,
                                      size_t why_size);

/* A .pyc read through a plain open() (CPython's sourceless loader does
 * not use io.open_code): the `open` event's arguments.  Same answers as
 * spy_codecheck_main_script. */
const char *spy_codecheck_bytecode_read(PyObject *args, char *why,
                                        size_t why_size);

/* Whether -c, stdin and the REPL are refused by the securebits
 * (SECBIT_EXEC_DENY_INTERACTIVE). */
int spy_codecheck_deny_interactive(void);

#endif /* SPY_CODECHECK_H */
