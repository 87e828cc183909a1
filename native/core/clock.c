#define _GNU_SOURCE
#include "clock.h"

#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* clock_gettime() through the vDSO costs ~25 ns on the machines we
 * measure, a tenth of a record; most of it is the fence before its TSC
 * read and its sequence lock.  Where the kernel keeps CLOCK_MONOTONIC
 * from the TSC itself (x86-64, clocksource "tsc"), a record reads the TSC
 * (~10 ns) and scales it by the rate measured against clock_gettime().
 * Offset and rate are measured again every RECALIBRATE_NS of TSC time, so
 * a timestamp is off by well under a microsecond (NTP's slewing of the
 * kernel's clock is followed too).  A rate that moves by more than
 * 1/RATE_TOLERANCE between two measures, or a TSC that goes back, sends
 * every later read to clock_gettime(). */
#if defined(__x86_64__)
#include <x86intrin.h>
#define SPY_HAVE_TSC 1
#endif

#define RECALIBRATE_NS (10 * 1000 * 1000)
/* The first rate is measured over at least this long. */
#define FIRST_SPAN_NS (2 * 1000 * 1000)
/* A clock_gettime() is paired with the TSC only when the two TSC reads
 * around it are this close (else the thread was interrupted: again). */
#define PAIR_TICKS_MAX 2000
#define PAIR_TRIES 4
#define RATE_TOLERANCE 1024

enum source { UNDECIDED, TSC, KERNEL };

static struct {
    enum source source;
    uint64_t base_ns;       /* the last (clock_gettime, TSC) pair */
    uint64_t base_tsc;
    uint64_t mult;          /* ns per tick, 32.32 fixed point; 0: not yet */
    uint64_t span;          /* ticks until the next measure */
    uint64_t last_ns;
} C;

static uint64_t
kernel_ns(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

#ifdef SPY_HAVE_TSC
static int
kernel_clock_is_tsc(void)
{
    char name[8] = {0};
    int fd = open("/sys/devices/system/clocksource/clocksource0/"
                  "current_clocksource", O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        return 0;
    }
    n = read(fd, name, sizeof(name));
    close(fd);
    return n == 4 && memcmp(name, "tsc\n", 4) == 0;
}

/* clock_gettime() and the TSC at the same moment; 0 when every try was
 * interrupted. */
static int
take_pair(uint64_t *ns, uint64_t *tsc)
{
    for (int i = 0; i < PAIR_TRIES; i++) {
        uint64_t before = __rdtsc();
        uint64_t kernel = kernel_ns();
        uint64_t after = __rdtsc();

        if (after - before <= PAIR_TICKS_MAX) {
            *ns = kernel;
            *tsc = before + (after - before) / 2;
            return 1;
        }
    }
    return 0;
}

/* clock_gettime() now; offset and rate measured again from it. */
static uint64_t
calibrate(void)
{
    uint64_t ns, tsc, mult, span_ns;

    if (!take_pair(&ns, &tsc)) {
        return kernel_ns();
    }
    if (C.base_tsc == 0) {
        C.base_ns = ns;
        C.base_tsc = tsc;
        return ns;
    }
    if (tsc <= C.base_tsc || ns <= C.base_ns) {
        C.source = KERNEL;
        return ns;
    }
    if (C.mult == 0 && ns - C.base_ns < FIRST_SPAN_NS) {
        return ns;
    }
    mult = (uint64_t)(((unsigned __int128)(ns - C.base_ns) << 32)
                      / (tsc - C.base_tsc));
    if (mult == 0
        || (C.mult != 0 && (mult > C.mult + C.mult / RATE_TOLERANCE
                            || mult < C.mult - C.mult / RATE_TOLERANCE))) {
        C.source = KERNEL;
        return ns;
    }
    /* A rate is used over at most twice the time it was measured over,
     * so the first (measured over FIRST_SPAN_NS) is soon replaced. */
    span_ns = 2 * (ns - C.base_ns);
    if (span_ns > RECALIBRATE_NS) {
        span_ns = RECALIBRATE_NS;
    }
    C.mult = mult;
    C.base_ns = ns;
    C.base_tsc = tsc;
    C.span = (uint64_t)(((unsigned __int128)span_ns << 32) / mult);
    return ns;
}
#endif

uint64_t
spy_clock_now_ns(void)
{
    uint64_t ns;

#ifdef SPY_HAVE_TSC
    if (C.source == UNDECIDED) {
        C.source = kernel_clock_is_tsc() ? TSC : KERNEL;
    }
    if (C.source == TSC) {
        uint64_t ticks = __rdtsc() - C.base_tsc;

        /* ticks * mult < span_ns << 32 <= RECALIBRATE_NS << 32: no
         * overflow. */
        ns = C.mult != 0 && ticks < C.span
             ? C.base_ns + ((ticks * C.mult) >> 32)
             : calibrate();
    }
    else
#endif
    {
        ns = kernel_ns();
    }
    if (ns < C.last_ns) {
        ns = C.last_ns;     /* a new measure a few ns behind the last read */
    }
    C.last_ns = ns;
    return ns;
}
