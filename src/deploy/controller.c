/* The reconciler: one thread that, every tick (or when woken by a request), compares the desired
 * state in the store with the replica directories, the shims' status and HAProxy's view, and
 * takes the next safe step of a rolling update (launch, add to the load balancer, retire, drain,
 * stop) or rolls a failing rollout back. It keeps no state that matters across restarts: what
 * it needs is on disk, in the store or in HAProxy, so a new server picks up where a dead one
 * stopped. See deploy.h for the model and docs/deploy.md for the user's view. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "deploy/deploy.h"
#include "deploy/deploy_int.h"
#include "ingress/ingress.h"
#include "pki/pki.h"
#include "runtime/runtime.h"
#include "sandbox/sandbox.h"
#include "secret/secret.h"
#include "store/store.h"

#define MAX_REPLICAS 512

struct replica {
    char name[200]; /* directory name: <service>.<env>.<seq> */
    char dir[4400];
    char service[64], env[64];
    int64_t seq, deployment, created_ms, retiring_ms;
    char rev[65];
    char tls_serial[64]; /* the service certificate it was given ("" none) */
    char log[4400]; /* stdout and stderr of the replica, kept after it stops */
    int port;
    char slot[16];
    bool alive, ready, was_ready, gone;
    json_t *status; /* status.json, may be NULL */
};

struct target {
    char service[64], env[64], backend[64];
    int port, replicas;
    int64_t desired_id, stable_id;
};

struct dep {
    bool found;
    int64_t id, created_ms, deadline;
    int replicas, surge, unav;
    char rev[65], digest[72], state[32], image[300];
    json_t *spec;
};

/* ---- small file helpers ------------------------------------------------------------------- */

static void rpath(const struct replica *r, const char *file, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s", r->dir, file);
}

static void put_small(const struct replica *r, const char *file, const char *text)
{
    char p[4600];
    struct core_err err = {0};
    rpath(r, file, p, sizeof(p));
    if (core_file_write_atomic(p, text, strlen(text), 0600, &err))
        log_warn("deploy", "cannot write replica file", LOG_STR("path", p),
                 LOG_STR("error", err.msg));
}

static bool get_small(const struct replica *r, const char *file, char *out, size_t outsz)
{
    char p[4600], *text = NULL;
    size_t len = 0;
    struct core_err err = {0};
    rpath(r, file, p, sizeof(p));
    out[0] = 0;
    if (core_file_read(p, 4096, &text, &len, &err))
        return false;
    snprintf(out, outsz, "%s", text);
    core_free(text);
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = 0;
    return true;
}

static void backend_name(const char *service, const char *env, char out[64])
{
    char full[200];
    snprintf(full, sizeof(full), "%s-%s", service, env);
    size_t n = strlen(full);
    if (n <= 63) {
        memcpy(out, full, n + 1);
        return;
    }
    char hex[65];
    core_sha256_hex(full, strlen(full), hex);
    snprintf(out, 64, "%.50s-%.8s", full, hex);
    while (strlen(out) > 9 && out[strlen(out) - 10] == '-') /* no "--" */
        out[strlen(out) - 10] = 'x';
}

/* ---- store reads -------------------------------------------------------------------------- */

struct targets {
    struct target *v;
    size_t n, cap;
};

static int target_row(void *arg, const struct store_row *row)
{
    struct targets *ts = arg;
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 16;
        struct target *v = core_realloc(ts->v, cap * sizeof(*v));
        if (!v)
            return -1;
        ts->v = v;
        ts->cap = cap;
    }
    struct target *t = &ts->v[ts->n++];
    memset(t, 0, sizeof(*t));
    snprintf(t->service, sizeof(t->service), "%s", store_row_text(row, "service"));
    snprintf(t->env, sizeof(t->env), "%s", store_row_text(row, "env"));
    backend_name(t->service, t->env, t->backend);
    t->port = (int)store_row_int(row, "port");
    t->replicas = (int)store_row_int(row, "replicas");
    t->desired_id = store_row_int(row, "desired_id");
    t->stable_id = store_row_int(row, "stable_id");
    return 0;
}

static int dep_row(void *arg, const struct store_row *row)
{
    struct dep *d = arg;
    json_error_t jerr;
    d->found = true;
    d->id = store_row_int(row, "id");
    d->created_ms = store_row_int(row, "created_ms");
    d->deadline = store_row_int(row, "health_deadline_ms");
    d->replicas = (int)store_row_int(row, "replicas");
    d->surge = (int)store_row_int(row, "max_surge");
    d->unav = (int)store_row_int(row, "max_unavailable");
    snprintf(d->rev, sizeof(d->rev), "%s", store_row_text(row, "rev") ?: "");
    snprintf(d->digest, sizeof(d->digest), "%s", store_row_text(row, "digest") ?: "");
    snprintf(d->state, sizeof(d->state), "%s", store_row_text(row, "state") ?: "");
    snprintf(d->image, sizeof(d->image), "%s", store_row_text(row, "image") ?: "");
    const char *spec = store_row_text(row, "spec");
    d->spec = spec ? json_loads(spec, 0, &jerr) : NULL;
    return 1;
}

static int load_dep(struct deploy_controller *dc, int64_t id, struct dep *d)
{
    struct core_err err = {0};
    memset(d, 0, sizeof(*d));
    if (!id)
        return 0;
    struct store_value v[] = {STORE_V_INT(id)};
    int rc = store_query(dc->cfg.st, "SELECT * FROM deployments WHERE id=?", v, 1, dep_row, d,
                         &err);
    return rc < 0 ? rc : 0;
}

static void dep_release(struct dep *d)
{
    json_decref(d->spec);
    d->spec = NULL;
}

static void set_state(struct deploy_controller *dc, int64_t id, const char *state,
                      const char *message, bool finished)
{
    struct core_err err = {0};
    char ts[40];
    core_time_format(core_now_ms(), ts, sizeof(ts));
    struct store_value v[] = {STORE_V_TEXT(state), STORE_V_TEXT(message),
                              finished ? STORE_V_TEXT(ts) : STORE_V_NULL, STORE_V_INT(id)};
    if (store_exec(dc->cfg.st,
                   "UPDATE deployments SET state=?, message=COALESCE(?, message), "
                   "finished_at=COALESCE(?, finished_at) WHERE id=?",
                   v, 4, NULL, &err))
        log_warn("deploy", "cannot record deployment state", LOG_INT("deployment", id),
                 LOG_STR("error", err.msg));
}

