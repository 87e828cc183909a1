/* Part of the fuzz_control target: core/debug.c compiled whole into this
 * unit, so the harness can reset its static state between inputs, put it
 * in the "a thread is stopped" state, and serve the messages queued for
 * the stopped thread with debug.c's own serve_one().  Nothing of debug.c
 * is changed.  (A separate unit from fuzz_control.c because channel.c and
 * debug.c each have a static `struct control_fields`.) */
#include "../core/debug.c"

#include "fuzz_control.h"

#define FUZZ_STOPPED_THREAD 4242

void
fuzz_debug_set_stopped(int stopped)
{
    pthread_mutex_lock(&D.lock);
    D.stopped = stopped;
    D.stopped_thread = stopped ? FUZZ_STOPPED_THREAD : 0;
    D.queue = NULL;
    D.queue_tail = &D.queue;
    pthread_mutex_unlock(&D.lock);
}

/* What the stopped thread's loop in stop() does with each message. */
void
fuzz_debug_serve_queue(void)
{
    for (;;) {
        struct queued *q;

        pthread_mutex_lock(&D.lock);
        q = D.queue;
        if (q != NULL) {
            D.queue = q->next;
            if (D.queue == NULL) {
                D.queue_tail = &D.queue;
            }
        }
        pthread_mutex_unlock(&D.lock);
        if (q == NULL) {
            return;
        }
        (void)serve_one(q, FUZZ_STOPPED_THREAD);
        free(q->line);
        free(q);
    }
}

void
fuzz_debug_reset(void)
{
    fuzz_debug_serve_queue();
    install_set(NULL);          /* retires the current set */
    free_retired();
    FUZZ_CHECK(D.retired == NULL && D.current == NULL);
    D.break_on_denied = 0;
    D.stop_on_entry = 0;
    D.pause_requested = 0;
    D.pause_call_pending = 0;
    D.step_thread = 0;
    fuzz_debug_set_stopped(0);
}

/* What a hook thread does with an event: the breakpoints' globs, hit
 * counts, (stub) conditions and logpoints. */
void
fuzz_debug_match(const char *event)
{
    if (D.current != NULL) {
        (void)matching_breakpoint(D.current, event, NULL, 1);
    }
}

/* A breakpoint set as installed: every field readable, globs present
 * unless marked broken. */
void
fuzz_debug_check_current(void)
{
    struct breakpoint_set *set = D.current;

    if (set == NULL) {
        return;
    }
    for (size_t i = 0; i < set->count; i++) {
        struct breakpoint *bp = &set->items[i];

        FUZZ_CHECK(bp->rule.glob != NULL || bp->rule.broken);
        if (bp->rule.glob != NULL) {
            (void)strlen(bp->rule.glob);
        }
        if (bp->rule.condition != NULL) {
            (void)strlen(bp->rule.condition);
        }
        if (bp->log_message != NULL) {
            (void)strlen(bp->log_message);
        }
        /* What hits_pass() divides by and compares with. */
        if (!bp->rule.broken) {
            FUZZ_CHECK(bp->hit_test != HIT_EVERY || bp->hit_count > 0);
            FUZZ_CHECK(bp->hit_count >= 0);
        }
    }
}
