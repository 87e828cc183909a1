/* Facts about a Python interpreter that the launcher needs before it can
 * load it: asked of the interpreter once, then cached per interpreter. */
#ifndef SPY_INTERP_H
#define SPY_INTERP_H

#include <limits.h>
#include <stddef.h>

struct spy_interp {
    char executable[PATH_MAX];  /* sys.executable, unresolved (venvs) */
    char version[512];          /* sys.version == Py_GetVersion() */
    char short_version[32];     /* "3.12.1" */
    char libpython[PATH_MAX];   /* shared library, or "" when none */
    int free_threaded;
    int from_cache;
};

/* Fills *out for the interpreter `python` (a path, or a name searched on
 * PATH).  Returns 0, or -1 with an actionable message in err. */
int spy_interp_resolve(const char *python, struct spy_interp *out,
                       int use_cache, char *err, size_t err_size);

/* Drops the cached facts about `python` (they proved wrong). */
void spy_interp_forget(const char *python);

#endif /* SPY_INTERP_H */
