/*
 * ingress: the HAProxy half of the load-balancing layer.
 *
 * One `struct ingress` drives one haproxy process in master-worker mode (`haproxy -W -S
 * DATA/ingress/master.sock -f DATA/ingress/haproxy.cfg`). The module keeps the routing table
 * (service -> host + path prefixes, health path, internal port) in memory, persists it to
 * DATA/ingress/routes.json (mode 0600) on every change, and renders it into haproxy.cfg: one
 * frontend on the HTTP listen address, one extra frontend per service that asked for an
 * internal port (service discovery), one backend per service. Every backend is created with a
 * fixed number of pre-allocated, disabled server slots (s1..sN) and `option httpchk GET
 * <health_path>` health checks, so replicas come and go through the Runtime API on the admin
 * socket (DATA/ingress/admin.sock, mode 0600) without any reload: `set server` fills a slot's
 * address and makes it ready, drain stops new traffic, maint frees the slot. Only structural
 * changes (a new or removed backend, a changed host, path, health path or internal port)
 * rewrite haproxy.cfg, validate it with `haproxy -c` and do a hitless reload (SIGUSR2 to the
 * master); slot state survives the reload through HAProxy's server-state file.
 *
 * With `detach`, haproxy outlives the caller (own session, no parent-death signal); with
 * `adopt`, a later ingress_start() re-adopts the master named in DATA/ingress/master.pid, reloads
 * the routing table from routes.json and recovers slot usage from `show servers state`, so
 * workloads keep serving across a restart of the platform server. See docs/ingress.md.
 *
 * Threading: a `struct ingress` is used by one thread at a time. Nothing is global; two
 * instances with different data dirs and ports can run side by side.
 */
#ifndef PAVE_INGRESS_H
#define PAVE_INGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct core_err;
struct ingress;

struct ingress_config {
    const char *data_dir;    /* required; state goes to DATA/ingress */
    const char *listen_addr; /* NULL: "127.0.0.1" */
    int listen_port;         /* 0: 8080 */
    const char *haproxy_bin; /* NULL: "haproxy" from PATH */
    int max_servers;         /* server slots per backend; 0: 16 (max 1024) */
    bool detach;             /* haproxy survives the caller: setsid(), no PR_SET_PDEATHSIG */
    bool adopt;              /* re-adopt a live master from DATA/ingress/master.pid if it runs
                                our haproxy.cfg and its master socket answers */
    /* TLS termination: a frontend fe_https on tls_addr:tls_port routing like the HTTP one,
     * with the certificates of DATA/ingress/crt-list (picked by SNI) and a default one. */
    int tls_port;                /* 0: no TLS frontend */
    const char *tls_addr;        /* NULL: listen_addr */
    const char *tls_default_pem; /* cert + chain + key served when no SNI matches; written to
                                    DATA/ingress/tls-default.pem. NULL: keep that file (an
                                    earlier run's); required when there is none */
};

/* One service's routing, health check and internal address. All pointers borrowed. */
struct ingress_route {
    const char *host;          /* Host header without port; NULL or "" = any host */
    const char *const *paths;  /* path prefixes (path_beg); none = any path */
    size_t npaths;             /* at most 64 */
    const char *health_path;   /* NULL: "/healthz"; starts with '/', [A-Za-z0-9-._~/?=&%+:@,] */
    int internal_port;         /* 0: none; else a frontend on listen_addr:internal_port sends
                                  every request to this service (<NAME>_URL=http://ADDR:PORT) */
    const int *caller_ports;   /* one more frontend per declared caller (at most 256) */
    size_t ncaller_ports;
    bool strict;               /* internal_port answers 403: only caller ports reach it */
};

enum ingress_admin {
    INGRESS_ADMIN_READY = 1, /* takes traffic once health checks pass */
    INGRESS_ADMIN_DRAIN,     /* existing sessions finish, no new traffic */
    INGRESS_ADMIN_MAINT,     /* free slot or removed replica */
};

/* One slot as HAProxy reports it. All pointers are borrowed for the duration of the callback. */
struct ingress_slot_status {
    const char *slot;   /* "s1".."sN" */
    const char *addr;   /* "127.0.0.1:1" placeholder for free slots */
    int port;
    enum ingress_admin admin;
    bool is_up;         /* operational state RUNNING (health checks pass) */
    bool is_used;       /* taken by ingress_server_add() and not removed */
};

/* Return non-zero to stop the iteration (that value is returned by the caller). */
typedef int (*ingress_slot_fn)(void *arg, const struct ingress_slot_status *st);

/* Writes the config, starts haproxy and waits (bounded) until the admin socket answers. With
 * cfg->adopt, a live haproxy named by DATA/ingress/master.pid that runs our config and answers
 * on the master socket is adopted instead (routes reloaded from routes.json, slot usage from
 * `show servers state`); a stale or foreign master.pid means a fresh start. Without adopt, a
 * live haproxy of ours left by an earlier run is stopped first.
 * cfg: borrowed. returns: owned by caller, free with ingress_stop() or ingress_release();
 * NULL on failure. */