static void audit_system(struct deploy_controller *dc, const char *action, const char *service,
                         const char *detail)
{
    struct core_err err = {0};
    char after[65];
    core_sha256_hex(detail, strlen(detail), after);
    struct store_audit_event ev = {.actor = "system", .action = action, .kind = "service",
                                   .object = service, .after = after, .detail = detail};
    if (store_audit_append(dc->cfg.st, &ev, &err))
        log_warn("deploy", "cannot write audit event", LOG_STR("error", err.msg));
}

/* The rollout of d failed: the target goes back to its stable deployment (or to nothing). */
static void fail_rollout(struct deploy_controller *dc, const struct target *t,
                         const struct dep *d, const char *why)
{
    struct core_err err = {0};
    char msg[600];
    bool back = t->stable_id && t->stable_id != d->id;
    if (back)
        snprintf(msg, sizeof(msg), "%s; rolled back to deployment #%lld", why,
                 (long long)t->stable_id);
    else
        snprintf(msg, sizeof(msg), "%s; no earlier deployment to roll back to", why);
    if (store_txn_begin(dc->cfg.st, &err) == 0) {
        set_state(dc, d->id, back ? "rolled-back" : "failed", msg, true);
        struct store_value v[] = {back ? STORE_V_INT(t->stable_id) : STORE_V_NULL,
                                  STORE_V_TEXT(t->service), STORE_V_TEXT(t->env)};
        if (store_exec(dc->cfg.st, "UPDATE deploy_targets SET desired_id=? WHERE service=? AND "
                                   "env=?",
                       v, 3, NULL, &err) == 0) {
            char detail[1000];
            snprintf(detail, sizeof(detail), "deployment #%lld of %s to %s: %s",
                     (long long)d->id, t->service, t->env, msg);
            audit_system(dc, back ? "deploy.rolled-back" : "deploy.failed", t->service, detail);
        }
        if (store_txn_commit(dc->cfg.st, &err))
            store_txn_rollback(dc->cfg.st);
    }
    log_warn("deploy", "rollout failed", LOG_STR("service", t->service), LOG_STR("env", t->env),
             LOG_INT("deployment", d->id), LOG_STR("reason", msg));
}

/* ---- replicas on disk ----------------------------------------------------------------------- */

struct replicas {
    struct replica *v;
    size_t n;
};

static void replicas_release(struct replicas *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        json_decref(rs->v[i].status);
    core_free(rs->v);
    rs->v = NULL;
    rs->n = 0;
}

static void scan_replicas(struct deploy_controller *dc, struct replicas *rs)
{
    rs->v = core_calloc(MAX_REPLICAS, sizeof(*rs->v));
    rs->n = 0;
    if (!rs->v)
        return;
    DIR *d = opendir(dc->root);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && rs->n < MAX_REPLICAS) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(rs->v[0].name))
            continue;
        struct replica *r = &rs->v[rs->n];
        memset(r, 0, sizeof(*r));
        memcpy(r->name, e->d_name, strlen(e->d_name) + 1); /* length checked above */
        snprintf(r->dir, sizeof(r->dir), "%s/%s", dc->root, e->d_name);
        char p[4600], *text = NULL;
        size_t len = 0;
        struct core_err err = {0};
        rpath(r, SHIM_SPEC, p, sizeof(p));
        json_t *spec = NULL;
        json_error_t jerr;
        if (core_file_read(p, 1u << 20, &text, &len, &err) == 0)
            spec = json_loadb(text, len, 0, &jerr);
        core_free(text);
        if (!json_is_object(spec)) {
            /* a directory the launcher had not finished: nothing runs from it */
            json_decref(spec);
            if (!deploy_shim_alive(r->dir)) {
                struct core_err e2 = {0};
                sandbox_workspace_remove(r->dir, &e2);
            }
            continue;
        }
        snprintf(r->service, sizeof(r->service), "%s",
                 json_string_value(json_object_get(spec, "service")) ?: "");
        snprintf(r->env, sizeof(r->env), "%s",
                 json_string_value(json_object_get(spec, "env")) ?: "");
        snprintf(r->rev, sizeof(r->rev), "%s",
                 json_string_value(json_object_get(spec, "rev")) ?: "");
        r->seq = json_integer_value(json_object_get(spec, "seq"));
        r->deployment = json_integer_value(json_object_get(spec, "deployment"));
        r->created_ms = json_integer_value(json_object_get(spec, "created_ms"));
        r->port = (int)json_integer_value(json_object_get(spec, "port"));
        snprintf(r->log, sizeof(r->log), "%s",
                 json_string_value(json_object_get(spec, "log")) ?: "");
        snprintf(r->tls_serial, sizeof(r->tls_serial), "%s",
                 json_string_value(json_object_get(spec, "tls_serial")) ?: "");
        json_decref(spec);
        char buf[64];
        get_small(r, "slot", r->slot, sizeof(r->slot));
        if (get_small(r, "retiring", buf, sizeof(buf)))
            r->retiring_ms = strtoll(buf, NULL, 10);
        r->was_ready = get_small(r, "ready", buf, sizeof(buf));
        r->alive = deploy_shim_alive(r->dir);
        rpath(r, SHIM_STATUS, p, sizeof(p));
        text = NULL;
        if (core_file_read(p, 65536, &text, &len, &err) == 0)
            r->status = json_loadb(text, len, 0, &jerr);
        core_free(text);
        if (r->seq >= dc->next_seq)
            dc->next_seq = r->seq + 1;
        rs->n++;
    }
    closedir(d);
}

static void remove_dir(struct replica *r)
{
    struct core_err err = {0};
    if (sandbox_workspace_remove(r->dir, &err))
        log_warn("deploy", "cannot remove replica directory", LOG_STR("dir", r->dir),
                 LOG_STR("error", err.msg));
    r->gone = true;
}

/* ---- the load balancer ---------------------------------------------------------------------- */

