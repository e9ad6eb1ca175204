/* Shared helpers for unit tests: a fresh temp dir and a store opened in it. */
#ifndef PAVE_TESTUTIL_H
#define PAVE_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

struct test_env {
    char dir[256];
    char db[300];
    struct store *st;
};

static inline int test_env_open(struct test_env *e)
{
    snprintf(e->dir, sizeof(e->dir), "/tmp/pave-unit-XXXXXX");
    if (!mkdtemp(e->dir))
        return -1;
    snprintf(e->db, sizeof(e->db), "sqlite:%s/pave.db", e->dir);
    struct core_err err = {0};
    if (store_open(&e->st, e->db, &err)) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static inline void test_env_close(struct test_env *e)
{
    store_close(e->st);
    e->st = NULL;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", e->dir);
}

#endif
