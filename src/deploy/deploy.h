/*
 * deploy: the deploy controller. It turns "run image X of service S in environment E with N
 * replicas" into replicas on this machine behind the platform's HAProxy, and keeps it so.
 *
 * Desired state lives in the store: every deploy, rollback and scale is a row of `deployments`
 * (who, when, what, result) and `deploy_targets` holds, per service and environment, the
 * deployment wanted now, the last one that succeeded ("stable") and the replica count. A request
 * only writes that state (and the audit log) and wakes the controller; one reconciler thread
 * then moves the world towards it, every tick, from whatever it finds:
 *
 *  - Each replica is a directory DATA/deploy/replicas/<service>.<env>.<seq>/ holding its spec and
 *    a *shim*: a small detached process (`pave shim DIR`, shim.c) that runs the replica in the
 *    sandbox through the runtime supervisor (restart with backoff, crash-loop detection) and
 *    writes its status to DIR/status.json. The shim holds a lock on DIR/lock for its whole life,
 *    so "is this replica alive" is a non-blocking flock away, whoever asks. Shims are not
 *    children of the server: when the server dies, replicas keep serving.
 *  - HAProxy (src/ingress/, started detached and re-adopted) has one backend per target; a
 *    replica is added to a free slot after it starts, gets traffic only once HAProxy's health
 *    check passes, and is drained before its shim is stopped.
 *  - A rolling update launches new replicas within maxSurge, retires old ones while keeping
 *    replicas - maxUnavailable ready, and succeeds when every wanted replica of the new revision
 *    is ready and no old one is left. A new replica that is not ready within the deployment's
 *    health deadline (or crash-loops) fails the rollout: the target goes back to its stable
 *    deployment, whose replicas never stopped serving.
 *
 * Because the reconciler derives everything from the store, the replica directories and what
 * HAProxy reports, a restarted server re-adopts running replicas and finishes (or rolls back)
 * a rollout in progress without starting duplicates or leaving orphans. docs/deploy.md.
 *
 * Threading: deploy_* request functions may be called from any thread (API handlers); only the
 * reconciler thread touches the ingress and the shims. Ownership: JSON returned is the caller's.
 */
#ifndef PAVE_DEPLOY_H
#define PAVE_DEPLOY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

struct store;
struct catalog;
struct catalog_actor;
struct registry;
struct secret_box;
struct pki;
struct deploy_controller;

#define DEPLOY_HEALTH_DEADLINE_MS 60000 /* default: new replica must be ready within this */
#define DEPLOY_DRAIN_MS 10000           /* longest wait for a draining replica's sessions */
#define DEPLOY_PORT_BASE 18000          /* first service-discovery port */

struct deploy_config {
    const char *data_dir;    /* absolute; replicas in DATA/deploy, bundles in DATA/bundles */
    const char *self_exe;    /* the pave binary that runs `pave shim` (absolute) */
    struct store *st;        /* borrowed, as the four below */
    struct catalog *cat;
    struct registry *reg;
    struct secret_box *secrets; /* may be NULL: services with secrets then fail to deploy */
    const char *listen_addr; /* ingress address; NULL: 127.0.0.1 */
    int ingress_port;        /* HTTP port of the load balancer; 0: 8080 */
    int port_base;           /* first service-discovery port; 0: DEPLOY_PORT_BASE */
    const char *haproxy_bin; /* NULL: haproxy from PATH */
    bool allow_unisolated;   /* bundles may be unpacked without namespaces (tests only) */
    int64_t tick_ms;         /* reconcile period; 0: 500 */
    int64_t drain_ms;        /* 0: DEPLOY_DRAIN_MS */
    /* Service certificates (docs/deploy.md "Certificates"): issued per service and environment
     * by this CA (borrowed; NULL: none, and no TLS frontend), renewed at two thirds of
     * cert_lifetime_ms (0: 24 h), handed to replicas under /run/secrets/tls/. */
    struct pki *pki;
    int64_t cert_lifetime_ms;
    const char *tls_addr;    /* TLS frontend of the load balancer; NULL: listen_addr */
    int tls_port;            /* 0: no TLS frontend (needs pki) */
};

/* Starts HAProxy (or adopts the one a previous server left running) and the reconciler.
 * returns: owned by caller (deploy_stop); NULL with err (haproxy missing, port taken ...). */
struct deploy_controller *deploy_start(const struct deploy_config *cfg, struct core_err *err);

/* Stops the reconciler. Replicas and HAProxy keep running for the next server to adopt. */
void deploy_stop(struct deploy_controller *dc);

/* Stops every replica and HAProxy, then deploy_stop(). For tests and `pave server
 * --stop-workloads`. */
void deploy_stop_all(struct deploy_controller *dc);

struct deploy_request {
    const char *service;
    const char *env;
    const char *image;        /* tag, "@sha256:..." or "repo:tag"; NULL: newest image */
    int replicas;             /* < 0: the manifest's spec.replicas */
    int64_t health_deadline_ms; /* 0: DEPLOY_HEALTH_DEADLINE_MS */
};