/* What HAProxy reports for the slots of one backend, read once per tick. */
#define MAX_SLOTS 64
struct slot_info {
    char slot[16];
    int port;
    bool used, up;
};

struct slots {
    struct slot_info v[MAX_SLOTS];
    size_t n;
};

static int slot_collect(void *arg, const struct ingress_slot_status *st)
{
    struct slots *ss = arg;
    if (ss->n < MAX_SLOTS) {
        struct slot_info *i = &ss->v[ss->n++];
        snprintf(i->slot, sizeof(i->slot), "%s", st->slot);
        i->port = st->port;
        i->used = st->is_used && st->admin != INGRESS_ADMIN_MAINT;
        i->up = st->is_up;
    }
    return 0;
}

static const struct slot_info *slot_lookup(const struct slots *ss, const char *slot)
{
    for (size_t i = 0; i < ss->n; i++)
        if (strcmp(ss->v[i].slot, slot) == 0)
            return &ss->v[i];
    return NULL;
}

/* Sessions currently on a slot ("scur" of `show stat`), or -1 if unknown. */
static int slot_sessions(struct deploy_controller *dc, const char *backend, const char *slot)
{
    char *out = NULL;
    struct core_err err = {0};
    if (ingress_admin_cmd(dc->ing, "show stat", &out, &err))
        return -1;
    char be[80];
    snprintf(be, sizeof(be), "be_%s", backend);
    int sessions = -1;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[6] = {0};
        size_t n = 0;
        char *s2 = NULL;
        for (char *tok = strtok_r(line, ",", &s2); tok && n < 6; tok = strtok_r(NULL, ",", &s2))
            f[n++] = tok;
        /* pxname,svname,qcur,qmax,scur,... */
        if (n >= 5 && strcmp(f[0], be) == 0 && strcmp(f[1], slot) == 0) {
            sessions = atoi(f[4]);
            break;
        }
    }
    core_free(out);
    return sessions;
}

static int link_row(void *arg, const struct store_row *row)
{
    json_array_append_new(arg, json_integer(store_row_int(row, "port")));
    return 0;
}

static void ensure_route(struct deploy_controller *dc, const struct target *t, json_t *spec)
{
    struct core_err err = {0};
    json_t *links = json_array();
    struct store_value k[] = {STORE_V_TEXT(t->service), STORE_V_TEXT(t->env)};
    if (store_query(dc->cfg.st, "SELECT port FROM deploy_links WHERE service=? AND env=? ORDER "
                                "BY port LIMIT 256",
                    k, 2, link_row, links, &err) < 0) {
        json_decref(links);
        return;
    }
    json_t *want = json_pack("{s:O?,s:O?,s:O?,s:i,s:O,s:b}", "host", json_object_get(spec, "host"),
                             "paths", json_object_get(spec, "paths"), "health",
                             json_object_get(spec, "health_path"), "port", t->port, "callers",
                             links, "strict", json_is_true(json_object_get(spec, "strict")));
    char *text = want ? json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    json_decref(want);
    if (!text) {
        json_decref(links);
        return;
    }
    const char *have = json_string_value(json_object_get(dc->routes, t->backend));
    if (have && strcmp(have, text) == 0) {
        free(text);
        json_decref(links);
        return;
    }
    int callers[256];
    size_t ncallers = 0;
    for (size_t i = 0; i < json_array_size(links) && ncallers < 256; i++)
        callers[ncallers++] = (int)json_integer_value(json_array_get(links, i));
    json_decref(links);
    const char *paths[64];
    size_t npaths = 0;
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(spec, "paths"), i, v)
        if (npaths < 64 && json_string_value(v))
            paths[npaths++] = json_string_value(v);
    const char *host = json_string_value(json_object_get(spec, "host"));
    struct ingress_route route = {
        .host = host && *host ? host : NULL,
        .paths = paths,
        .npaths = npaths,
        .health_path = json_string_value(json_object_get(spec, "health_path")),
        .internal_port = t->port,
        .caller_ports = callers,
        .ncaller_ports = ncallers,
        .strict = json_is_true(json_object_get(spec, "strict")),
    };
    /* without a host the service is reachable only at its discovery port */
    if (!route.host && !npaths) {
        static const char *const none[] = {"/.pave-internal-only"};
        route.paths = none;
        route.npaths = 1;
        route.host = "internal.pave";
    }
    if (ingress_route_set(dc->ing, t->backend, &route, &err)) {
        log_warn("deploy", "cannot route service", LOG_STR("backend", t->backend),
                 LOG_STR("error", err.msg));
    } else {
        json_object_set_new(dc->routes, t->backend, json_string(text));
    }
    free(text);
}

/* ---- launching and retiring ------------------------------------------------------------------ */

static int kernel_port(void);

/* A free loopback port that no replica of ours was given (the kernel may hand out a port
 * again once it is closed, and a replica binds it only later). */
static int free_port(const struct replicas *all)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        int port = kernel_port();
        bool taken = false;
        for (size_t i = 0; all && i < all->n && !taken; i++)
            taken = all->v[i].port == port;
        if (port && !taken)
            return port;
    }
    return 0;
}