struct ingress *ingress_start(const struct ingress_config *cfg, struct core_err *err);

/* Stops haproxy (SIGTERM to the master, bounded wait, SIGKILL) and frees. NULL does nothing. */
void ingress_stop(struct ingress *ing);

/* Frees the handle but leaves haproxy running (and serving), to be adopted by a later
 * ingress_start() with cfg->adopt. Without cfg->detach, haproxy still dies with the thread that
 * started it. NULL does nothing. */
void ingress_release(struct ingress *ing);

/* True if ingress_start() adopted a running haproxy instead of starting one. */
bool ingress_adopted(const struct ingress *ing);

/* Declares (or changes) a service's backend and routing: requests whose Host (without port)
 * is route->host and whose path starts with one of route->paths go to the service; with
 * route->internal_port, every request to listen_addr:internal_port does too. Reloads haproxy
 * only when something structural changed (host, paths, health path, internal port, or a new
 * service); persists routes.json after every change.
 * service: a DNS label. All arguments borrowed.
 * returns: 0, CORE_E_INVAL (bad input; nothing written), CORE_E_CONFLICT (internal port taken
 * by another service or equal to the listen port), CORE_E_TOO_BIG (too many paths), ... */
int ingress_route_set(struct ingress *ing, const char *service, const struct ingress_route *route,
                      struct core_err *err);

/* Drops the service's backend, routes and internal frontend (reload), and persists routes.json.
 * Replicas still in its slots stop getting traffic at once.
 * returns: 0, CORE_E_NOTFOUND (unknown service), ... */
int ingress_route_remove(struct ingress *ing, const char *service, struct core_err *err);

/* Puts a replica at addr:port into a free slot of the service's backend and makes it ready;
 * health checks then gate traffic. No reload. The slot name goes to slot_out.
 * returns: 0, CORE_E_NOTFOUND (unknown service), CORE_E_TOO_BIG (no free slot) ... */
int ingress_server_add(struct ingress *ing, const char *service, const char *addr, int port,
                       char *slot_out, size_t slotsz, struct core_err *err);

/* Drains a slot: sessions in flight finish, no new traffic goes to it. No reload. */
int ingress_server_drain(struct ingress *ing, const char *service, const char *slot,
                         struct core_err *err);

/* Puts a slot into maintenance and frees it for reuse. No reload. */
int ingress_server_remove(struct ingress *ing, const char *service, const char *slot,
                          struct core_err *err);

/* Calls fn for every slot of the service's backend, as HAProxy reports it now. */
int ingress_backend_status(struct ingress *ing, const char *service, ingress_slot_fn fn,
                           void *arg, struct core_err *err);

/* Sends one Runtime API command to the admin socket. returns: 0 and *out owned by caller
 * (core_free), or a negative core_errc. */
int ingress_admin_cmd(struct ingress *ing, const char *cmd, char **out, struct core_err *err);

/* Pid of haproxy's master process (stable across reloads). */
pid_t ingress_master_pid(const struct ingress *ing);

/* ---- TLS termination (docs/ingress.md "TLS") ----
 *
 * Certificates live in files named by the caller (absolute paths, e.g.
 * DATA/deploy/certs/web-dev.pem, cert + chain + key, mode 0600) and in DATA/ingress/crt-list,
 * one line per file with its SNI names. Changes go through the Runtime API without a reload:
 * a renewal is `set ssl cert` + `commit ssl cert`, a new certificate `new ssl cert` + set +
 * commit + `add ssl crt-list`, a removal `del ssl crt-list` + `del ssl cert`. Files are written
 * first, so a reload or an adoption serves the same certificates; only when the Runtime API
 * refuses (or the SNI names of a file change) does the ingress fall back to a hitless reload. */

/* TLS port, 0 when there is no TLS frontend. */
int ingress_tls_port(const struct ingress *ing);

/* Writes pem (PEM blocks of the certificate, its chain and its private key; no empty line) to
 * `file` (atomic, 0600) and serves it for the SNI names sni[0..nsni) (1 to 64 hosts, [a-z0-9.-]).
 * All arguments borrowed. returns: 0, CORE_E_UNSUPPORTED (no TLS frontend), CORE_E_INVAL (bad
 * file, PEM or name; nothing written), or the reload's error. */
int ingress_tls_cert_set(struct ingress *ing, const char *file, const char *pem,
                         const char *const *sni, size_t nsni, struct core_err *err);

/* Stops serving `file` and deletes it. returns: 0, CORE_E_NOTFOUND (not in the crt-list). */
int ingress_tls_cert_remove(struct ingress *ing, const char *file, struct core_err *err);

/* Replaces the default certificate (DATA/ingress/tls-default.pem) without a reload. */
int ingress_tls_default_set(struct ingress *ing, const char *pem, struct core_err *err);

/* Path of the current haproxy.cfg. borrowed: lives as long as ing. */
const char *ingress_config_path(const struct ingress *ing);

#endif
