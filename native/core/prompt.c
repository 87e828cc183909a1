#define _GNU_SOURCE
#include "prompt.h"

#include "channel.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "Allow always" answers: event and target, joined by a NUL. */
static struct {
    pthread_mutex_t lock;
    char **items;
    size_t count;
} allowed = {PTHREAD_MUTEX_INITIALIZER, NULL, 0};

static char *
allowed_key(const char *event, const char *target)
{
    size_t e = strlen(event), t = strlen(target);
    char *key = malloc(e + t + 2);

    if (key != NULL) {
        memcpy(key, event, e + 1);
        memcpy(key + e + 1, target, t + 1);
    }
    return key;
}

static int
is_allowed_always(const char *event, const char *target)
{
    size_t e = strlen(event);
    int found = 0;

    pthread_mutex_lock(&allowed.lock);
    for (size_t i = 0; i < allowed.count && !found; i++) {
        found = strcmp(allowed.items[i], event) == 0
                && strcmp(allowed.items[i] + e + 1, target) == 0;
    }
    pthread_mutex_unlock(&allowed.lock);
    return found;
}

static void
remember_allowed(const char *event, const char *target)
{
    char *key = allowed_key(event, target);
    char **items;

    if (key == NULL) {
        return;
    }
    pthread_mutex_lock(&allowed.lock);
    items = realloc(allowed.items, (allowed.count + 1) * sizeof(char *));
    if (items != NULL) {
        allowed.items = items;
        allowed.items[allowed.count++] = key;
        key = NULL;
    }
    pthread_mutex_unlock(&allowed.lock);
    free(key);
}

static void
say(int fd, const char *text)
{
    size_t n = strlen(text);

    while (n > 0) {
        ssize_t k = write(fd, text, n);

        if (k <= 0) {
            return;
        }
        text += k;
        n -= (size_t)k;
    }
}

/* The terminal's answer: 1 yes, 0 no, -1 no terminal. */
static int
ask_terminal(const char *event, const char *target)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    char question[1024], answer[64];
    size_t n = 0;
    int answered = 0;

    if (fd < 0) {
        return -1;
    }
    snprintf(question, sizeof(question),
             "spython: allow %s %s? Continue [Y/n] ", event, target);
    say(fd, question);
    while (n < sizeof(answer) - 1) {
        ssize_t k = read(fd, answer + n, 1);

        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            break;
        }
        if (answer[n] == '\n') {
            answered = 1;
            break;
        }
        n++;
    }
    close(fd);
    /* The sample's rule: anything but n/N goes on (Enter too); end of
     * input without an answer does not. */
    if (!answered && n == 0) {
        return 0;
    }
    return answer[0] == 'n' || answer[0] == 'N' ? 0 : 1;
}

int
spy_prompt_ask(const char *event, PyObject *args, const char *target)
{
    enum spy_prompt_answer answer;
    void *thread_state;
    int terminal;

    (void)args;
    if (is_allowed_always(event, target)) {
        return 1;
    }
    thread_state = spy_py.PyEval_SaveThread();
    if (spy_channel_prompt(event, target, &answer) == 0) {
        spy_py.PyEval_RestoreThread(thread_state);
        if (answer == SPY_PROMPT_ALLOW_ALWAYS) {
            remember_allowed(event, target);
        }
        return answer != SPY_PROMPT_DENY;
    }
    terminal = ask_terminal(event, target);
    spy_py.PyEval_RestoreThread(thread_state);
    if (terminal < 0) {
        char line[1024];

        snprintf(line, sizeof(line),
                 "spython: promptEvents: no editor and no terminal to ask "
                 "whether %s %s may proceed, so it is refused\n",
                 event, target);
        say(STDERR_FILENO, line);
        return 0;
    }
    return terminal;
}