/* Records a deployment (state "pending") as the target's desired state and wakes the
 * reconciler. The image must exist in the registry and the manifest must be runnable
 * (spec.run.command or an image command). returns: 0 and *id, or CORE_E_NOTFOUND (service,
 * env, image), CORE_E_INVAL (not runnable, bad replicas), CORE_E_PERM (actor not in team). */
int deploy_create(struct deploy_controller *dc, const struct catalog_actor *actor,
                  const struct deploy_request *req, int64_t *id, struct core_err *err);

/* Deploys again what deployment `to` ran (0: the last succeeded deployment before the current
 * one). Recorded as kind "rollback". */
int deploy_rollback(struct deploy_controller *dc, const struct catalog_actor *actor,
                    const char *service, const char *env, int64_t to, int64_t *id,
                    struct core_err *err);

/* Changes the replica count of the running revision (no replacement). Recorded as kind "scale". */
int deploy_scale(struct deploy_controller *dc, const struct catalog_actor *actor,
                 const char *service, const char *env, int replicas, int64_t *id,
                 struct core_err *err);

/* Deployments, newest first; service/env NULL for all. returns: {"items":[...],"total":N}. */
json_t *deploy_list(struct store *st, const char *service, const char *env, int64_t limit,
                    int64_t offset, struct core_err *err);
/* One deployment or NULL with CORE_E_NOTFOUND. */
json_t *deploy_get(struct store *st, int64_t id, struct core_err *err);

/* What runs for service in env (env NULL: every env): desired and stable deployments, replicas
 * with state, health, restarts and isolation, the URLs. NULL with CORE_E_NOTFOUND when the
 * service was never deployed there. */
json_t *deploy_status(struct deploy_controller *dc, const char *service, const char *env,
                      struct core_err *err);

/* Guard rails asked before a deployment is recorded (the policy module; docs/policy.md): the
 * service's manifest for env, and the image (repository and manifest digest) it would run.
 * returns: 0 to allow, an error (CORE_E_PERM with the reasons) to refuse. */
typedef int (*deploy_gate_fn)(void *arg, const struct catalog_actor *actor, const char *service,
                              const char *env, const char *team, int tier,
                              const char *manifest_json, const char *repo, const char *digest,
                              struct core_err *err);
void deploy_set_gate(struct deploy_controller *dc, deploy_gate_fn fn, void *arg);

/* Ingress HTTP port (for URLs shown to users). */
int deploy_ingress_port(const struct deploy_controller *dc);
/* HTTPS port of the load balancer, 0 when it serves no TLS. */
int deploy_tls_port(const struct deploy_controller *dc);

/* One live replica as the reconciler saw it last (for the security module's workload watch).
 * Strings are borrowed for the callback's duration. */
struct deploy_replica_info {
    const char *service, *env;
    const char *name;  /* the replica, "<service>.<env>.<seq>" */
    long shim_pid;     /* the replica's shim: every process of the replica descends from it */
    int port;          /* the port assigned to it (its PORT) */
};
typedef int (*deploy_replica_fn)(void *arg, const struct deploy_replica_info *r);
/* Calls fn for every replica whose shim is running (state starting or running) in the last
 * reconcile's snapshot. A non-zero return stops the iteration and is returned. Any thread; fn
 * runs without the controller's lock held. */
int deploy_replica_foreach(struct deploy_controller *dc, deploy_replica_fn fn, void *arg);

/* ---- monitoring (monitoring.c, docs/monitoring.md) ---- */

/* Called by the reconciler with the snapshot it just built ("service/env" -> target with its
 * replicas; borrowed, not kept): writes DATA/monitoring/targets.json (Prometheus file_sd: one
 * entry per ready or starting replica with service, team, env, instance_name and revision
 * labels, plus the pave server itself with job "pave" once its address is known),
 * DATA/monitoring/rules.yml (alerting rules per deployed service and environment) and
 * DATA/monitoring/prometheus.yml (a config using both). Each file is replaced atomically and
 * only when its content changed. Failures are logged, never fatal. Reconciler thread only. */
void deploy_monitoring_write(struct deploy_controller *dc, json_t *snapshot);

/* Tells the controller where the pave server's /metrics is ("127.0.0.1:7070"; copied; NULL or
 * empty: unknown), for the "pave" scrape target. Any thread. */
void deploy_set_api_addr(struct deploy_controller *dc, const char *addr);

/* Appends, in Prometheus text format, the replicas of the last reconcile: the gauges
 * pave_replica_ready, pave_replica_crash_looping and pave_deploy_replicas_wanted and the counter
 * pave_replica_restarts_total, labelled service, env (and replica, revision). Any thread.
 * returns: 0, or CORE_E_TOO_BIG / CORE_E_NOMEM from the buffer (out may then hold part). */
int deploy_metrics(struct deploy_controller *dc, struct core_buf *out);

/* `pave shim DIR`: the replica process (internal; see shim.c). returns: exit code. */
int deploy_shim_main(int argc, char **argv);

#endif
