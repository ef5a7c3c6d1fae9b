/* harness.h - the minimal test harness used by every test program.
 *
 * CHECK(cond, fmt, ...) counts a pass or prints the failure with file, line
 * and a printf-style explanation; at most TH_MAX_REPORTS failures are
 * printed per program so that a broken loop over millions of values stays
 * readable. th_done() prints "NAME: N passed, N failed" and returns the exit
 * status for main. */
#ifndef DOJO_TEST_HARNESS_H
#define DOJO_TEST_HARNESS_H

#include <stdio.h>

#define TH_MAX_REPORTS 25

static long th_passed, th_failed;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (cond) {                                                               \
            th_passed++;                                                          \
        } else {                                                                  \
            if (th_failed++ < TH_MAX_REPORTS) {                                   \
                fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
                fprintf(stderr, __VA_ARGS__);                                     \
                fputc('\n', stderr);                                              \
            }                                                                     \
        }                                                                         \
    } while (0)

static inline int th_done(const char *name)
{
    if (th_failed > TH_MAX_REPORTS)
        fprintf(stderr, "(%ld more failures not shown)\n", th_failed - TH_MAX_REPORTS);
    printf("%s: %ld passed, %ld failed\n", name, th_passed, th_failed);
    return th_failed == 0 && th_passed > 0 ? 0 : 1;
}

#endif
