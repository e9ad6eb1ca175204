/* Deploy requests: what `pave deploy`, `rollback` and `scale` write to the store (the desired
 * state), and the read side (`deployments list`). The reconciler (controller.c) acts on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "deploy/deploy.h"
#include "deploy/deploy_int.h"
#include "registry/registry.h"
#include "store/store.h"

/* ---- helpers ------------------------------------------------------------------------------ */

void deploy_set_gate(struct deploy_controller *dc, deploy_gate_fn fn, void *arg)
{
    dc->gate = fn;
    dc->gate_arg = arg;
}

static bool actor_may(const struct catalog_actor *a, const char *team)
{
    if (a->is_admin)
        return true;
    for (size_t i = 0; i < a->nteams; i++)
        if (strcmp(a->teams[i], team) == 0)
            return true;
    return false;
}

struct env_find {
    const char *name;
    bool found;
};

static int env_match(void *arg, const struct catalog_env *e)
{
    struct env_find *f = arg;
    if (strcmp(e->name, f->name) == 0)
        f->found = true;
    return 0;
}

static int check_env(struct catalog *cat, const char *env, struct core_err *err)
{
    struct env_find f = {env, false};
    if (!env || !core_is_dns_label(env))
        return core_err_set(err, CORE_E_INVAL, "invalid environment name '%.64s'",
                            env ? env : "");
    int rc = catalog_env_list(cat, env_match, &f, err);
    if (rc)
        return rc;
    if (!f.found)
        return core_err_set(err, CORE_E_NOTFOUND,
                            "unknown environment '%s' (see 'pave env list')", env);
    return 0;
}

/* Loads the service and checks the actor may change it. */
static int load_service(struct deploy_controller *dc, const struct catalog_actor *actor,
                        const char *service, struct catalog_service *s, struct core_err *err)
{
    if (!service || !core_is_dns_label(service))
        return core_err_set(err, CORE_E_INVAL, "invalid service name '%.64s'",
                            service ? service : "");
    int rc = catalog_service_get(dc->cfg.cat, service, s, err);
    if (rc)
        return rc;
    if (!actor_may(actor, s->team)) {
        rc = core_err_set(err, CORE_E_PERM, "only members of team '%s' (or an admin) may "
                                            "deploy '%s'",
                          s->team, service);
        catalog_service_release(s);
        return rc;
    }
    return 0;
}

/* The next free port of the discovery range (targets and links share it). */
static int next_port(struct deploy_controller *dc, int64_t *p, struct core_err *err)
{
    int64_t maxp = 0;
    int rc = store_query_int(dc->cfg.st,
                             "SELECT MAX(m) FROM (SELECT COALESCE(MAX(port), 0) AS m FROM "
                             "deploy_targets UNION ALL SELECT COALESCE(MAX(port), 0) FROM "
                             "deploy_links)",
                             NULL, 0, &maxp, err);
    if (rc)
        return rc;
    *p = maxp >= dc->port_base ? maxp + 1 : dc->port_base;
    if (*p > 65535)
        return core_err_set(err, CORE_E_TOO_BIG, "no service-discovery port left");
    return 0;
}

/* The port on which `caller` reaches `service` in env (a link), created on first use. */
static int link_ensure(struct deploy_controller *dc, const char *caller, const char *service,
                       const char *env, int *port, struct core_err *err)
{
    int64_t p = 0;
    struct store_value k[] = {STORE_V_TEXT(caller), STORE_V_TEXT(service), STORE_V_TEXT(env)};
    int rc = store_query_int(dc->cfg.st, "SELECT port FROM deploy_links WHERE caller=? AND "
                                         "service=? AND env=?",
                             k, 3, &p, err);
    if (rc)
        return rc;
    if (!p) {
        if ((rc = next_port(dc, &p, err)))
            return rc;
        struct store_value v[] = {STORE_V_TEXT(caller), STORE_V_TEXT(service), STORE_V_TEXT(env),
                                  STORE_V_INT(p)};
        if ((rc = store_exec(dc->cfg.st, "INSERT INTO deploy_links(caller, service, env, port) "
                                         "VALUES (?, ?, ?, ?)",
                             v, 4, NULL, err)))
            return rc;
    }
    *port = (int)p;
    return 0;
}

