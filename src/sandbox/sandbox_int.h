/*
 * sandbox internals: the cgroup half of the sandbox (cgroup.c), used only by sandbox.c.
 *
 * A run gets its own cgroup "<name>-<child pid>-<owner pid>" below a "pave" group that sits under
 * the cgroup this process already belongs to (so the platform's own limits still apply on top).
 * On cgroup v1 that is one directory per controller (memory, cpu, pids); on v2 one directory in
 * the unified tree.
 * Lifecycle: sandbox_cg_detect() (no side effects except creating/enabling the "pave" parent),
 * sandbox_cg_create() + sandbox_cg_attach() before the command is released,
 * sandbox_cg_read_events() after it ended, sandbox_cg_destroy() always (kills what is left, waits
 * until empty, rmdirs the group and, when no other run uses it, the "pave" parent).
 * Everything works on plain paths in a caller-owned struct: thread safe, no globals.
 */
#ifndef PAVE_SANDBOX_INT_H
#define PAVE_SANDBOX_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/core.h"
#include "sandbox/sandbox.h"

enum sandbox_cg_ctrl {
    SANDBOX_CG_MEMORY = 0,
    SANDBOX_CG_CPU = 1,
    SANDBOX_CG_PIDS = 2,
    SANDBOX_CG_NCTRL = 3,
};

#define SANDBOX_CG_PATH_MAX 1024

/* What the host offers. base[c] is the directory holding the "pave" parent group for controller
 * c ("" when unusable); on v2 all usable entries are the same directory. */
struct sandbox_cg_host {
    int version; /* 0, 1 or 2 */
    bool usable[SANDBOX_CG_NCTRL];
    char base[SANDBOX_CG_NCTRL][SANDBOX_CG_PATH_MAX];
};

/* One run's cgroup. dir[c] is "" when that controller's group was not created. On v2 the single
 * directory is stored in every usable slot. */
struct sandbox_cg {
    int version;
    char dir[SANDBOX_CG_NCTRL][SANDBOX_CG_PATH_MAX];
};

/* Fills host with what is mounted and writable; never fails. */
void sandbox_cg_detect(struct sandbox_cg_host *host);

/* Creates the run's group(s) named "<name>-<tag>-<our pid>" and writes the limits (0 = none).
 * Groups of earlier owners that died without cleaning up are removed first.
 * On failure everything created is removed again. returns: 0 or CORE_E_IO / CORE_E_INVAL. */
int sandbox_cg_create(struct sandbox_cg *cg, const struct sandbox_cg_host *host, const char *name,
                      long tag, const struct sandbox_limits *lim, struct core_err *err);

/* Moves pid into every group of cg. returns: 0 or CORE_E_IO. */
int sandbox_cg_attach(const struct sandbox_cg *cg, pid_t pid, struct core_err *err);

/* SIGKILLs every process in the group (cgroup.kill on v2, a read-and-kill loop on v1). */
void sandbox_cg_kill(const struct sandbox_cg *cg);

/* true when no process is left in the group (or there is no group). */
bool sandbox_cg_is_empty(const struct sandbox_cg *cg);

/* Reads memory OOM kills and pids-limit hits. */
void sandbox_cg_read_events(const struct sandbox_cg *cg, bool *oom_killed, bool *pids_limited);

/* Kills what is left, waits (bounded) until the group is empty, removes the directories and
 * clears cg. Safe on a zeroed or already destroyed cg. */
void sandbox_cg_destroy(struct sandbox_cg *cg);

#endif