static int kernel_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static json_t *gather_secrets(struct deploy_controller *dc, const char *service, json_t *names,
                              struct core_err *err)
{
    json_t *out = json_object();
    size_t i;
    json_t *v;
    json_array_foreach (names, i, v) {
        const char *name = json_string_value(v);
        char *val = NULL;
        size_t len = 0;
        if (!dc->cfg.secrets) {
            core_err_set(err, CORE_E_UNSUPPORTED, "secrets are not available on this server");
            goto fail;
        }
        if (secret_get(dc->cfg.st, dc->cfg.secrets, service, name, &val, &len, err)) {
            core_err_wrap(err, "secret '%s' (set it with 'pave secret set %s %s')", name,
                          service, name);
            goto fail;
        }
        json_object_set_new(out, name, json_stringn(val, len));
        secret_value_free(val, len);
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* Creates the replica directory and starts its shim. */
static int launch(struct deploy_controller *dc, const struct target *t, const struct dep *d,
                  const struct replicas *all, struct core_err *err)
{
    struct runtime_image img = {0};
    json_t *spec = NULL, *secrets = NULL;
    char *text = NULL, *stext = NULL;
    struct replica r = {0};
    int rc = runtime_bundle_unpack(dc->cfg.reg, dc->data_dir, t->service, d->digest,
                                   dc->cfg.allow_unisolated, &img, err);
    if (rc)
        return rc;
    json_t *argv = json_deep_copy(json_object_get(d->spec, "argv"));
    if (!json_array_size(argv)) {
        json_decref(argv);
        argv = json_array();
        for (size_t i = 0; img.cmd && img.cmd[i]; i++)
            json_array_append_new(argv, json_string(img.cmd[i]));
    }
    if (!json_array_size(argv)) {
        json_decref(argv);
        rc = core_err_set(err, CORE_E_INVAL, "nothing to run: the manifest has no "
                                             "spec.run.command and the image no command");
        goto out;
    }
    json_t *envv = json_array();
    for (size_t i = 0; img.env && img.env[i]; i++)
        if (strncmp(img.env[i], "PORT=", 5) != 0)
            json_array_append_new(envv, json_string(img.env[i]));
    json_array_extend(envv, json_object_get(d->spec, "env"));
    /* the target's certificate, for mutual TLS: files like secrets, paths in the environment */
    const struct deploy_cert *tc = deploy_certs_get(dc, t->backend);
    size_t si;
    json_t *sv;
    json_array_foreach (json_object_get(d->spec, "secrets"), si, sv)
        if (tc && !strcmp(json_string_value(sv) ?: "", "tls")) {
            /* /run/secrets/tls is that secret's file: no room for the directory */
            log_warn("deploy", "a secret named 'tls' hides the service certificate",
                     LOG_STR("service", t->service));
            tc = NULL;
        }
    if (tc) {
        json_array_append_new(envv, json_string("PAVE_TLS_CERT=/run/secrets/tls/tls.crt"));
        json_array_append_new(envv, json_string("PAVE_TLS_KEY=/run/secrets/tls/tls.key"));
        json_array_append_new(envv, json_string("PAVE_TLS_CA=/run/secrets/tls/ca.crt"));
    } else if (dc->cfg.pki) {
        log_warn("deploy", "launching a replica without a service certificate",
                 LOG_STR("backend", t->backend));
    }
    int64_t seq = dc->next_seq++;
    int port = free_port(all);
    snprintf(r.name, sizeof(r.name), "%s.%s.%lld", t->service, t->env, (long long)seq);
    snprintf(r.dir, sizeof(r.dir), "%s/%s", dc->root, r.name);
    char inst[240];
    snprintf(inst, sizeof(inst), "PAVE_INSTANCE=%s", r.name);
    json_array_append_new(envv, json_string(inst));
    char cg[200];
    snprintf(cg, sizeof(cg), "%s-%s-%lld", t->service, t->env, (long long)seq);
    char logp[4400];
    snprintf(logp, sizeof(logp), "%s/%s.log", dc->logs, r.name);
    spec = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:o,s:o,s:s,s:s,s:O,s:O,s:O,s:i,s:I,s:s,s:b}",
                     "name", cg, "service", t->service, "env", t->env, "deployment",
                     (json_int_t)d->id, "rev", d->rev, "digest", d->digest, "seq",
                     (json_int_t)seq, "argv", argv, "environ", envv, "bundle", img.dir, "workdir",
                     "/app", "cpu_millicores", json_object_get(d->spec, "cpu_millicores"),
                     "memory_bytes", json_object_get(d->spec, "memory_bytes"), "pids",
                     json_object_get(d->spec, "pids"), "port", port, "created_ms",
                     (json_int_t)core_now_ms(), "log", logp, "allow_unisolated",
                     dc->cfg.allow_unisolated);
    if (!spec || !port) {
        rc = core_err_set(err, CORE_E_NOMEM, "cannot prepare the replica spec");
        goto out;
    }
    if (!(secrets = gather_secrets(dc, t->service, json_object_get(d->spec, "secrets"), err))) {
        rc = err->code ? err->code : CORE_E_INTERNAL;
        goto out;
    }
    if (tc) {
        /* through the shim's pipe with the secrets (keys with a '/' are no secret names), never
         * in spec.json; the serial is not secret and tells which certificate a replica holds */
        json_object_set_new(secrets, "tls/tls.crt", json_string(tc->chain_pem));
        json_object_set_new(secrets, "tls/tls.key", json_string(tc->key_pem));
        json_object_set_new(secrets, "tls/ca.crt", json_string(pki_chain_pem(dc->cfg.pki)));
        json_object_set_new(spec, "tls_serial", json_string(tc->serial));
    }
    text = json_dumps(spec, JSON_INDENT(2) | JSON_SORT_KEYS);
    stext = json_dumps(secrets, JSON_COMPACT);
    if (!text || !stext) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = core_mkdir_p(r.dir, 0700, err)))
        goto out;
    char p[4600];
    rpath(&r, SHIM_SPEC, p, sizeof(p));
    if ((rc = core_file_write_atomic(p, text, strlen(text), 0600, err)))
        goto out;
    rc = deploy_shim_launch(dc->self_exe, r.dir, stext, err);
    if (rc) {
        deploy_shim_stop(r.dir, 2000);
        remove_dir(&r);
        goto out;
    }
    log_info("deploy", "replica launched", LOG_STR("replica", r.name),
             LOG_INT("deployment", d->id), LOG_INT("port", port));
out:
    if (stext) {
        volatile char *w = stext;
        while (*w)
            *w++ = 0;
        free(stext);
    }
    free(text);
    json_decref(secrets);
    json_decref(spec);
    runtime_image_release(&img);
    return rc;
}

static void retire(struct deploy_controller *dc, const struct target *t, struct replica *r)
{
    struct core_err err = {0};
    if (r->slot[0] && ingress_server_drain(dc->ing, t->backend, r->slot, &err))
        log_warn("deploy", "cannot drain replica", LOG_STR("replica", r->name),
                 LOG_STR("error", err.msg));
    char buf[32];
    r->retiring_ms = core_now_ms();
    snprintf(buf, sizeof(buf), "%lld\n", (long long)r->retiring_ms);
    put_small(r, "retiring", buf);
    log_info("deploy", "replica draining", LOG_STR("replica", r->name));
}

