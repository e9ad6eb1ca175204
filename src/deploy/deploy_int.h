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

struct deploy_controller {
    struct deploy_config cfg; /* strings point into the copies below */
    char *data_dir, *self_exe, *listen_addr, *haproxy_bin;
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
};

/* Wakes the reconciler now rather than at the next tick. */
void deploy_wake(struct deploy_controller *dc);

/* Ensures service+env has a target row (and so a service-discovery port). */
int deploy_target_ensure(struct deploy_controller *dc, const char *service, const char *env,
                         int *port, struct core_err *err);

#endif
