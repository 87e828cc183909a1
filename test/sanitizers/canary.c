/* Proves that scripts/test-sanitizers.js notices sanitizer reports: built
 * with the flags of `make -C native sanitize`, `canary asan` overflows a
 * heap block and `canary ubsan` overflows a signed int; each must leave a
 * report in the log directory and end with a failure status. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
    volatile int big = INT_MAX;
    char *volatile block;

    if (argc > 1 && strcmp(argv[1], "asan") == 0) {
        block = malloc(8);
        memset(block, 'x', 8);
        big = block[8 + (argc > 2)];     /* one past the end */
        free(block);
    }
    else if (argc > 1 && strcmp(argv[1], "ubsan") == 0) {
        big = big + 1;
    }
    printf("canary: %d\n", big);
    return 0;
}