/* Finishes a retiring replica once its sessions are done (or the drain time is up). */
static void finish_retire(struct deploy_controller *dc, const struct target *t, struct replica *r,
                          bool routed)
{
    int64_t age = core_now_ms() - r->retiring_ms;
    if (!routed)
        r->slot[0] = 0; /* nothing routes to it: stop at once */
    if (r->alive && r->slot[0]) {
        int s = slot_sessions(dc, t->backend, r->slot);
        /* a second for HAProxy to stop picking it, then wait for the sessions in flight */
        if (age < 1000 || (s != 0 && age < dc->cfg.drain_ms))
            return;
    }
    struct core_err err = {0};
    if (r->alive)
        deploy_shim_stop(r->dir, 5000);
    if (r->slot[0] && ingress_server_remove(dc->ing, t->backend, r->slot, &err) &&
        err.code != CORE_E_NOTFOUND)
        log_warn("deploy", "cannot free slot", LOG_STR("replica", r->name),
                 LOG_STR("error", err.msg));
    log_info("deploy", "replica stopped", LOG_STR("replica", r->name));
    remove_dir(r);
}

/* ---- one target ------------------------------------------------------------------------------- */

static bool replica_crash_looping(const struct replica *r)
{
    const char *s = json_string_value(json_object_get(r->status, "state"));
    return s && (strcmp(s, "crash-loop") == 0 || strcmp(s, "failed") == 0);
}

static void reconcile_target(struct deploy_controller *dc, const struct target *t,
                             struct replicas *all, json_t *snap)
{
    struct dep d = {0}, stable = {0};
    load_dep(dc, t->desired_id, &d);
    if (t->stable_id && t->stable_id != t->desired_id)
        load_dep(dc, t->stable_id, &stable);
    /* HAProxy checks every replica of a backend at one path: while a rollout is in progress
     * the stable deployment's route (and health path) stays, so a new path cannot take the
     * old, serving replicas down; the new one applies once the rollout succeeded */
    bool in_progress =
        d.found && (!strcmp(d.state, "pending") || !strcmp(d.state, "progressing"));
    json_t *route_spec = stable.found && in_progress ? stable.spec
                         : d.found                  ? d.spec
                                                    : stable.spec;
    /* a service without an HTTP port is not load balanced: its replicas are ready when running */
    json_t *http_flag = json_object_get(d.found ? d.spec : stable.spec, "http");
    bool http = !http_flag || json_is_true(http_flag);
    if (route_spec && http)
        ensure_route(dc, t, route_spec);
    bool routed = http && json_object_get(dc->routes, t->backend) != NULL;
    int64_t now = core_now_ms();
    struct core_err err = {0};

    struct slots slots = {.n = 0};
    bool have_slots = false;
    /* 1. what is there: drop dead replicas, keep slots in step with live ones */
    for (size_t i = 0; i < all->n; i++) {
        struct replica *r = &all->v[i];
        if (r->gone || strcmp(r->service, t->service) || strcmp(r->env, t->env))
            continue;
        if (!r->alive) {
            if (d.found && r->rev[0] && strcmp(r->rev, d.rev) == 0 && !r->was_ready &&
                (!strcmp(d.state, "pending") || !strcmp(d.state, "progressing"))) {
                char why[300];
                snprintf(why, sizeof(why), "replica %s could not start: %s", r->name,
                         json_string_value(json_object_get(r->status, "last_error"))
                             ?: "its shim exited");
                fail_rollout(dc, t, &d, why);
                d.found = false;
            }
            if (r->slot[0] && routed)
                ingress_server_remove(dc->ing, t->backend, r->slot, &err);
            log_warn("deploy", "replica gone; removing it", LOG_STR("replica", r->name));
            remove_dir(r);
            continue;
        }
        if (r->retiring_ms) {
            finish_retire(dc, t, r, routed);
            continue;
        }
        if (!http) {
            const char *st = json_string_value(json_object_get(r->status, "state"));
            r->ready = st && !strcmp(st, "running");
        }
        if (!routed)
            continue;
        if (!have_slots) {
            ingress_backend_status(dc->ing, t->backend, slot_collect, &slots, &err);
            have_slots = true;
        }
        const struct slot_info *v = r->slot[0] ? slot_lookup(&slots, r->slot) : NULL;
        if (!v || !v->used || v->port != r->port) {
            char slot[16] = "";
            if (ingress_server_add(dc->ing, t->backend, "127.0.0.1", r->port, slot, sizeof(slot),
                                   &err) == 0) {
                snprintf(r->slot, sizeof(r->slot), "%s", slot);
                put_small(r, "slot", slot);
            } else {
                log_warn("deploy", "cannot add replica to the load balancer",
                         LOG_STR("replica", r->name), LOG_STR("error", err.msg));
            }
            continue;
        }
        r->ready = v->up;
        if (r->ready && !r->was_ready) {
            r->was_ready = true;
            put_small(r, "ready", "1\n");
        }
    }

    /* the target's certificate, before anything is launched; the desired id of the tick's
     * snapshot, so a rollout failing just now does not revoke what the stable one serves */
    {
        const char *in_use[MAX_REPLICAS];
        size_t nin = 0;
        for (size_t i = 0; i < all->n && nin < MAX_REPLICAS; i++) {
            struct replica *r = &all->v[i];
            if (!r->gone && r->tls_serial[0] && !strcmp(r->service, t->service) &&
                !strcmp(r->env, t->env))
                in_use[nin++] = r->tls_serial;
        }
        json_t *hspec = d.found ? d.spec : stable.spec;
        deploy_certs_target(dc, t->service, t->env, t->backend,
                            json_string_value(json_object_get(hspec, "host")),
                            t->desired_id && t->replicas > 0, in_use, nin);
    }

