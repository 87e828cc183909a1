#define _GNU_SOURCE
#include "hookwatch.h"

#include "buf.h"
#include "hooks.h"
#include "stream.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* _Py_AuditHookEntry, the same on 3.8-3.13. */
struct hook_entry {
    struct hook_entry *next;
    spy_audit_hook_fn hook;
    void *user_data;
};

static struct hook_entry *volatile *head_slot;
static struct hook_entry *entry;
static spy_audit_hook_fn watched_hook;
/* The flusher reads CPython's entry under watch_lock, and the hook sets
 * `stopped` under it at the event after which CPython frees the entry: so
 * once the hook has returned from that event, no read of it is under way. */
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static int stopped;

/* Where in _PyRuntime the list's head points at `wanted`, or NULL (also
 * when two words do: which one is the head would be a guess). */
static struct hook_entry *volatile *
find_head_slot(const struct hook_entry *wanted)
{
    void *runtime = dlsym(RTLD_DEFAULT, "_PyRuntime");
    Dl_info info;
    const ElfW(Sym) *symbol = NULL;
    uintptr_t *word, *end, *found = NULL;

    if (runtime == NULL
        || dladdr1(runtime, &info, (void **)&symbol, RTLD_DL_SYMENT) == 0
        || symbol == NULL || symbol->st_size == 0) {
        return NULL;
    }
    word = runtime;
    end = (uintptr_t *)((char *)runtime + symbol->st_size);
    for (; word < end; word++) {
        if (*word == (uintptr_t)wanted) {
            if (found != NULL) {
                return NULL;
            }
            found = word;
        }
    }
    return (struct hook_entry *volatile *)found;
}

static void
report_and_stop(void)
{
    char data[512];
    struct spy_buf b = {data, 0, sizeof(data), 0};
    static const char what[] =
        "the launcher's audit hook was removed from CPython's hook list "
        "(memory written through ctypes?): stopping the program";

    spy_hooks_put_process_identity(&b);
    spy_buf_lit(&b, ",\"thread\":null,\"args\":[");
    spy_buf_put_json_string(&b, what, sizeof(what) - 1);
    spy_buf_lit(&b, "]}\n");
    spy_stream_record("spython.tamper", 14, b.data, b.len);
    spy_stream_flush();
    spy_fatal("the program removed the launcher's audit hook; stopping "
              "the program", NULL);
}

/* Called by the flusher thread every tick, without the GIL. */
static void
check(void)
{
    int changed = 0;

    pthread_mutex_lock(&watch_lock);
    if (!stopped) {
        struct hook_entry *head = *head_slot;

        changed = head != entry || entry->hook != watched_hook;
    }
    pthread_mutex_unlock(&watch_lock);
    /* Reported without the lock: reporting takes the stream's. */
    if (changed) {
        report_and_stop();
    }
}

/* A fork while the flusher holds the lock would leave it held in the
 * child, whose shutdown then waits for it forever. */
static void
lock_before_fork(void)
{
    pthread_mutex_lock(&watch_lock);
}

static void
unlock_after_fork(void)
{
    pthread_mutex_unlock(&watch_lock);
}

int
spy_hookwatch_add(spy_audit_hook_fn hook)
{
    /* CPython allocates the entry with PyMem_RawMalloc (malloc): the block
     * just freed is the one malloc hands out next, so its address is what
     * to look for in _PyRuntime, without reading through any pointer. */
    void *block = malloc(sizeof(struct hook_entry));
    uintptr_t address = (uintptr_t)block;
    struct hook_entry *added;
    int rc;

    free(block);
    /* From here on `address` is a number to look for: nothing is read
     * through it until CPython's list is seen to point there. */
    __asm__("" : "+r"(address));
    rc = spy_py.PySys_AddAuditHook(hook, NULL);
    if (rc != 0 || address == 0) {
        return rc;
    }
    added = (struct hook_entry *)address;
    head_slot = find_head_slot(added);
    /* Found there, it is CPython's entry: only then is it read. */
    if (head_slot != NULL && added->hook == hook
        && added->user_data == NULL) {
        entry = added;
        watched_hook = hook;
        pthread_atfork(lock_before_fork, unlock_after_fork, unlock_after_fork);
        spy_stream_set_watch(check);
    }
    return rc;
}

void
spy_hookwatch_stop(void)
{
    pthread_mutex_lock(&watch_lock);
    stopped = 1;
    pthread_mutex_unlock(&watch_lock);
}
