/* Where an event was raised: the innermost Python frame's file, line and
 * function. */
#ifndef SPY_LOCATION_H
#define SPY_LOCATION_H

#include "buf.h"

struct spy_location {
    char file[1024];
    int line;
    char func[256];
};

/* Fills *out as UTF-8 text; 0 when no Python frame runs (start-up, a
 * thread Python does not know). */
int spy_location_get(struct spy_location *out);

/* Appends ,"file":"…","line":N,"func":"…" for the event record, or
 * nothing without a frame; when that frame is the interpreter's library
 * code, also ,"caller":{"file":…,"line":N,"func":…}, the innermost frame
 * that is not (needs the code-object cache). */
void spy_location_put_json(struct spy_buf *b);

/* Whether a process-wide cache of code objects' file and function names
 * may be used: only where the GIL serializes the hook (not on
 * free-threaded builds). */
void spy_location_use_cache(int enabled);

#endif /* SPY_LOCATION_H */