    /* 2. the rollout */
    int want = d.found ? t->replicas : 0;
    size_t nnew = 0, nold = 0, ready_new = 0, ready_old = 0;
    for (size_t i = 0; i < all->n; i++) {
        struct replica *r = &all->v[i];
        if (r->gone || r->retiring_ms || strcmp(r->service, t->service) || strcmp(r->env, t->env))
            continue;
        bool is_new = d.found && strcmp(r->rev, d.rev) == 0;
        if (is_new) {
            nnew++;
            ready_new += r->ready;
        } else {
            nold++;
            ready_old += r->ready;
        }
    }
    bool rolling = d.found && (!strcmp(d.state, "pending") || !strcmp(d.state, "progressing"));
    if (rolling && !strcmp(d.state, "pending")) {
        set_state(dc, d.id, "progressing", NULL, false);
        snprintf(d.state, sizeof(d.state), "progressing");
    }
    if (rolling) {
        for (size_t i = 0; i < all->n; i++) {
            struct replica *r = &all->v[i];
            if (r->gone || r->retiring_ms || r->ready || strcmp(r->service, t->service) ||
                strcmp(r->env, t->env) || strcmp(r->rev, d.rev))
                continue;
            char why[300] = "";
            if (replica_crash_looping(r))
                snprintf(why, sizeof(why), "replica %s is crash-looping (last exit code %lld)",
                         r->name,
                         (long long)json_integer_value(json_object_get(r->status,
                                                                       "last_exit_code")));
            else if (now - r->created_ms > d.deadline)
                snprintf(why, sizeof(why), "replica %s did not pass its health check within "
                                           "%llds",
                         r->name, (long long)(d.deadline / 1000));
            if (why[0]) {
                fail_rollout(dc, t, &d, why);
                goto out; /* the next tick reconciles towards the stable deployment */
            }
        }
    }
    if (d.found && (routed || !http)) {
        int surge = d.surge, unav = d.unav;
        if (surge <= 0 && unav <= 0)
            surge = 1;
        while ((int)nnew < want && (int)(nnew + nold) < want + surge) {
            if (launch(dc, t, &d, all, &err)) {
                if (rolling) {
                    char why[700];
                    snprintf(why, sizeof(why), "cannot start a replica: %s", err.msg);
                    fail_rollout(dc, t, &d, why);
                    goto out;
                }
                log_warn("deploy", "cannot start a replica", LOG_STR("service", t->service),
                         LOG_STR("error", err.msg));
                break;
            }
            nnew++;
        }
    }
    /* retire old replicas: those not serving at once, serving ones while enough stay ready */
    int min_ready = want - (d.found ? d.unav : 0);
    if (min_ready < 0)
        min_ready = 0;
    int can = (int)(ready_new + ready_old) - min_ready;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < all->n; i++) {
            struct replica *r = &all->v[i];
            if (r->gone || r->retiring_ms || strcmp(r->service, t->service) ||
                strcmp(r->env, t->env))
                continue;
            if (d.found && strcmp(r->rev, d.rev) == 0)
                continue;
            if (pass == 0 && !r->ready) {
                retire(dc, t, r);
            } else if (pass == 1 && r->ready && can > 0) {
                retire(dc, t, r);
                can--;
            }
        }
    }
    /* scale down: extra replicas of the wanted revision, not-ready and newest first */
    if (d.found && (int)nnew > want) {
        int extra = (int)nnew - want;
        for (int pass = 0; pass < 2 && extra > 0; pass++)
            for (size_t i = all->n; i-- > 0 && extra > 0;) {
                struct replica *r = &all->v[i];
                if (r->gone || r->retiring_ms || strcmp(r->service, t->service) ||
                    strcmp(r->env, t->env) || strcmp(r->rev, d.rev))
                    continue;
                if ((pass == 0 && !r->ready) || pass == 1) {
                    retire(dc, t, r);
                    extra--;
                }
            }
    }
    /* done? every wanted replica of the new revision ready, nothing old left */
    if (rolling) {
        size_t left = 0;
        for (size_t i = 0; i < all->n; i++) {
            struct replica *r = &all->v[i];
            if (!r->gone && !strcmp(r->service, t->service) && !strcmp(r->env, t->env) &&
                strcmp(r->rev, d.rev) != 0)
                left++;
        }
        if ((int)ready_new >= want && left == 0) {
            if (store_txn_begin(dc->cfg.st, &err) == 0) {
                set_state(dc, d.id, "succeeded", "", true);
                struct store_value v[] = {STORE_V_INT(d.id), STORE_V_TEXT(t->service),
                                          STORE_V_TEXT(t->env)};
                store_exec(dc->cfg.st, "UPDATE deploy_targets SET stable_id=? WHERE service=? "
                                       "AND env=?",
                           v, 3, NULL, &err);
                if (store_txn_commit(dc->cfg.st, &err))
                    store_txn_rollback(dc->cfg.st);
            }
            log_info("deploy", "rollout succeeded", LOG_STR("service", t->service),
                     LOG_STR("env", t->env), LOG_INT("deployment", d.id));
        }
    }
out:;
    /* 3. what the status API shows */
    json_t *reps = json_array();
    for (size_t i = 0; i < all->n; i++) {
        struct replica *r = &all->v[i];
        if (r->gone || strcmp(r->service, t->service) || strcmp(r->env, t->env))
            continue;
        char shortrev[13];
        snprintf(shortrev, sizeof(shortrev), "%.12s", r->rev);
        json_t *o = json_pack("{s:s,s:I,s:s,s:i,s:s,s:b,s:b}", "name", r->name, "deployment",
                              (json_int_t)r->deployment, "revision", shortrev, "port", r->port,
                              "slot", r->slot, "ready", r->ready, "draining",
                              r->retiring_ms != 0);
        const char *k;
        json_t *v;
        json_object_foreach (r->status, k, v)
            if (strcmp(k, "port") != 0)
                json_object_set(o, k, v);
        char ts[40];
        core_time_format(r->created_ms, ts, sizeof(ts));
        json_object_set_new(o, "created_at", json_string(ts));
        json_object_set_new(o, "log", json_string(r->log));
        json_array_append_new(reps, o);
    }
    char key[140];
    snprintf(key, sizeof(key), "%s/%s", t->service, t->env);
    json_t *host = json_object_get(route_spec, "host");
    char url[400] = "", tls_url[400] = "", internal[80];
    if (json_string_length(host))
        snprintf(url, sizeof(url), "http://%s:%d/", json_string_value(host),
                 dc->cfg.ingress_port);
    if (json_string_length(host) && ingress_tls_port(dc->ing))
        snprintf(tls_url, sizeof(tls_url), "https://%s:%d/", json_string_value(host),
                 ingress_tls_port(dc->ing));
    snprintf(internal, sizeof(internal), "http://127.0.0.1:%d", t->port);
    json_object_set_new(snap, key,
                        json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:I,s:I,s:o}", "service", t->service,
                                  "env", t->env, "backend", t->backend, "url", url,
                                  "internal_url", internal, "replicas_wanted", want,
                                  "desired_id", (json_int_t)t->desired_id, "stable_id",
                                  (json_int_t)t->stable_id, "replicas", reps));
    if (tls_url[0])
        json_object_set_new(json_object_get(snap, key), "tls_url", json_string(tls_url));
    const struct deploy_cert *cert = deploy_certs_get(dc, t->backend);
    if (cert)
        json_object_set_new(json_object_get(snap, key), "certificate",
                            json_pack("{s:s,s:s}", "serial", cert->serial, "names", cert->sans));
    dep_release(&d);
    dep_release(&stable);
}

