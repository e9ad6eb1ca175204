/*
 * sandbox: runs one untrusted command isolated from the platform. It is what CI steps (and later
 * workload replicas) run inside.
 *
 * Isolation uses Linux namespaces through bubblewrap (`bwrap`, Debian package bubblewrap): new
 * user/pid/ipc/uts/mount namespaces, and a new network namespace unless the spec opts in. The
 * sandbox sees a read-only view of the host's system directories (/usr, /bin, /lib*, /etc/alternatives
 * and the few /etc files programs need), a private /tmp and /dev, /proc of its own pid namespace,
 * and exactly the mounts the spec lists (the workspace is the only writable one by default). It
 * never sees the platform's data directory or anything else of the host.
 *
 * Limits go through cgroups: v1 (memory, cpu, pids controllers under /sys/fs/cgroup/<ctrl>) or v2
 * (unified hierarchy), whichever the host has writable; CPU as a quota, memory as a hard limit
 * (an OOM kill is reported), pids as a hard limit (a fork bomb is contained), and wall time as a
 * timeout after which the whole process tree is killed. Output (stdout and stderr merged) goes to
 * a file descriptor the caller provides. Disk use of the writable workspace is bounded by the
 * caller choosing where the workspace lives (sandbox_workspace_create() makes a size-capped tmpfs
 * when running as root).
 *
 * sandbox_probe() tells what is available; when namespaces are unavailable sandbox_run() refuses
 * unless the spec allows running unisolated, and the result says which isolation was used.
 * Thread safe: each call is independent; a caller may run several sandboxes at once.
 */
#ifndef PAVE_SANDBOX_H
#define PAVE_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct sandbox_caps {
    bool bwrap;        /* bubblewrap found and able to create namespaces here */
    char bwrap_path[256];
    int cgroup_version; /* 0 none writable, 1 (v1 controllers), 2 (unified) */
    bool memory, cpu, pids; /* controllers usable */
    char detail[256];   /* human-readable summary for `pave status` / logs */
};

/* Fills caps; never fails (missing features are just false). Cheap enough to call per run. */
void sandbox_probe(struct sandbox_caps *caps);

struct sandbox_mount {
    const char *host;   /* absolute host path */
    const char *inside; /* absolute path inside the sandbox */
    bool writable;
};

/* A file the sandbox gets on a private tmpfs: a secret (a password, a key) handed to the command
 * without going through its environment, argv, a log or the host's disk. Rules, checked by
 * sandbox_files_check(): `inside` is an absolute, normalised path (no "." or ".." component, no
 * "//", no trailing '/', no control characters) below /run/ or /var/run/secrets/, different from
 * every other file and not a directory of another; len <= SANDBOX_FILE_MAX_BYTES; at most
 * SANDBOX_FILES_MAX files. Each distinct top directory holding files becomes its own tmpfs,
 * remounted read-only once the files are written; files have mode 0400. */
struct sandbox_file {
    const char *inside; /* e.g. "/run/secrets/db-password" */
    const void *data;   /* len bytes (may hold NULs); may be NULL when len is 0 */
    size_t len;
};

#define SANDBOX_FILE_MAX_BYTES (1024 * 1024)
#define SANDBOX_FILES_MAX 256

struct sandbox_limits {
    int64_t cpu_millicores; /* 0 = no limit */
    int64_t memory_bytes;   /* 0 = no limit */
    int64_t pids;           /* 0 = no limit */
    int64_t timeout_ms;     /* 0 = no limit */
};

struct sandbox_spec {
    const char *const *argv;   /* NULL-terminated; argv[0] looked up in the sandbox's PATH */
    const char *const *env;    /* NULL-terminated "K=V"; nothing of the caller's env leaks in */
    const char *workdir;       /* cwd inside the sandbox, e.g. "/workspace" */
    const struct sandbox_mount *mounts;
    size_t nmounts;
    struct sandbox_limits limits;
    bool network;              /* false: own empty network namespace (loopback only) */
    bool allow_unisolated;     /* run without namespaces if bwrap is unavailable */
    int out_fd;                /* stdout and stderr of the command go here */
    const char *name;          /* for cgroup names and logs, e.g. "run-42-step-3" */
    /* Polled while the command runs (at least every 100 ms); when it becomes true the whole
     * process tree is killed as on a timeout and the result has `cancelled` set. May be NULL. */
    const volatile int *cancel;
    /* What sandbox_probe() found, to skip probing on every run (NULL: probe now). */
    const struct sandbox_caps *caps;
    /* Files (secrets) put on tmpfs inside the sandbox; borrowed, only read during the call.
     * Needs bubblewrap: a spec with files is refused (CORE_E_UNSUPPORTED) when the run would be
     * unisolated. Contents are never logged nor put in an error message. */
    const struct sandbox_file *files;
    size_t nfiles;
};

struct sandbox_result {
    int exit_code;     /* exit status, or 128+signal */
    int term_signal;   /* signal that killed it, 0 if it exited (under bwrap inferred from an
                        * exit status 128+N, so a command's own `exit 137` also reads as 9) */
    bool timed_out;
    bool cancelled;    /* stopped because *spec->cancel became true */
    bool oom_killed;
    bool pids_limited; /* the pids limit was hit at some point */
    int64_t duration_ms;
    char isolation[64]; /* "bwrap+cgroup-v1", "bwrap+cgroup-v2", "bwrap", "none" */
};

/* Checks files the way sandbox_run() does (paths, sizes, count; see struct sandbox_file), so a
 * caller that runs the same files many times can refuse a bad list once, up front. The message
 * names the offending path, never the contents. returns: 0 or CORE_E_INVAL / CORE_E_TOO_BIG. */
int sandbox_files_check(const struct sandbox_file *files, size_t nfiles, struct core_err *err);

/* Runs the command to completion (or timeout) and fills res. Returns 0 when the command ran
 * (whatever its exit status), or an error when it could not be started (CORE_E_UNSUPPORTED if
 * isolation is unavailable and not allowed to be skipped). */
int sandbox_run(const struct sandbox_spec *spec, struct sandbox_result *res, struct core_err *err);

/* Creates dir (mkdir -p) and, when running as root, mounts a tmpfs of at most max_bytes on it so
 * a step cannot fill the host's disk. *is_tmpfs tells which happened: when the mount is refused
 * (no CAP_SYS_ADMIN) it still returns 0 with a plain directory, and the caller decides. */
int sandbox_workspace_create(const char *dir, int64_t max_bytes, bool *is_tmpfs,
                             struct core_err *err);
/* Unmounts (if needed) and removes dir recursively. */
int sandbox_workspace_remove(const char *dir, struct core_err *err);

#endif
