/* deploy internals shared by the controller (controller.c) and the replica shim (shim.c). */
#ifndef PAVE_DEPLOY_INT_H
#define PAVE_DEPLOY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Files of a replica directory. */
#define SHIM_SPEC "spec.json"     /* written by the controller before launch */
#define SHIM_STATUS "status.json" /* rewritten by the shim on every change */
#define SHIM_LOCK "lock"          /* flock'ed by the shim for its whole life */
#define SHIM_PID "shim.pid"
#define SHIM_LOG "shim.log"       /* the shim's own messages */
#define SHIM_SECRETS_MAX (4u << 20)

/* Starts `self_exe shim DIR` as a detached process (own session, not our child) and hands it
 * the secrets (a JSON object name -> value, may be NULL) through a pipe, never through a file,
 * argv or the environment. Waits (bounded) until the shim holds DIR/lock.
 * returns: 0, or CORE_E_IO with the reason (see DIR/shim.log). */
int deploy_shim_launch(const char *self_exe, const char *dir, const char *secrets_json,
                       struct core_err *err);

/* True while a shim holds DIR/lock. */
bool deploy_shim_alive(const char *dir);

/* SIGTERM to the shim (it cancels its replica and exits), bounded wait, then SIGKILL.
 * returns: 0 when no shim holds DIR/lock any more. */
int deploy_shim_stop(const char *dir, int64_t timeout_ms);

/* ---- the controller (controller.c), shared with the request side (requests.c) ---- */

#include <pthread.h>
#include <jansson.h>

#include "deploy/deploy.h"

struct ingress;

/* Monitoring (monitoring.c): the pave server's own metrics address and a small cache of what
 * the catalog says about deployed services (team, availability objective), so the reconciler
 * does not read the catalog every tick. Fixed size, zeroed with the controller, nothing to free. */
#define DEPLOY_MON_CACHE 64
#define DEPLOY_MON_CACHE_MS 30000 /* re-read a service's team and SLO after this */

struct deploy_mon_service {
    char service[64];
    char team[64];
    double availability; /* spec.slo.availability in percent; 0: none */
    int64_t fetched_ms;  /* 0: free entry */
};

struct deploy_monitoring {
    char api_addr[80]; /* "127.0.0.1:7070"; empty: unknown (guarded by the controller's mu) */
    struct deploy_mon_service cache[DEPLOY_MON_CACHE]; /* reconciler thread only */
};

/* Service certificates (certs.c, docs/deploy.md "Certificates"): one per target, reconciler
 * thread only. */
#define DEPLOY_CERT_SUPERSEDED 8
#define DEPLOY_CERT_LIFETIME_MS (24 * 3600 * 1000LL)

struct deploy_cert {
    char backend[64];           /* "<service>-<env>": DATA/deploy/certs/<backend>.pem */
    char serial[64];            /* hex, as the CA's inventory has it */
    char sans[1200];            /* sorted, comma-separated SANs it was issued for */
    int64_t issued_ms, not_after_ms;
    char *chain_pem, *key_pem;  /* leaf + intermediate, and its key (wiped when dropped) */
    char superseded[DEPLOY_CERT_SUPERSEDED][64]; /* earlier serials replicas may still hold */
    bool seen;                  /* a target claimed it this tick */
    bool served;                /* handed to the ingress by this server */
    int64_t retry_ms;           /* after a failed issuance: not before this */
};

struct deploy_certs {
    char dir[4200];             /* DATA/deploy/certs (0700) */
    struct deploy_cert *v;
    size_t n;
    struct deploy_cert ingress; /* HAProxy's default certificate (no file here, no backend) */
};

struct deploy_controller {
    struct deploy_config cfg; /* strings point into the copies below */
    char *data_dir, *self_exe, *listen_addr, *haproxy_bin, *tls_addr;
    char root[4096];          /* DATA/deploy/replicas */
    char logs[4096];          /* DATA/deploy/logs: <replica>.log, kept after the replica */
    int port_base;
    struct ingress *ing;      /* reconciler thread only */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;       /* guards everything below */
    pthread_cond_t cv;
    bool stop, wake;
    json_t *snapshot;         /* "service/env" -> what the reconciler saw last */
    json_t *routes;           /* backend -> route text last given to the ingress */
    int64_t next_seq;
    struct deploy_monitoring mon;
    deploy_gate_fn gate;      /* guard rails (set before requests arrive) */
    void *gate_arg;
    struct deploy_certs certs; /* reconciler thread only (and deploy_start/stop) */
};

/* ---- service certificates (certs.c) ----
 *
 * With a CA (cfg.pki), every target that has a desired deployment with replicas gets a
 * certificate (profile server+client, owner "service:<service>/<env>") for its public host, its
 * internal names (<service>.<env>.pave.internal, <service>.pave.internal), localhost and
 * 127.0.0.1, lifetime cfg.cert_lifetime_ms. It is renewed once two thirds of that lifetime have
 * passed, served by HAProxy's TLS frontend (when there is one) for its DNS names, written to
 * DATA/deploy/certs/<backend>.pem (cert + chain + key, 0600) and handed to new replicas as
 * /run/secrets/tls/{tls.crt,tls.key,ca.crt}. A superseded certificate is revoked once no live
 * replica holds it; all of a target's are revoked when it has no desired deployment, scales to 0,
 * or its service is gone. */

/* Creates DATA/deploy/certs, loads the certificates an earlier run left there and, when the
 * ingress is to terminate TLS, makes sure it has a default certificate: *default_pem is a new one
 * (owned by caller, wipe and free) or NULL to keep DATA/ingress/tls-default.pem. Without a CA
 * it only creates the directory. returns: 0 or an error (the TLS frontend cannot start). */
int deploy_certs_start(struct deploy_controller *dc, bool tls, char **default_pem,
                       struct core_err *err);
/* Frees the cache (certificates stay valid: the next server finds them on disk). */
void deploy_certs_release(struct deploy_controller *dc);

/* Once per target per tick. wanted: a desired deployment with replicas > 0. host: the public host
 * ("" or NULL: none). in_use: serials live replicas of the target were given. Issues, renews,
 * serves or revokes as needed; errors are logged and retried next tick. */
void deploy_certs_target(struct deploy_controller *dc, const char *service, const char *env,
                         const char *backend, const char *host, bool wanted,
                         const char *const *in_use, size_t nin_use);

/* The target's current certificate, for a replica being launched; NULL without one. borrowed:
 * valid until the next deploy_certs_* call. */
const struct deploy_cert *deploy_certs_get(struct deploy_controller *dc, const char *backend);

/* After every target of a tick: revokes and drops certificates no target claimed (deleted
 * services), and renews the ingress's default certificate when due. */
void deploy_certs_sweep(struct deploy_controller *dc);

/* Wakes the reconciler now rather than at the next tick. */
void deploy_wake(struct deploy_controller *dc);

/* Ensures service+env has a target row (and so a service-discovery port). */
int deploy_target_ensure(struct deploy_controller *dc, const char *service, const char *env,
                         int *port, struct core_err *err);

#endif