int deploy_target_ensure(struct deploy_controller *dc, const char *service, const char *env,
                         int *port, struct core_err *err)
{
    int64_t p = 0;
    struct store_value k[] = {STORE_V_TEXT(service), STORE_V_TEXT(env)};
    int rc = store_query_int(dc->cfg.st, "SELECT port FROM deploy_targets WHERE service=? AND env=?",
                             k, 2, &p, err);
    if (rc)
        return rc;
    if (p) {
        if (port)
            *port = (int)p;
        return 0;
    }
    if ((rc = next_port(dc, &p, err)))
        return rc;
    struct store_value v[] = {STORE_V_TEXT(service), STORE_V_TEXT(env), STORE_V_INT(p)};
    if ((rc = store_exec(dc->cfg.st,
                         "INSERT INTO deploy_targets(service, env, port, replicas) "
                         "VALUES (?, ?, ?, 0)",
                         v, 3, NULL, err)))
        return rc;
    if (port)
        *port = (int)p;
    return 0;
}

/* "payments-api" -> "PAYMENTS_API_URL" */
static void url_var(const char *name, char *out, size_t outsz)
{
    size_t i = 0;
    for (; name[i] && i + 5 < outsz; i++)
        out[i] = name[i] == '-' ? '_' : (char)(name[i] >= 'a' && name[i] <= 'z'
                                                   ? name[i] - 'a' + 'A' : name[i]);
    snprintf(out + i, outsz - i, "_URL");
}

struct newest {
    char tag[256];
};

static int newest_tagged(void *arg, const struct registry_image *img)
{
    struct newest *n = arg;
    if (img->subject || !img->tag) /* referrers (signatures, provenance) have a subject */
        return 0;
    snprintf(n->tag, sizeof(n->tag), "%s", img->tag);
    return 1; /* newest first: stop at the first tagged image */
}

/* Resolves the image reference to a manifest digest of repository `service`. */
static int resolve_image(struct deploy_controller *dc, const char *service, const char *image,
                         char ref_out[300], char digest[72], struct core_err *err)
{
    const char *ref = image;
    struct newest n = {{0}};
    if (!ref || !*ref) {
        int rc = registry_list(dc->cfg.reg, service, newest_tagged, &n, err);
        if (rc < 0)
            return rc;
        if (!n.tag[0])
            return core_err_set(err, CORE_E_NOTFOUND,
                                "service '%s' has no image yet: push to its repository so a "
                                "pipeline builds one (see 'pave artifacts list %s'), or pass "
                                "--image",
                                service, service);
        ref = n.tag;
    } else {
        size_t sl = strlen(service);
        if (strncmp(ref, service, sl) == 0 && (ref[sl] == ':' || ref[sl] == '@'))
            ref += sl + (ref[sl] == ':');
        if (ref[0] == '@')
            ref++;
        if (strchr(ref, '/') || (strchr(ref, ':') && strncmp(ref, "sha256:", 7) != 0))
            return core_err_set(err, CORE_E_INVAL,
                                "image '%.200s' is not in repository '%s': use a tag, "
                                "@sha256:DIGEST or %s:TAG",
                                image, service, service);
    }
    char *body = NULL;
    size_t len = 0;
    char media[128];
    int rc = registry_get_manifest(dc->cfg.reg, service, ref, &body, &len, media, digest, err);
    if (rc == CORE_E_NOTFOUND)
        return core_err_set(err, CORE_E_NOTFOUND,
                            "no image '%.200s' in repository '%s' (see 'pave artifacts list %s')",
                            ref, service, service);
    if (rc)
        return rc;
    core_free(body);
    snprintf(ref_out, 300, "%s:%s", service, ref);
    if (strncmp(ref, "sha256:", 7) == 0)
        snprintf(ref_out, 300, "%s@%s", service, ref);
    return 0;
}

