/*
 * ci: pipelines — the path from a commit to a deployable artifact.
 *
 * Three parts. (1) The pipeline file, `.pave/pipeline.yml`: ci_pipeline_parse() validates it
 * strictly (every problem at once with file:line:column, through the schema module) before
 * anything runs, and returns a `struct ci_pipeline` of ordered steps. (2) Runs: a run is one
 * execution of a pipeline for a service at a commit (from `git push` to the platform's git
 * repository, or from `pave build` with an uploaded working tree). Runs are stored, queued and
 * executed by a small pool of workers under a concurrency limit; each step runs in the sandbox
 * (src/sandbox) with the workspace as its only writable mount. States: queued → running →
 * succeeded | failed | cancelled. Logs are stored per run and can be followed while it runs.
 * (3) Output: a successful run leaves a tarball artifact of the pipeline's `artifact.paths`
 * with its SHA-256 and metadata (service, team, commit, run id, builder).
 *
 * Ownership: structs filled here own their memory; release them with the matching _release().
 * Threading: struct ci_runner is thread safe; its workers are its own threads.
 */
#ifndef PAVE_CI_H
#define PAVE_CI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct schema_diags;

#define CI_PIPELINE_MAX (128 * 1024)
#define CI_PIPELINE_PATH ".pave/pipeline.yml"

struct ci_kv {
    char *key;
    char *value;
};

struct ci_cache {
    char *name;       /* DNS label, unique in the pipeline */
    char **paths;     /* workspace-relative directories saved and restored */
    size_t npaths;
    char **key_files; /* workspace-relative files whose contents key the cache (may be empty) */
    size_t nkey_files;
};

struct ci_step {
    char *name;        /* DNS label, unique in the pipeline */
    int line;          /* where the step starts, for messages */
    char **commands;   /* run in order with /bin/sh -ec inside the sandbox */
    size_t ncommands;
    struct ci_kv *env;
    size_t nenv;
    char *workdir;     /* workspace-relative, "." by default */
    int64_t timeout_ms; /* default 10 minutes */
    bool network;      /* default false */
    char **when_branches; /* glob patterns; empty = any branch */
    size_t nwhen_branches;
    char **when_paths;    /* glob patterns over changed paths; empty = always */
    size_t nwhen_paths;
    char **caches;     /* names of pipeline caches this step uses */
    size_t ncaches;
    char **secrets;    /* secret names exposed as environment variables (masked in logs) */
    size_t nsecrets;
    int64_t cpu_millicores; /* default 1000 */
    int64_t memory_bytes;   /* default 512 MiB */
    int64_t pids;           /* default 256 */
};

struct ci_pipeline {
    char *file;
    char **branches;   /* on.push.branches: pushes to these (globs) queue a run; default main */
    size_t nbranches;
    struct ci_step *steps;
    size_t nsteps;
    struct ci_cache *caches;
    size_t ncaches;
    char **artifact_paths; /* artifact.paths: what the artifact tarball holds */
    size_t nartifact_paths;
    char digest[65];   /* SHA-256 of the file text */
};

void ci_pipeline_init(struct ci_pipeline *p);
void ci_pipeline_release(struct ci_pipeline *p);

/* Parses and validates a pipeline file (YAML or JSON). Same contract as
 * catalog_manifest_parse(): 0 and *p filled; CORE_E_INVAL with every problem in diags (which may
 * be NULL); CORE_E_TOO_BIG over CI_PIPELINE_MAX; CORE_E_NOMEM. */
int ci_pipeline_parse(const char *file, const char *text, size_t len, struct ci_pipeline *p,
                      struct schema_diags *diags, struct core_err *err);
/* The pipeline file reference (Markdown table) from the validator's own schema. */
int ci_pipeline_schema_markdown(struct core_buf *out);

/* Glob match: '*' matches within a path segment, '**' across segments, '?' one character. */
bool ci_glob_match(const char *pattern, const char *text);
/* Whether a step's `when` lets it run for this branch and these changed paths (NULL changed
 * list = unknown: path conditions pass). */
bool ci_step_wanted(const struct ci_step *s, const char *branch, const char *const *changed,
                    size_t nchanged);
/* Whether a push to this branch should queue a run. */
bool ci_pipeline_watches(const struct ci_pipeline *p, const char *branch);


/* ---- runs ---------------------------------------------------------------------------------- */

struct store;
struct catalog;
struct catalog_actor;
struct secret_box;
struct registry;
struct artifact_signer;
struct ci_runner;

struct ci_runner_config {
    const char *data_dir;    /* the runner keeps DATA/ci/{runs,work,caches,artifacts,sources} */
    int concurrency;         /* runs at once; default 2 */
    int64_t workspace_bytes; /* size cap of a run's workspace (tmpfs when root); default 1 GiB */
    bool allow_unisolated;   /* run steps without namespaces where bubblewrap is unavailable */
    /* When both are set, a successful run's artifact is also published as a signed OCI image
     * with provenance in the registry (repository <service>, tags run-<id> and the branch). */
    struct registry *registry;
    struct artifact_signer *signer;
    /* Guard rails asked before a run's output is packaged (the policy module; docs/policy.md):
     * 0 allows, an error (CORE_E_PERM with the reasons) fails the run with them. May be NULL. */
    int (*gate)(void *arg, const char *service, const char *team, int64_t run_id,
                struct core_err *err);
    void *gate_arg;
};

