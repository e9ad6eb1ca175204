/*
 * runtime: how a service described by its manifest (`pave.yaml`) is run. It has two parts. First,
 * the Kubernetes renderer: runtime_render_k8s() turns a service's canonical manifest JSON (as the
 * catalog stores it) into the Kubernetes objects that would run it in one environment — a
 * Deployment, a Service, and when the manifest asks for them an Ingress, a PodDisruptionBudget
 * and a NetworkPolicy — all in the namespace "<team>-<env>". docs/kubernetes.md says which
 * manifest field becomes which object field. Second, the local driver's supervisor
 * (runtime_supervisor_*, src/runtime/supervisor.c): it keeps N replicas of one command running
 * on this machine, each isolated by the sandbox module, restarted with exponential backoff and
 * flagged when it crash-loops (docs/runtime.md). The deploy controller's replica shims drive it.
 *
 * The renderer is pure: it reads no store, opens no connection and applies nothing to a cluster.
 * It builds jansson values and leaves printing (YAML documents, a JSON List) to the caller, so
 * the API and the CLI share one rendering. The supervisor runs one thread per replica; it too
 * reads no store.
 *
 * Ownership: returned values belong to the caller (json_decref, runtime_supervisor_stop).
 * Threading: the renderer has no shared state; a supervisor may be queried from any thread.
 */
#ifndef PAVE_RUNTIME_H
#define PAVE_RUNTIME_H

#include <jansson.h>

#include "core/core.h"
#include "sandbox/sandbox.h"

/* Host of the platform registry in default image references ("<host>/<service>:<env>"). */
#define RUNTIME_REGISTRY_HOST "pave-registry.local"
/* Namespace of the cluster's ingress controller, allowed in by exposed services' policies. */
#define RUNTIME_INGRESS_NAMESPACE "ingress-nginx"

/*
 * Renders the Kubernetes objects for one service in one environment. manifest_json is the
 * catalog's canonical JSON of a validated manifest; team (NULL: metadata.team) and env are DNS
 * labels naming the namespace "<team>-<env>"; image is the container image reference (NULL or
 * "": RUNTIME_REGISTRY_HOST "/<service>:<env>").
 * returns: a JSON array of objects in apply order (Deployment, Service, Ingress,
 * PodDisruptionBudget, NetworkPolicy), owned by the caller; NULL with err set: CORE_E_INVAL for
 * malformed JSON, a bad team, env or image, or a manifest the renderer cannot express;
 * CORE_E_NOMEM.
 */
json_t *runtime_render_k8s(const char *manifest_json, const char *team, const char *env,
                           const char *image, struct core_err *err);

/* ---- local driver: replica supervisor ------------------------------------------------- */

/* What one replica runs. All pointers are borrowed and only need to live during
 * runtime_supervisor_start(), which copies them. */
struct runtime_replica_spec {
    const char *const *argv;  /* NULL-terminated; argv[0] looked up in the sandbox's PATH */
    const char *const *env;   /* NULL-terminated "K=V" (may be NULL); PORT is set per replica */
    const char *bundle_dir;   /* host dir mounted read-only at /app; NULL: no bundle */
    const char *workdir;      /* cwd inside; NULL: "/app" with a bundle, "/" without */
    struct sandbox_limits limits; /* timeout_ms is ignored: replicas run until stopped */
    int log_fd;               /* >= 0: stdout+stderr appended here (dup'ed, caller keeps its fd) */
    const char *log_path;     /* used when log_fd < 0: opened O_APPEND|O_CREAT; NULL: discard */
    int port;                 /* replica i gets PORT=<port + i> in its env; 0: no PORT */
    /* Secrets as files on a read-only tmpfs inside every replica (e.g. /run/secrets/db-password,
     * rules in sandbox.h); never put in env, argv or logs. Copied (and wiped when the supervisor
     * is freed), so the caller may wipe its own buffers once runtime_supervisor_start returns. */
    const struct sandbox_file *files;
    size_t nfiles;
    /* Where bubblewrap cannot create namespaces, run the command as a plain process rather than
     * refusing (the status's isolation then says "none"; files are refused unisolated). */
    bool allow_unisolated;
};

enum runtime_replica_state {
    RUNTIME_REPLICA_STARTING = 1, /* launched less than RUNTIME_START_GRACE_MS ago */
    RUNTIME_REPLICA_RUNNING,      /* up for at least RUNTIME_START_GRACE_MS */
    RUNTIME_REPLICA_BACKOFF,      /* exited; waiting before the next start */
    RUNTIME_REPLICA_CRASH_LOOP,   /* RUNTIME_CRASH_LOOP_EXITS exits within the window */
    RUNTIME_REPLICA_STOPPED,      /* runtime_supervisor_stop() ended it */
};

#define RUNTIME_START_GRACE_MS 1000
#define RUNTIME_BACKOFF_INITIAL_MS 500
#define RUNTIME_BACKOFF_MAX_MS 30000
#define RUNTIME_STABLE_MS 60000        /* up this long: backoff resets, crash loop clears */
#define RUNTIME_CRASH_LOOP_EXITS 5     /* this many exits ... */
#define RUNTIME_CRASH_LOOP_WINDOW_MS 60000 /* ... within this window mean a crash loop */

/* "starting", "running", "backoff", "crash-loop", "stopped" (static string). */
const char *runtime_replica_state_name(enum runtime_replica_state state);