/* Builds the run spec of a service in env from its manifest. */
static json_t *run_spec(struct deploy_controller *dc, const char *service, const char *env,
                        const char *manifest, const char *digest, struct core_err *err)
{
    json_error_t jerr;
    json_t *m = json_loads(manifest, 0, &jerr);
    json_t *spec = json_object(), *argv = json_array(), *envv = json_array(),
           *secrets = json_array(), *paths = json_array();
    json_t *out = NULL;
    if (!m || !spec || !argv || !envv || !secrets || !paths) {
        core_err_set(err, CORE_E_INVAL, "unreadable manifest of '%s'", service);
        goto done;
    }
    json_t *s = json_object_get(m, "spec");
    json_t *run = json_object_get(s, "run");
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(run, "command"), i, v)
        json_array_append_new(argv, json_string(json_string_value(v)));
    /* the image's Env first, then the manifest's env (at launch); here the manifest and ours */
    const char *k;
    json_object_foreach (json_object_get(run, "env"), k, v) {
        if (strcmp(k, "PORT") == 0)
            continue; /* each replica gets its own PORT */
        char *kv = NULL;
        if (asprintf(&kv, "%s=%s", k, json_string_value(v) ? json_string_value(v) : "") < 0)
            goto oom;
        json_array_append_new(envv, json_string(kv));
        free(kv);
    }
    json_array_foreach (json_object_get(s, "dependencies"), i, v) {
        const char *dep = json_string_value(json_object_get(v, "service"));
        if (!dep)
            continue;
        int port = 0;
        /* the dependency's own discovery port exists too; the caller gets a link of its own,
         * which also reaches a strict dependency */
        if (deploy_target_ensure(dc, dep, env, NULL, err) ||
            link_ensure(dc, service, dep, env, &port, err))
            goto done;
        char name[160], *kv = NULL;
        url_var(dep, name, sizeof(name));
        if (asprintf(&kv, "%s=http://127.0.0.1:%d", name, port) < 0)
            goto oom;
        json_array_append_new(envv, json_string(kv));
        free(kv);
    }
    char kv[400];
    snprintf(kv, sizeof(kv), "PAVE_SERVICE=%s", service);
    json_array_append_new(envv, json_string(kv));
    snprintf(kv, sizeof(kv), "PAVE_ENV=%s", env);
    json_array_append_new(envv, json_string(kv));
    snprintf(kv, sizeof(kv), "PAVE_VERSION=%.19s", digest);
    json_array_append_new(envv, json_string(kv));
    json_array_foreach (json_object_get(run, "secrets"), i, v)
        json_array_append_new(secrets, json_string(json_string_value(v)));
    if (json_array_size(secrets))
        json_array_append_new(envv, json_string("SECRETS_DIR=/run/secrets"));

    int64_t cpu = 0, mem = 0;
    json_t *res = json_object_get(run, "resources");
    json_t *c = json_object_get(res, "cpu"), *mm = json_object_get(res, "memory");
    char text[64];
    if (c) {
        if (json_is_string(c))
            snprintf(text, sizeof(text), "%s", json_string_value(c));
        else if (json_is_integer(c))
            snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(c));
        else
            snprintf(text, sizeof(text), "%.9g", json_real_value(c));
        if (core_parse_millicores(text, &cpu))
            cpu = 0;
    }
    if (mm) {
        if (json_is_string(mm))
            snprintf(text, sizeof(text), "%s", json_string_value(mm));
        else
            snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(mm));
        if (core_parse_bytes(text, &mem))
            mem = 0;
    }
    bool http = false;
    json_array_foreach (json_object_get(run, "ports"), i, v) {
        const char *proto = json_string_value(json_object_get(v, "protocol"));
        http = http || !proto || !strcmp(proto, "http");
    }
    json_t *health = json_object_get(run, "health");
    const char *hpath = json_string_value(json_object_get(health, "path"));
    json_t *expose = json_object_get(s, "expose");
    const char *host = json_string_value(json_object_get(expose, "host"));
    json_array_foreach (json_object_get(expose, "paths"), i, v)
        json_array_append_new(paths, json_string(json_string_value(v)));
    char hostbuf[300] = "";
    if (host) {
        /* prod serves the manifest's host; other environments a sub-domain of it */
        if (strcmp(env, "prod") == 0)
            snprintf(hostbuf, sizeof(hostbuf), "%s", host);
        else
            snprintf(hostbuf, sizeof(hostbuf), "%s.%s", env, host);
    }
    json_t *rollout = json_object_get(s, "rollout");
    json_t *surge = json_object_get(rollout, "maxSurge"),
           *unav = json_object_get(rollout, "maxUnavailable");
    json_object_set_new(spec, "argv", argv);
    json_object_set_new(spec, "env", envv);
    json_object_set_new(spec, "secrets", secrets);
    json_object_set_new(spec, "cpu_millicores", json_integer(cpu));
    json_object_set_new(spec, "memory_bytes", json_integer(mem));
    json_object_set_new(spec, "pids", json_integer(1024));
    json_object_set_new(spec, "http", json_boolean(http));
    json_object_set_new(spec, "strict", json_boolean(json_is_true(json_object_get(s, "strict"))));
    json_object_set_new(spec, "health_path", json_string(hpath ? hpath : "/"));
    json_object_set_new(spec, "host", json_string(hostbuf));
    json_object_set_new(spec, "paths", paths);
    json_object_set_new(spec, "max_surge", json_integer(surge ? json_integer_value(surge) : 1));
    json_object_set_new(spec, "max_unavailable",
                        json_integer(unav ? json_integer_value(unav) : 0));
    json_object_set_new(spec, "replicas",
                        json_integer(json_object_get(s, "replicas")
                                         ? json_integer_value(json_object_get(s, "replicas"))
                                         : 1));
    argv = envv = secrets = paths = NULL;
    out = spec;
    spec = NULL;
    goto done;
