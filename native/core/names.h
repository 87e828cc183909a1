/* Attribute and key names the hook looks up on every event, interned
 * once the interpreter runs (never freed): lookups with them allocate and
 * hash nothing. */
#ifndef SPY_NAMES_H
#define SPY_NAMES_H

#include "pyapi.h"

enum spy_name {
    SPY_NAME_THREADING,
    SPY_NAME_ACTIVE,
    SPY_NAME_NAME,
    SPY_NAME_CO_FILENAME,
    SPY_NAME_CO_NAME,
    SPY_NAME_CO_FIRSTLINENO,
    SPY_NAME_COUNT,
};

/* Interns the names once the interpreter is initialized; 1 when ready. */
int spy_names_ready(void);

/* The interned name, or NULL before spy_names_ready(). */
PyObject *spy_name(enum spy_name name);

/* getattr(o, name): with the interned name when ready, else by C string
 * (start-up). */
PyObject *spy_get_attr(PyObject *o, enum spy_name name);

#endif /* SPY_NAMES_H */