static void reconcile_once(struct deploy_controller *dc)
{
    struct core_err err = {0};
    struct targets ts = {0};
    struct replicas all = {0};
    if (store_query(dc->cfg.st, "SELECT * FROM deploy_targets ORDER BY service, env", NULL, 0,
                    target_row, &ts, &err) < 0) {
        log_warn("deploy", "cannot read deploy targets", LOG_STR("error", err.msg));
        core_free(ts.v);
        return;
    }
    scan_replicas(dc, &all);
    json_t *snap = json_object();
    for (size_t i = 0; i < ts.n; i++)
        reconcile_target(dc, &ts.v[i], &all, snap);
    deploy_certs_sweep(dc); /* certificates of targets that are gone, the ingress's own */
    deploy_monitoring_write(dc, snap); /* still ours alone: published below */
    /* replicas of no target (a deleted service): stop them */
    for (size_t i = 0; i < all.n; i++) {
        struct replica *r = &all.v[i];
        bool known = false;
        for (size_t k = 0; k < ts.n && !known; k++)
            known = !strcmp(ts.v[k].service, r->service) && !strcmp(ts.v[k].env, r->env);
        if (!known && !r->gone) {
            deploy_shim_stop(r->dir, 5000);
            remove_dir(r);
        }
    }
    pthread_mutex_lock(&dc->mu);
    json_decref(dc->snapshot);
    dc->snapshot = snap;
    pthread_mutex_unlock(&dc->mu);
    replicas_release(&all);
    core_free(ts.v);
}

static void *reconciler(void *arg)
{
    struct deploy_controller *dc = arg;
    pthread_mutex_lock(&dc->mu);
    while (!dc->stop) {
        dc->wake = false;
        pthread_mutex_unlock(&dc->mu);
        reconcile_once(dc);
        pthread_mutex_lock(&dc->mu);
        if (dc->stop || dc->wake)
            continue;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (dc->cfg.tick_ms % 1000) * 1000000;
        ts.tv_sec += dc->cfg.tick_ms / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&dc->cv, &dc->mu, &ts);
    }
    pthread_mutex_unlock(&dc->mu);
    return NULL;
}

void deploy_wake(struct deploy_controller *dc)
{
    pthread_mutex_lock(&dc->mu);
    dc->wake = true;
    pthread_cond_signal(&dc->cv);
    pthread_mutex_unlock(&dc->mu);
}

/* ---- lifecycle --------------------------------------------------------------------------------- */

static void free_dc(struct deploy_controller *dc)
{
    json_decref(dc->snapshot);
    json_decref(dc->routes);
    core_free(dc->data_dir);
    core_free(dc->self_exe);
    core_free(dc->listen_addr);
    core_free(dc->haproxy_bin);
    core_free(dc->tls_addr);
    deploy_certs_release(dc);
    pthread_mutex_destroy(&dc->mu);
    pthread_cond_destroy(&dc->cv);
    core_free(dc);
}

struct deploy_controller *deploy_start(const struct deploy_config *cfg, struct core_err *err)
{
    if (!cfg || !cfg->data_dir || cfg->data_dir[0] != '/' || !cfg->self_exe ||
        cfg->self_exe[0] != '/' || !cfg->st || !cfg->cat || !cfg->reg) {
        core_err_set(err, CORE_E_INVAL, "deploy controller needs absolute data dir and binary, "
                                        "a store, a catalog and a registry");
        return NULL;
    }
    struct deploy_controller *dc = core_calloc(1, sizeof(*dc));
    if (!dc) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&dc->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&dc->cv, &ca);
    pthread_condattr_destroy(&ca);
    dc->cfg = *cfg;
    dc->data_dir = core_strdup(cfg->data_dir);
    dc->self_exe = core_strdup(cfg->self_exe);
    dc->listen_addr = core_strdup(cfg->listen_addr ? cfg->listen_addr : "127.0.0.1");
    dc->haproxy_bin = cfg->haproxy_bin ? core_strdup(cfg->haproxy_bin) : NULL;
    dc->tls_addr = cfg->tls_addr ? core_strdup(cfg->tls_addr) : NULL;
    dc->cfg.tls_addr = dc->tls_addr;
    dc->snapshot = json_object();
    dc->routes = json_object();
    dc->cfg.data_dir = dc->data_dir;
    dc->cfg.self_exe = dc->self_exe;
    dc->cfg.listen_addr = dc->listen_addr;
    dc->cfg.haproxy_bin = dc->haproxy_bin;
    if (!dc->cfg.ingress_port)
        dc->cfg.ingress_port = 8080;
    if (dc->cfg.tick_ms <= 0)
        dc->cfg.tick_ms = 500;
    if (dc->cfg.drain_ms <= 0)
        dc->cfg.drain_ms = DEPLOY_DRAIN_MS;
    dc->port_base = cfg->port_base ? cfg->port_base : DEPLOY_PORT_BASE;
    dc->next_seq = 1;
    snprintf(dc->root, sizeof(dc->root), "%s/deploy/replicas", dc->data_dir);
    snprintf(dc->logs, sizeof(dc->logs), "%s/deploy/logs", dc->data_dir);
    if (!dc->data_dir || !dc->self_exe || !dc->listen_addr || !dc->snapshot || !dc->routes) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto fail;
    }
    if (core_mkdir_p(dc->root, 0700, err) || core_mkdir_p(dc->logs, 0700, err))
        goto fail;
    if (dc->cfg.tls_port && !dc->cfg.pki) {
        core_err_set(err, CORE_E_INVAL, "the TLS frontend needs the platform CA ('pave ca init')");
        goto fail;
    }
    char *default_pem = NULL;
    if (deploy_certs_start(dc, dc->cfg.tls_port > 0, &default_pem, err))
        goto fail;
    struct ingress_config ic = {
        .data_dir = dc->data_dir,
        .listen_addr = dc->listen_addr,
        .listen_port = dc->cfg.ingress_port,
        .haproxy_bin = dc->haproxy_bin,
        .max_servers = 32,
        .detach = true,
        .adopt = true,
        .tls_port = dc->cfg.tls_port,
        .tls_addr = dc->tls_addr,
        .tls_default_pem = default_pem,
    };
    dc->ing = ingress_start(&ic, err);
    if (default_pem) {
        volatile char *w = default_pem;
        while (*w)
            *w++ = 0;
        core_free(default_pem);
    }
    if (!dc->ing) {
        core_err_wrap(err, "starting the load balancer (HAProxy) on %s:%d", dc->listen_addr,
                      dc->cfg.ingress_port);
        goto fail;
    }
    log_info("deploy", ingress_adopted(dc->ing) ? "adopted running haproxy" : "haproxy started",
             LOG_INT("port", dc->cfg.ingress_port));
    if (pthread_create(&dc->thread, NULL, reconciler, dc) != 0) {
        core_err_set(err, CORE_E_INTERNAL, "cannot start the reconciler thread");
        goto fail;
    }
    dc->started = true;
    return dc;
