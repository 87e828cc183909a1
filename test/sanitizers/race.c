/* Proves that test/sanitizers/threads.test.ts notices ThreadSanitizer
 * reports: built with the flags of `make -C native tsan`, two threads
 * write one int without a lock; that must leave a report in the log
 * directory. */
#include <pthread.h>
#include <stdio.h>

static int shared;

static void *
bump(void *unused)
{
    (void)unused;
    for (int i = 0; i < 1000; i++) {
        shared++;
    }
    return NULL;
}

int
main(void)
{
    pthread_t a, b;

    pthread_create(&a, NULL, bump, NULL);
    pthread_create(&b, NULL, bump, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("race: %d\n", shared);
    return 0;
}