oom:
    core_err_set(err, CORE_E_NOMEM, "out of memory");
done:
    json_decref(m);
    json_decref(spec);
    json_decref(argv);
    json_decref(envv);
    json_decref(secrets);
    json_decref(paths);
    return out;
}

/* Inserts a deployment and makes it the target's desired state (inside a transaction). */
static int insert_deployment(struct deploy_controller *dc, const struct catalog_actor *actor,
                             const char *service, const char *env, const char *kind,
                             const char *image, const char *digest, const char *rev,
                             int replicas, int surge, int unav, int64_t deadline,
                             const char *spec, const char *state, const char *message,
                             int64_t rollback_of, int64_t *id, struct core_err *err)
{
    struct store *st = dc->cfg.st;
    int64_t now = core_now_ms();
    char ts[40];
    core_time_format(now, ts, sizeof(ts));
    int rc = store_txn_begin(st, err);
    if (rc)
        return rc;
    if ((rc = deploy_target_ensure(dc, service, env, NULL, err)))
        goto fail;
    struct store_value k[] = {STORE_V_TEXT(ts), STORE_V_TEXT(service), STORE_V_TEXT(env)};
    if (strcmp(kind, "scale") != 0 &&
        (rc = store_exec(st,
                         "UPDATE deployments SET state='superseded', finished_at=?, "
                         "message='replaced by a newer deployment' WHERE service=? AND env=? "
                         "AND state IN ('pending','progressing')",
                         k, 3, NULL, err)))
        goto fail;
    struct store_value v[] = {
        STORE_V_TEXT(service), STORE_V_TEXT(env),   STORE_V_TEXT(kind),
        STORE_V_TEXT(image),   STORE_V_TEXT(digest), STORE_V_TEXT(rev),
        STORE_V_INT(replicas), STORE_V_INT(surge),  STORE_V_INT(unav),
        STORE_V_INT(deadline), STORE_V_TEXT(spec),  STORE_V_TEXT(actor->user),
        STORE_V_TEXT(state),   STORE_V_TEXT(message),
        rollback_of ? STORE_V_INT(rollback_of) : STORE_V_NULL,
        STORE_V_TEXT(ts),      STORE_V_INT(now),
        strcmp(state, "succeeded") == 0 ? STORE_V_TEXT(ts) : STORE_V_NULL,
    };
    if ((rc = store_exec(st,
                         "INSERT INTO deployments(service, env, kind, image, digest, rev, "
                         "replicas, max_surge, max_unavailable, health_deadline_ms, spec, actor, "
                         "state, message, rollback_of, created_at, created_ms, finished_at) "
                         "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         v, sizeof(v) / sizeof(v[0]), NULL, err)))
        goto fail;
    if ((rc = store_query_int(st, "SELECT MAX(id) FROM deployments", NULL, 0, id, err)))
        goto fail;
    struct store_value t[] = {STORE_V_INT(*id), STORE_V_INT(replicas), STORE_V_TEXT(service),
                              STORE_V_TEXT(env)};
    const char *sql = strcmp(kind, "scale") == 0
                          ? "UPDATE deploy_targets SET replicas=?2 WHERE service=?3 AND env=?4 "
                            "AND ?1 IS NOT NULL"
                          : "UPDATE deploy_targets SET desired_id=?1, replicas=?2 WHERE "
                            "service=?3 AND env=?4";
    if ((rc = store_exec(st, sql, t, 4, NULL, err)))
        goto fail;
    char detail[400], after[65];
    snprintf(detail, sizeof(detail), "%s #%lld of %s to %s: %s, %d replicas", kind,
             (long long)*id, service, env, image, replicas);
    core_sha256_hex(detail, strlen(detail), after);
    char action[32];
    snprintf(action, sizeof(action), "deploy.%s", kind);
    struct store_audit_event ev = {.actor = actor->user, .action = action, .kind = "service",
                                   .object = service, .after = after, .detail = detail};
    if ((rc = store_audit_append(st, &ev, err)))
        goto fail;
    if ((rc = store_txn_commit(st, err)))
        goto fail;
    deploy_wake(dc);
    return 0;
fail:
    store_txn_rollback(st);
    return rc;
}

int deploy_create(struct deploy_controller *dc, const struct catalog_actor *actor,
                  const struct deploy_request *req, int64_t *id, struct core_err *err)
{
    struct catalog_service s = {0};
    json_t *spec = NULL;
    char *spec_text = NULL;
    int rc = load_service(dc, actor, req->service, &s, err);
    if (rc)
        return rc;
    if ((rc = check_env(dc->cfg.cat, req->env, err)))
        goto out;
    if (req->replicas > 100) {
        rc = core_err_set(err, CORE_E_INVAL, "replicas must be 0..100");
        goto out;
    }
    if (req->health_deadline_ms < 0 || req->health_deadline_ms > 3600 * 1000) {
        rc = core_err_set(err, CORE_E_INVAL, "health deadline must be at most 1h");
        goto out;
    }
    char ref[300], digest[72];
    if ((rc = resolve_image(dc, req->service, req->image, ref, digest, err)))
        goto out;
    if (dc->gate && (rc = dc->gate(dc->gate_arg, actor, req->service, req->env, s.team, s.tier,
                                   s.manifest, req->service, digest, err)))
        goto out;
    if (!(spec = run_spec(dc, req->service, req->env, s.manifest, digest, err))) {
        rc = err->code ? err->code : CORE_E_INVAL;
        goto out;
    }
    /* replicas: asked for, else what runs now (a 'pave scale' survives a deploy), else the
     * manifest's spec.replicas */
    int64_t current = 0;
    struct store_value tk[] = {STORE_V_TEXT(req->service), STORE_V_TEXT(req->env)};
    if ((rc = store_query_int(dc->cfg.st, "SELECT replicas FROM deploy_targets WHERE service=? "
                                          "AND env=? AND desired_id IS NOT NULL",
                              tk, 2, &current, err)))
        goto out;
    int replicas = req->replicas >= 0 ? req->replicas
                   : current > 0      ? (int)current
                                      : (int)json_integer_value(json_object_get(spec, "replicas"));
    spec_text = json_dumps(spec, JSON_SORT_KEYS | JSON_COMPACT);
    if (!spec_text) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    struct core_buf rb;
    core_buf_init(&rb, 0);
    core_buf_addf(&rb, "%s\n%s", digest, spec_text);
    char rev[65];
    core_sha256_hex(rb.data ? rb.data : "", rb.len, rev);
    core_buf_release(&rb);
    int64_t deadline = req->health_deadline_ms ? req->health_deadline_ms
                                               : DEPLOY_HEALTH_DEADLINE_MS;
    rc = insert_deployment(dc, actor, req->service, req->env, "deploy", ref, digest, rev,
                           replicas, (int)json_integer_value(json_object_get(spec, "max_surge")),
                           (int)json_integer_value(json_object_get(spec, "max_unavailable")),
                           deadline, spec_text, "pending", NULL, 0, id, err);
out:
    free(spec_text);
    json_decref(spec);
    catalog_service_release(&s);
    return rc;
}

struct drow {
    bool found;
    int64_t id;
    char image[300], digest[72], rev[65], state[32];
    char *spec;
    int replicas, surge, unav;
    int64_t deadline;
};

static int drow_fill(void *arg, const struct store_row *row)
{
    struct drow *d = arg;
    d->found = true;
    d->id = store_row_int(row, "id");
    snprintf(d->image, sizeof(d->image), "%s", store_row_text(row, "image") ?: "");
    snprintf(d->digest, sizeof(d->digest), "%s", store_row_text(row, "digest") ?: "");
    snprintf(d->rev, sizeof(d->rev), "%s", store_row_text(row, "rev") ?: "");
    snprintf(d->state, sizeof(d->state), "%s", store_row_text(row, "state") ?: "");
    core_free(d->spec);
    d->spec = core_strdup(store_row_text(row, "spec") ?: "{}");
    d->replicas = (int)store_row_int(row, "replicas");
    d->surge = (int)store_row_int(row, "max_surge");
    d->unav = (int)store_row_int(row, "max_unavailable");
    d->deadline = store_row_int(row, "health_deadline_ms");
    return 1;
}

int deploy_rollback(struct deploy_controller *dc, const struct catalog_actor *actor,
                    const char *service, const char *env, int64_t to, int64_t *id,
                    struct core_err *err)
{
    struct catalog_service s = {0};
    struct drow d = {0};
    int rc = load_service(dc, actor, service, &s, err);
    if (rc)
        return rc;
    if ((rc = check_env(dc->cfg.cat, env, err)))
        goto out;
    int64_t desired = 0, replicas = 0;
    struct store_value k[] = {STORE_V_TEXT(service), STORE_V_TEXT(env)};
    if ((rc = store_query_int(dc->cfg.st, "SELECT COALESCE(desired_id, 0) FROM deploy_targets "
                                          "WHERE service=? AND env=?",
                              k, 2, &desired, err)) ||
        (rc = store_query_int(dc->cfg.st, "SELECT replicas FROM deploy_targets WHERE service=? "
                                          "AND env=?",
                              k, 2, &replicas, err)))
        goto out;
    int64_t cur_rev_id = desired;
    if (to) {
        struct store_value q[] = {STORE_V_INT(to), STORE_V_TEXT(service), STORE_V_TEXT(env)};
        rc = store_query(dc->cfg.st, "SELECT * FROM deployments WHERE id=? AND service=? AND "
                                     "env=? AND digest IS NOT NULL",
                         q, 3, drow_fill, &d, err);
    } else {
        /* the newest succeeded deployment of another revision than the one wanted now */
        struct store_value q[] = {STORE_V_TEXT(service), STORE_V_TEXT(env),
                                  STORE_V_INT(cur_rev_id)};
        rc = store_query(dc->cfg.st,
                         "SELECT * FROM deployments WHERE service=?1 AND env=?2 AND "
                         "state='succeeded' AND kind!='scale' AND rev IS NOT (SELECT rev FROM "
                         "deployments WHERE id=?3) ORDER BY id DESC LIMIT 1",
                         q, 3, drow_fill, &d, err);
    }
    if (rc < 0)
        goto out;
    rc = 0;
    if (!d.found) {
        if (to)
            rc = core_err_set(err, CORE_E_NOTFOUND,
                              "deployment #%lld of %s in %s not found (see 'pave deployments "
                              "list %s')",
                              (long long)to, service, env, service);
        else
            rc = core_err_set(err, CORE_E_NOTFOUND,
                              "nothing to roll back to: %s in %s has no earlier successful "
                              "deployment (see 'pave deployments list %s')",
                              service, env, service);
        goto out;
    }
    rc = insert_deployment(dc, actor, service, env, "rollback", d.image, d.digest, d.rev,
                           replicas > 0 ? (int)replicas : d.replicas, d.surge, d.unav,
                           d.deadline, d.spec, "pending", NULL, d.id, id, err);
out:
    core_free(d.spec);
    catalog_service_release(&s);
    return rc;
}

int deploy_scale(struct deploy_controller *dc, const struct catalog_actor *actor,
                 const char *service, const char *env, int replicas, int64_t *id,
                 struct core_err *err)
{
    struct catalog_service s = {0};
    struct drow d = {0};
    int rc = load_service(dc, actor, service, &s, err);
    if (rc)
        return rc;
    if ((rc = check_env(dc->cfg.cat, env, err)))
        goto out;
    if (replicas < 0 || replicas > 100) {
        rc = core_err_set(err, CORE_E_INVAL, "replicas must be 0..100");
        goto out;
    }
    struct store_value q[] = {STORE_V_TEXT(service), STORE_V_TEXT(env)};
    rc = store_query(dc->cfg.st,
                     "SELECT d.* FROM deployments d JOIN deploy_targets t ON d.id=t.desired_id "
                     "WHERE t.service=? AND t.env=?",
                     q, 2, drow_fill, &d, err);
    if (rc < 0)
        goto out;
    rc = 0;
    if (!d.found) {
        rc = core_err_set(err, CORE_E_NOTFOUND,
                          "%s is not deployed to %s: deploy it first ('pave deploy %s --env %s')",
                          service, env, service, env);
        goto out;
    }
    rc = insert_deployment(dc, actor, service, env, "scale", d.image, d.digest, d.rev, replicas,
                           d.surge, d.unav, d.deadline, NULL, "succeeded", NULL, 0, id, err);
out:
    core_free(d.spec);
    catalog_service_release(&s);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------------ */

static json_t *row_json(const struct store_row *row)
{
    json_t *o = json_object();
    static const char *const text_cols[] = {"service", "env", "kind", "image", "digest",
                                            "actor", "state", "message", "created_at",
                                            "finished_at"};
    json_object_set_new(o, "id", json_integer(store_row_int(row, "id")));
    for (size_t i = 0; i < sizeof(text_cols) / sizeof(text_cols[0]); i++) {
        const char *v = store_row_text(row, text_cols[i]);
        json_object_set_new(o, text_cols[i], v ? json_string(v) : json_null());
    }
    const char *rev = store_row_text(row, "rev");
    char shortrev[13] = "";
    if (rev)
        snprintf(shortrev, sizeof(shortrev), "%.12s", rev);
    json_object_set_new(o, "revision", json_string(shortrev));
    json_object_set_new(o, "replicas", json_integer(store_row_int(row, "replicas")));
    const struct store_value *rb = store_row_get(row, "rollback_of");
    json_object_set_new(o, "rollback_of",
                        rb && rb->type == STORE_INT ? json_integer(rb->i) : json_null());
    return o;
}

static int collect(void *arg, const struct store_row *row)
{
    json_array_append_new(arg, row_json(row));
    return 0;
}

json_t *deploy_list(struct store *st, const char *service, const char *env, int64_t limit,
                    int64_t offset, struct core_err *err)
{
    json_t *items = json_array();
    int64_t total = 0;
    struct store_value v[] = {STORE_V_TEXT(service), STORE_V_TEXT(env), STORE_V_INT(limit),
                              STORE_V_INT(offset)};
    const char *where = "WHERE (?1 IS NULL OR service=?1) AND (?2 IS NULL OR env=?2)";
    char sql[400];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM deployments %s", where);
    if (store_query_int(st, sql, v, 2, &total, err))
        goto fail;
    snprintf(sql, sizeof(sql),
             "SELECT * FROM deployments %s ORDER BY id DESC LIMIT ?3 OFFSET ?4", where);
    if (store_query(st, sql, v, 4, collect, items, err) < 0)
        goto fail;
    json_t *out = json_pack("{s:o,s:I}", "items", items, "total", (json_int_t)total);
    if (offset + (int64_t)json_array_size(items) < total)
        json_object_set_new(out, "next_offset",
                            json_integer(offset + (int64_t)json_array_size(items)));
    return out;
fail:
    json_decref(items);
    return NULL;
}

json_t *deploy_get(struct store *st, int64_t id, struct core_err *err)
{
    json_t *items = json_array();
    struct store_value v[] = {STORE_V_INT(id)};
    if (store_query(st, "SELECT * FROM deployments WHERE id=?", v, 1, collect, items, err) < 0) {
        json_decref(items);
        return NULL;
    }
    json_t *one = json_incref(json_array_get(items, 0));
    json_decref(items);
    if (!one)
        core_err_set(err, CORE_E_NOTFOUND, "deployment #%lld not found", (long long)id);
    return one;
}
