/* Record timestamps: CLOCK_MONOTONIC in nanoseconds (docs/protocol.md),
 * read for every record. */
#ifndef SPY_CLOCK_H
#define SPY_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC now, in nanoseconds; never less than a value it
 * returned before.  Not thread-safe: the stream calls it under its lock. */
uint64_t spy_clock_now_ns(void);

#endif /* SPY_CLOCK_H */