/* Starts the workers. Runs left "running" by a previous process are marked failed first.
 * Borrows st, cat and box. returns: owned by caller (ci_runner_stop), NULL and err on failure. */
struct ci_runner *ci_runner_start(const struct ci_runner_config *cfg, struct store *st,
                                  struct catalog *cat, struct secret_box *box,
                                  struct core_err *err);
/* Cancels running steps, waits for the workers and frees the runner. */
void ci_runner_stop(struct ci_runner *r);
/* Human summary of the isolation available ("bwrap+cgroup-v1", "none: ..."). */
const char *ci_runner_isolation(const struct ci_runner *r);

struct ci_submit {
    const char *service;
    const char *actor;
    const char *trigger; /* "push", "build" or "retry" */
    const char *branch;  /* may be NULL for builds */
    const char *commit;  /* may be NULL for builds */
    /* Where the source is: "tar:PATH" (a tar file the runner takes over: it is moved into the
     * runner's directory) or "git:REPO_DIR@SHA" (a bare repository and a commit). */
    const char *source;
    const char *changed; /* newline-separated changed paths; NULL = unknown */
    int64_t retry_of;    /* 0 unless trigger is "retry" */
};

/* Queues a run. The caller has checked the actor's rights. */
int ci_run_submit(struct ci_runner *r, const struct ci_submit *s, int64_t *id,
                  struct core_err *err);
/* Cancels a queued or running run (admins or members of the service's team). */
int ci_run_cancel(struct ci_runner *r, const struct catalog_actor *actor, int64_t id,
                  struct core_err *err);
/* Queues a new run with the same source as a finished one. */
int ci_run_retry(struct ci_runner *r, const struct catalog_actor *actor, int64_t id,
                 int64_t *new_id, struct core_err *err);
/* Path of a run's log file (written as the run goes). */
void ci_run_log_path(const struct ci_runner *r, int64_t id, char *out, size_t outsz);

struct ci_run {
    int64_t id;
    const char *service;
    const char *team;
    const char *state; /* queued, running, succeeded, failed, cancelled */
    const char *trigger;
    const char *branch;
    const char *commit;
    const char *actor;
    const char *queued_at;
    const char *started_at;
    const char *finished_at;
    const char *error;
    const char *artifact_digest; /* "sha256:..." */
    int64_t artifact_size;
    const char *artifact_path;
    int64_t retry_of;
};
typedef int (*ci_run_fn)(void *arg, const struct ci_run *run);
bool ci_state_is_final(const char *state);
/* Newest first; service may be NULL; before_id 0 = from the newest. */
int ci_run_list(struct store *st, const char *service, int64_t before_id, int limit, ci_run_fn fn,
                void *arg, struct core_err *err);
/* Calls fn once, or returns CORE_E_NOTFOUND. */
int ci_run_get(struct store *st, int64_t id, ci_run_fn fn, void *arg, struct core_err *err);

/* ---- hosted repositories ---- */

/* Path of a service's bare repository: DATA/git/<service>.git. */
void ci_repo_path(const char *data_dir, const char *service, char *out, size_t outsz);
/* Creates the bare repository (branch main, receive-pack enabled) if it does not exist. */
int ci_repo_ensure(const char *dir, struct core_err *err);
/* "refs/heads/x sha" lines of the repository into out (initialized here; release it). */
void ci_repo_heads(const char *dir, struct core_buf *out);
/* After a push: for every branch that moved since `before` (an earlier ci_repo_heads) and that
 * the pipeline at the new commit watches, queues a run. runner may be NULL (nothing queued). */
void ci_repo_pushed(struct ci_runner *runner, const char *service, const char *actor,
                    const char *dir, const char *before);
/* Makes src_dir the first commit on main of the service's (new or empty) repository and queues
 * its run; CORE_E_CONFLICT if the repository already has commits. */
int ci_repo_import(struct ci_runner *runner, const char *data_dir, const char *service,
                   const char *actor, const char *src_dir, const char *message,
                   struct core_err *err);
/* Runs argv (PATH lookup) with stdin from in_fd (-1: /dev/null) and stdout to out_fd, or into
 * out when out_fd < 0 (out may be NULL); stderr into errbuf (may be NULL). For small outputs.
 * returns: the exit status, or -1 when it could not run. */
int ci_spawn(const char *const *argv, const char *const *env, int in_fd, int out_fd,
             struct core_buf *out, struct core_buf *errbuf);

struct ci_step_info {
    int64_t idx;
    const char *name;
    const char *state; /* pending, running, succeeded, failed, skipped, cancelled */
    int64_t exit_code;
    int64_t duration_ms;
    const char *detail;
};
typedef int (*ci_step_fn)(void *arg, const struct ci_step_info *s);
int ci_run_steps(struct store *st, int64_t id, ci_step_fn fn, void *arg, struct core_err *err);

#endif