struct runtime_replica_status {
    int index;                  /* 0 .. replicas-1 */
    int port;                   /* spec->port + index (0 when spec->port is 0) */
    enum runtime_replica_state state;
    const char *state_name;     /* runtime_replica_state_name(state) */
    long pid;                   /* 0: not known (the sandbox does not expose it) */
    int restarts;               /* starts after the first */
    int exits;                  /* exits so far (a failed start counts) */
    int last_exit_code;         /* exit status or 128+signal; -1 failed to start or none yet */
    int64_t last_start_ms;      /* wall clock (ms since epoch) of the last start; 0 never */
    char isolation[64];         /* "bwrap+cgroup-v2", ... as the sandbox reports it */
    char last_error[128];       /* why the last start failed, "" otherwise */
};

struct runtime_supervisor;

/* Called once per replica, in index order; st is valid only during the call. A non-zero return
 * stops the iteration and is returned by runtime_supervisor_status(). */
typedef int (*runtime_replica_fn)(void *arg, const struct runtime_replica_status *st);

/*
 * Starts `replicas` (1..64) supervisor threads, each running spec's command in a sandbox (host
 * network; unisolated only with spec->allow_unisolated) in a loop: when the command exits it is started again after
 * a backoff of RUNTIME_BACKOFF_INITIAL_MS doubling up to RUNTIME_BACKOFF_MAX_MS (reset after a
 * run of RUNTIME_STABLE_MS); RUNTIME_CRASH_LOOP_EXITS exits within RUNTIME_CRASH_LOOP_WINDOW_MS
 * put the replica in "crash-loop", retried at the maximum backoff. name (borrowed) names the
 * cgroups ("<name>-<index>").
 * returns: owned by the caller, end with runtime_supervisor_stop(); NULL with err set:
 * CORE_E_INVAL (bad spec), CORE_E_UNSUPPORTED (bubblewrap cannot run here and
 * spec->allow_unisolated is false), CORE_E_IO (log
 * file), CORE_E_NOMEM, CORE_E_INTERNAL (thread creation).
 */
struct runtime_supervisor *runtime_supervisor_start(const char *name,
                                                    const struct runtime_replica_spec *spec,
                                                    int replicas, struct core_err *err);

/* Reports every replica to fn (see runtime_replica_fn). returns: 0 or fn's non-zero value. */
int runtime_supervisor_status(struct runtime_supervisor *sup, runtime_replica_fn fn, void *arg);

/* Test hook: replaces the backoff bounds (initial_ms >= 1, max_ms >= initial_ms) for every
 * replica, including one waiting right now (its wait is cut to max_ms). Production code keeps the
 * defaults. */
void runtime_supervisor_set_backoff(struct runtime_supervisor *sup, int64_t initial_ms,
                                    int64_t max_ms);

/* Cancels every replica (the sandbox kills its process tree within ~100 ms), wakes threads
 * waiting in backoff, joins them and frees sup. NULL does nothing. */
void runtime_supervisor_stop(struct runtime_supervisor *sup);

/* ---- local driver: bundles ---- */

struct registry;

/* An image unpacked for the local driver (docs/runtime.md, "Bundles"). Filled by
 * runtime_bundle_unpack(); the arrays and strings are owned, free with runtime_image_release(). */
struct runtime_image {
    char digest[72];      /* manifest digest "sha256:<hex>" */
    char dir[4096];       /* absolute bundle root: DATA/bundles/<hex>/rootfs */
    char **cmd;           /* Entrypoint followed by Cmd from the image config, NULL-terminated
                           * (may be empty) */
    char **env;           /* "K=V" from the config's Env, NULL-terminated */
    char *workdir;        /* config WorkingDir or NULL */
};

/*
 * Resolves repo:ref (a tag or a digest) in the registry and unpacks its layers, in order, into
 * DATA/bundles/<hex>/rootfs (OCI whiteouts ".wh.<name>" applied; opaque-directory markers are
 * dropped without hiding lower layers). Idempotent: a complete bundle (marker
 * DATA/bundles/<hex>/.complete) is reused without work. Atomic: unpacked into
 * DATA/bundles/.tmp-<hex>-<random>/ then renamed, so a crash leaves no half bundle under the final
 * name (stale .tmp-* dirs go on the next call); one unpack or prune at a time (flock on
 * DATA/bundles/.lock). Each layer is extracted by GNU tar inside the sandbox (no network, blob
 * read-only, only the work dir writable, time limit, memory and pids limits where cgroups allow)
 * so a hostile tarball cannot write outside the bundle. Layer media types: OCI tar+gzip and tar.
 * allow_unisolated is passed to the sandbox (tests only). reg and the strings are borrowed.
 * returns: 0 and *out filled (release it); otherwise *out is zeroed and err set: CORE_E_NOTFOUND
 * (unknown repo/ref, missing blob), CORE_E_UNSUPPORTED (an index or a non-OCI manifest, another
 * layer media type, no sandbox), CORE_E_INVAL (bad manifest, config or a layer tar refused),
 * CORE_E_IO, CORE_E_NOMEM.
 */
int runtime_bundle_unpack(struct registry *reg, const char *data_dir, const char *repo,
                          const char *ref, bool allow_unisolated, struct runtime_image *out,
                          struct core_err *err);
/* Frees what img holds and zeroes it; NULL or a zeroed img does nothing. */
void runtime_image_release(struct runtime_image *img);
/* Removes bundles under DATA/bundles whose digest ("sha256:<hex>") is not in keep[] (nkeep
 * entries), and stale .tmp-* dirs. *removed (may be NULL) receives the bundles removed.
 * returns: 0, CORE_E_INVAL, CORE_E_IO. */
int runtime_bundle_prune(const char *data_dir, const char *const *keep, size_t nkeep,
                         int *removed, struct core_err *err);

#endif
