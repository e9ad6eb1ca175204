/*
 * api: the platform's HTTP/1.1 server (libmicrohttpd). It serves the JSON API under /api/v1,
 * /healthz, /metrics (Prometheus text format) and hands every other path to the portal.
 *
 * Every /api/v1 route needs `Authorization: Bearer <token>` (or Basic with the token as the
 * password); the route table says which routes mutate, and authorization itself is decided by
 * the catalog and auth modules from the caller's principal. Errors are JSON
 * `{"error":{"code":…,"message":…,"details":[…]}}`; bodies are capped (max_body); lists are
 * paginated with limit/offset and return `total` and `next_offset`.
 *
 * It also hosts each service's git repository over smart HTTP under /git/<service>.git (git
 * http-backend as CGI behind the same token auth) and queues a pipeline run when a push moves a
 * watched branch. Large bodies (source uploads, git pushes) are spooled to a file instead of
 * memory; run logs stream while the run goes.
 *
 * Lifecycle: api_server_start() borrows everything in `struct api_deps` and starts the server;
 * api_server_stop() waits for in-flight requests and frees. Short requests run on an event-loop
 * thread per core; long ones (git, registry writes) are suspended and run on their own thread,
 * and followed logs park between ticks, so neither blocks other requests. Everything handlers
 * share is behind the store's locks or the metrics lock.
 */
#ifndef PAVE_API_H
#define PAVE_API_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct store;
struct catalog;
struct portal;
struct ci_runner;
struct secret_box;
struct registry;
struct artifact_signer;
struct deploy_controller;
struct tel_engine;
struct policy_engine;
struct pki;
struct acme;
struct security_alerts;
struct security_fim;
struct security_sigma_set;
struct api_server;

/* What the server serves; all borrowed and must outlive the server. runner and secrets may be
 * NULL (their routes then answer 503). */
struct api_deps {
    struct store *st;
    struct catalog *cat;
    struct portal *portal;
    struct ci_runner *runner;
    struct secret_box *secrets;
    struct registry *registry; /* /v2 answers 404 when NULL */
    struct artifact_signer *signer; /* image signing key; /api/v1/artifacts answer 503 when NULL */
    struct deploy_controller *deploy; /* deploy routes answer 503 when NULL */
    struct tel_engine *telemetry;     /* log ingest answers 503 when NULL; /metrics adds its counters */
    struct policy_engine *policy;     /* policy routes answer 503 when NULL */
    struct pki *pki;                  /* internal CA; /pki/ and /api/v1/ca answer 503 when NULL */
    struct acme *acme;                /* ACME server (RFC 8555) at /acme/; 404 when NULL */
    struct security_alerts *alerts;   /* security alerts (src/security); routes answer 503 and
                                       * token sources are not watched when NULL */
    struct security_fim *fim;         /* file integrity; its routes answer 503 when NULL */
    const struct security_sigma_set *rules; /* the loaded detection rules, for listing; may
                                             * be NULL */
    const char *data_dir; /* uploads are spooled to DATA/tmp, git repositories live in DATA/git */
};

struct api_config {
    const char *listen_addr; /* IPv4 literal; default 127.0.0.1 */
    int port;                /* 0 = pick a free port (see api_server_port) */
    size_t max_body;         /* request body cap in bytes; default 1 MiB */
    size_t max_upload;       /* cap for spooled uploads (sources, git pushes, blobs); default 4 GiB */
};

/* returns: owned by caller, stop with api_server_stop(); NULL and err on failure (e.g. the
 * port is taken). */
struct api_server *api_server_start(const struct api_config *cfg, const struct api_deps *deps,
                                    struct core_err *err);
int api_server_port(const struct api_server *srv);
void api_server_stop(struct api_server *srv);

/* HTTP status for an error code (400, 401, 403, 404, 409, 413, 503, 500). */
int api_status_for(int code);
/* Short machine-readable name for an error code ("invalid", "not_found" ...). */
const char *api_code_name(int code);

#endif