fail:
    if (dc->ing)
        ingress_release(dc->ing);
    free_dc(dc);
    return NULL;
}

static void join(struct deploy_controller *dc)
{
    if (!dc->started)
        return;
    pthread_mutex_lock(&dc->mu);
    dc->stop = true;
    pthread_cond_signal(&dc->cv);
    pthread_mutex_unlock(&dc->mu);
    pthread_join(dc->thread, NULL);
    dc->started = false;
}

void deploy_stop(struct deploy_controller *dc)
{
    if (!dc)
        return;
    join(dc);
    ingress_release(dc->ing);
    free_dc(dc);
}

void deploy_stop_all(struct deploy_controller *dc)
{
    if (!dc)
        return;
    join(dc);
    struct replicas all = {0};
    scan_replicas(dc, &all);
    for (size_t i = 0; i < all.n; i++) {
        deploy_shim_stop(all.v[i].dir, 5000);
        remove_dir(&all.v[i]);
    }
    replicas_release(&all);
    ingress_stop(dc->ing);
    free_dc(dc);
}

int deploy_ingress_port(const struct deploy_controller *dc)
{
    return dc->cfg.ingress_port;
}

int deploy_tls_port(const struct deploy_controller *dc)
{
    return dc->ing ? ingress_tls_port(dc->ing) : 0;
}

int deploy_replica_foreach(struct deploy_controller *dc, deploy_replica_fn fn, void *arg)
{
    pthread_mutex_lock(&dc->mu);
    json_t *snap = json_deep_copy(dc->snapshot);
    pthread_mutex_unlock(&dc->mu);
    int rc = 0;
    const char *k;
    json_t *t;
    json_object_foreach (snap, k, t) {
        size_t i;
        json_t *r;
        json_array_foreach (json_object_get(t, "replicas"), i, r) {
            const char *state = json_string_value(json_object_get(r, "state"));
            long pid = (long)json_integer_value(json_object_get(r, "shim_pid"));
            if (!state || (strcmp(state, "running") && strcmp(state, "starting")) || pid <= 1)
                continue;
            struct deploy_replica_info info = {
                .service = json_string_value(json_object_get(t, "service")),
                .env = json_string_value(json_object_get(t, "env")),
                .name = json_string_value(json_object_get(r, "name")),
                .shim_pid = pid,
                .port = (int)json_integer_value(json_object_get(r, "port")),
            };
            if (!info.service || !info.env || !info.name)
                continue;
            if ((rc = fn(arg, &info)))
                goto out;
        }
    }
out:
    json_decref(snap);
    return rc;
}

json_t *deploy_status(struct deploy_controller *dc, const char *service, const char *env,
                      struct core_err *err)
{
    json_t *items = json_array();
    pthread_mutex_lock(&dc->mu);
    const char *k;
    json_t *v;
    json_object_foreach (dc->snapshot, k, v) {
        if (strcmp(json_string_value(json_object_get(v, "service")), service) != 0)
            continue;
        if (env && strcmp(json_string_value(json_object_get(v, "env")), env) != 0)
            continue;
        json_array_append_new(items, json_deep_copy(v));
    }
    pthread_mutex_unlock(&dc->mu);
    size_t i;
    json_array_foreach (items, i, v) {
        int64_t ids[2] = {json_integer_value(json_object_get(v, "desired_id")),
                          json_integer_value(json_object_get(v, "stable_id"))};
        const char *keys[2] = {"desired", "stable"};
        for (int j = 0; j < 2; j++) {
            struct core_err e2 = {0};
            json_t *d = ids[j] ? deploy_get(dc->cfg.st, ids[j], &e2) : NULL;
            json_object_set_new(v, keys[j], d ? d : json_null());
        }
        json_object_del(v, "desired_id");
        json_object_del(v, "stable_id");
    }
    if (!json_array_size(items)) {
        json_decref(items);
        if (env)
            core_err_set(err, CORE_E_NOTFOUND,
                         "%s is not deployed to %s (deploy it with 'pave deploy %s --env %s')",
                         service, env, service, env);
        else
            core_err_set(err, CORE_E_NOTFOUND,
                         "%s is not deployed anywhere (deploy it with 'pave deploy %s --env "
                         "ENV')",
                         service, service);
        return NULL;
    }
    return json_pack("{s:s,s:o}", "service", service, "environments", items);
}
