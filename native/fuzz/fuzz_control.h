/* Shared between the units of the fuzz_control target. */
#ifndef SPY_FUZZ_CONTROL_H
#define SPY_FUZZ_CONTROL_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "fuzz_control: check failed at %s:%d: %s\n",   \
                    __FILE__, __LINE__, #cond);                            \
            abort();                                                       \
        }                                                                  \
    } while (0)

/* fuzz_control_debug.c: debug.c's state, from outside. */
void fuzz_debug_set_stopped(int stopped);
void fuzz_debug_serve_queue(void);
void fuzz_debug_reset(void);
void fuzz_debug_check_current(void);
void fuzz_debug_match(const char *event);

#endif /* SPY_FUZZ_CONTROL_H */
