/*
 * The service manifest (pave.yaml): the schema tables and the manifest-specific checks.
 *
 * Validation is driven by static tables of `struct schema_field`, one array per map level (key,
 * type, flags, bounds, default, validator, one-line doc), walked by the schema module
 * (schema_parse()), which reports every problem at once at the file:line:column of the offending
 * node. This file holds the tables, the cross-field rules that only make sense for a manifest
 * (ports, health timing, rollout bounds, autoscale range, dependencies, SLOs), and the summary
 * copied out of a valid tree. The same tables generate the key reference in docs/manifest.md
 * (catalog_manifest_schema_markdown()).
 */
#include "catalog/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The canonical JSON is at most a few times larger than the input (escapes). */
#define MANIFEST_JSON_MAX (16u * CATALOG_MANIFEST_MAX)

static void check_tag_key(struct schema_ctx *ctx, const struct schema_field *f,
                          const struct core_node *n, const char *path);
static void check_ports(struct schema_ctx *ctx, const struct schema_field *f,
                        const struct core_node *n, const char *path);
static void check_health(struct schema_ctx *ctx, const struct schema_field *f,
                         const struct core_node *n, const char *path);
static void check_run(struct schema_ctx *ctx, const struct schema_field *f,
                      const struct core_node *n, const char *path);
static void check_rollout(struct schema_ctx *ctx, const struct schema_field *f,
                          const struct core_node *n, const char *path);
static void check_autoscale(struct schema_ctx *ctx, const struct schema_field *f,
                            const struct core_node *n, const char *path);
static void check_spec(struct schema_ctx *ctx, const struct schema_field *f,
                       const struct core_node *n, const char *path);
static void check_dependency(struct schema_ctx *ctx, const struct schema_field *f,
                             const struct core_node *n, const char *path);
static void check_dependencies(struct schema_ctx *ctx, const struct schema_field *f,
                               const struct core_node *n, const char *path);
static void check_availability(struct schema_ctx *ctx, const struct schema_field *f,
                               const struct core_node *n, const char *path);

static const char *const api_versions[] = {CATALOG_API_VERSION, NULL};
static const char *const kinds[] = {"Service", NULL};
static const char *const protocols[] = {"http", "tcp", "grpc", NULL};
static const char *const strategies[] = {"rolling", "recreate", "canary", NULL};

static const struct schema_field tag_value = {
    .noun = "tag value", .type = SCHEMA_STRING, .max = 256,
    .doc = "tag value: a string of at most 256 characters (quote numbers: \"1234\")",
};

static const struct schema_field metadata_fields[] = {
    {.key = "name", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED,
     .check = schema_check_dns_label, .example = "name: payments-api",
     .doc = "service name, unique in the catalog; a DNS label (1-63 of a-z, 0-9, '-')"},
    {.key = "team", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED,
     .check = schema_check_dns_label, .example = "team: payments",
     .doc = "owning team; a DNS label naming a team that exists in the catalog"},
    {.key = "tier", .type = SCHEMA_INT, .min = 1, .max = 4, .dflt = "3",
     .doc = "criticality; 1 is the most critical"},
    {.key = "description", .type = SCHEMA_STRING, .flags = SCHEMA_MULTILINE, .max = 500,
     .doc = "short summary shown in the portal, at most 500 characters"},
    {.key = "tags", .type = SCHEMA_DICT, .max = 64, .key_check = check_tag_key, .item = &tag_value,
     .doc = "tags for cost allocation and policies; keys 1-63 of a-z, 0-9, '-', '.', '_', '/'"},
    {0},
};

static const struct schema_field build_fields[] = {
    {.key = "pipeline", .type = SCHEMA_STRING, .max = 1024, .check = schema_check_relpath,
     .doc = "pipeline definition, a path relative to the repository root"},
    {0},
};

static const struct schema_field command_item = {
    .noun = "command argument", .type = SCHEMA_STRING, .min = 1, .max = 4096,
    .doc = "a program argument",
};

static const struct schema_field port_fields[] = {
    {.key = "name", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED,
     .check = schema_check_dns_label, .example = "name: http",
     .doc = "port name, unique within the service; a DNS label"},
    {.key = "port", .type = SCHEMA_INT, .flags = SCHEMA_REQUIRED, .min = 1, .max = 65535,
     .example = "port: 8080", .doc = "port number the process listens on, unique"},
    {.key = "protocol", .type = SCHEMA_STRING, .choices = protocols, .dflt = "http",
     .doc = "wire protocol, for load balancing and health checks"},
    {0},
};

static const struct schema_field port_item = {
    .noun = "port", .type = SCHEMA_MAP, .sub = port_fields, .doc = "one listening port",
};

static const struct schema_field health_fields[] = {
    {.key = "path", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED, .max = 1024,
     .check = schema_check_urlpath, .example = "path: /healthz",
     .doc = "HTTP path probed for health; starts with '/'"},
    {.key = "interval", .type = SCHEMA_DURATION, .min = 1, .dflt = "10s",
     .doc = "time between probes"},
    {.key = "timeout", .type = SCHEMA_DURATION, .min = 1, .dflt = "1s",
     .doc = "time a probe may take; must be less than interval"},
    {0},
};

static const struct schema_field resources_fields[] = {
    {.key = "cpu", .type = SCHEMA_CPU,
     .doc = "CPU limit in cores (0.5, 2) or millicores (\"500m\")"},
    {.key = "memory", .type = SCHEMA_BYTES,
     .doc = "memory limit in bytes with an optional unit (\"256Mi\", \"1Gi\", \"500M\")"},
    {0},
};

static const struct schema_field env_value = {
    .noun = "env value", .type = SCHEMA_STRING, .flags = SCHEMA_MULTILINE, .max = 4096,
    .doc = "value: a string (quote numbers and booleans: \"8080\", \"true\")",
};

static const struct schema_field secret_item = {
    .noun = "secret name", .type = SCHEMA_STRING, .check = schema_check_env_name,
    .doc = "name of a secret delivered to each replica as the file /run/secrets/<name>",
};

static const struct schema_field run_fields[] = {
    {.key = "command", .type = SCHEMA_LIST, .min = 1, .max = 256, .item = &command_item,
     .doc = "program and arguments, a non-empty list of strings"},
    {.key = "ports", .type = SCHEMA_LIST, .max = 64, .item = &port_item, .check = check_ports,
     .doc = "listening ports; names and numbers must be unique"},
    {.key = "health", .type = SCHEMA_MAP, .sub = health_fields, .check = check_health,
     .doc = "HTTP health check"},
    {.key = "resources", .type = SCHEMA_MAP, .sub = resources_fields,
     .doc = "resource limits per replica"},
    {.key = "env", .type = SCHEMA_DICT, .max = 256, .key_check = schema_check_env_name,
     .item = &env_value,
     .doc = "environment variables; names match `[A-Za-z_][A-Za-z0-9_]*`"},
    {.key = "secrets", .type = SCHEMA_LIST, .max = 256, .item = &secret_item,
     .check = schema_check_unique,
     .doc = "secret names, each delivered as a read-only file /run/secrets/<name> on a tmpfs "
            "(never in the environment); unique, not also in env"},
    {0},
};

static const struct schema_field rollout_fields[] = {
    {.key = "strategy", .type = SCHEMA_STRING, .choices = strategies, .dflt = "rolling",
     .doc = "how running replicas are replaced by new ones"},
    {.key = "maxSurge", .type = SCHEMA_INT, .min = 0, .max = SCHEMA_UNBOUNDED, .dflt = "1",
     .doc = "extra replicas allowed during a rolling update"},
    {.key = "maxUnavailable", .type = SCHEMA_INT, .min = 0, .max = SCHEMA_UNBOUNDED, .dflt = "0",
     .doc = "replicas that may be down during a rolling update; not both 0 with maxSurge"},
    {0},
};

static const struct schema_field autoscale_fields[] = {
    {.key = "min", .type = SCHEMA_INT, .flags = SCHEMA_REQUIRED, .min = 1, .max = 100,
     .example = "min: 2", .doc = "fewest replicas"},
    {.key = "max", .type = SCHEMA_INT, .flags = SCHEMA_REQUIRED, .min = 1, .max = 100,
     .example = "max: 10", .doc = "most replicas; at least min"},
    {.key = "cpu", .type = SCHEMA_INT, .min = 1, .max = 100, .dflt = "80",
     .doc = "target average CPU utilization, in percent of the CPU request"},
    {0},
};

static const struct schema_field expose_path_item = {
    .noun = "path", .type = SCHEMA_STRING, .max = 1024, .check = schema_check_urlpath,
    .doc = "URL path prefix routed to the service; starts with '/'",
};

static const struct schema_field expose_fields[] = {
    {.key = "host", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED, .check = schema_check_dns_name,
     .example = "host: payments.internal",
     .doc = "host name routed to the service; DNS labels joined by dots, at most 253"},
    {.key = "paths", .type = SCHEMA_LIST, .min = 1, .max = 64, .item = &expose_path_item,
     .dflt = "[\"/\"]",
     .check = schema_check_unique, .doc = "URL path prefixes; each starts with '/', no duplicates"},
    {.key = "tls", .type = SCHEMA_BOOL, .dflt = "false",
     .doc = "serve the host over TLS (guard-rail policies may require it for public hosts)"},
    {0},
};

static const struct schema_field dependency_fields[] = {
    {.key = "service", .type = SCHEMA_STRING, .check = schema_check_dns_label,
     .doc = "another service in the catalog (exactly one of service or resource)"},
    {.key = "resource", .noun = "resource type", .type = SCHEMA_STRING,
     .check = schema_check_dns_label,
     .doc = "type of a platform resource, e.g. postgres, redis (exactly one of service or "
            "resource)"},
    {.key = "name", .type = SCHEMA_STRING, .check = schema_check_dns_label,
     .doc = "resource instance name, required with resource; a DNS label"},
    {.key = "version", .type = SCHEMA_STRING, .min = 1, .max = 64,
     .doc = "wanted resource version, e.g. \"16\" (quote numbers)"},
    {0},
};

static const struct schema_field dependency_item = {
    .noun = "dependency", .type = SCHEMA_MAP, .sub = dependency_fields, .check = check_dependency,
    .doc = "one dependency",
};

static const struct schema_field slo_fields[] = {
    {.key = "availability", .type = SCHEMA_NUMBER, .check = check_availability,
     .doc = "availability objective in percent, above 0 and below 100 (99.9)"},
    {.key = "latencyP99", .type = SCHEMA_DURATION, .min = 1,
     .doc = "99th percentile latency objective"},
    {0},
};

static const struct schema_field logs_fields[] = {
    {.key = "redact", .type = SCHEMA_BOOL, .dflt = "true",
     .doc = "the observability pipeline redacts personal data and secrets in this service's logs; "
            "false asks it not to (guard-rail policies refuse that for confidential data)"},
    {0},
};

static const struct schema_field spec_fields[] = {
    {.key = "build", .type = SCHEMA_MAP, .sub = build_fields, .doc = "how CI builds the service"},
    {.key = "run", .type = SCHEMA_MAP, .sub = run_fields, .check = check_run,
     .doc = "how the runtime runs the service"},
    {.key = "replicas", .type = SCHEMA_INT, .min = 0, .max = 100, .dflt = "1",
     .doc = "number of instances"},
    {.key = "autoscale", .type = SCHEMA_MAP, .sub = autoscale_fields, .check = check_autoscale,
     .doc = "scale between min and max replicas on CPU use (Kubernetes only)"},
    {.key = "rollout", .type = SCHEMA_MAP, .sub = rollout_fields, .check = check_rollout,
     .doc = "how new versions replace old ones"},
    {.key = "expose", .type = SCHEMA_MAP, .sub = expose_fields,
     .doc = "routing from the ingress to the service"},
    {.key = "dependencies", .type = SCHEMA_LIST, .max = 128, .item = &dependency_item,
     .check = check_dependencies, .doc = "services and resources this service uses"},
    {.key = "strict", .type = SCHEMA_BOOL, .dflt = "false",
     .doc = "refuse callers that do not list this service in their spec.dependencies"},
    {.key = "slo", .type = SCHEMA_MAP, .sub = slo_fields, .doc = "service level objectives"},
    {.key = "logs", .type = SCHEMA_MAP, .sub = logs_fields,
     .doc = "how the service's logs are handled"},
    {.key = "docs", .type = SCHEMA_STRING, .max = 1024, .check = schema_check_relpath,
     .doc = "documentation folder, a path relative to the repository root"},
    {0},
};

static const struct schema_field root_fields[] = {
    {.key = "apiVersion", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED, .choices = api_versions,
     .example = "apiVersion: " CATALOG_API_VERSION,
     .doc = "manifest format version"},
    {.key = "kind", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED, .choices = kinds,
     .example = "kind: Service", .doc = "kind of object described"},
    {.key = "metadata", .type = SCHEMA_MAP, .flags = SCHEMA_REQUIRED, .sub = metadata_fields,
     .example = "metadata: { name: payments-api, team: payments }",
     .doc = "who the service is and who owns it"},
    {.key = "spec", .type = SCHEMA_MAP, .sub = spec_fields, .check = check_spec,
     .doc = "what to build, run and expose"},
    /* the document itself (see struct schema_field) */
    {.noun = "manifest", .example = "apiVersion: " CATALOG_API_VERSION,
     .doc = "keep pave.yaml small; move long text into the docs folder"},
};


/* ---- semantic checks ------------------------------------------------------------------- */

/* A valid DNS label, or NULL: the cross-checks only look at values that passed their own. */
static const char *label_value(const struct core_node *n)
{
    return schema_is_string(n) && core_is_dns_label(n->value) ? n->value : NULL;
}

static void check_tag_key(struct schema_ctx *ctx, const struct schema_field *f,
                          const struct core_node *n, const char *path)
{
    char s[SCHEMA_SHOW_BUF];
    const char *k = n->value;
    bool ok = *k && strlen(k) <= 63;
    bool upper = false;
    for (const char *p = k; ok && *p; p++) {
        upper |= *p >= 'A' && *p <= 'Z';
        ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
             *p == '_' || *p == '/';
    }
    if (!ok)
        schema_report(ctx, n, path, upper ? "tag keys are lower case" : NULL,
                      "invalid tag key '%s': use 1-63 characters of a-z, 0-9, '-', '.', '_' "
                      "and '/'",
                      schema_show(s, sizeof(s), k));
}

static void check_ports(struct schema_ctx *ctx, const struct schema_field *f,
                        const struct core_node *n, const char *path)
{
    char s[SCHEMA_SHOW_BUF], hint[SCHEMA_HINT_BUF], ipath[SCHEMA_PATH_BUF];
    for (size_t i = 1; i < n->n; i++) {
        const struct core_node *name = schema_map_get(n->items[i], "name", NULL);
        const struct core_node *port = schema_map_get(n->items[i], "port", NULL);
        int64_t num = 0, other = 0;
        bool has_num = core_scalar_is_int(port, &num) && num >= 1 && num <= 65535;
        bool name_dup = false, num_dup = false;
        for (size_t j = 0; j < i; j++) {
            const struct core_node *oname = schema_map_get(n->items[j], "name", NULL);
            const struct core_node *oport = schema_map_get(n->items[j], "port", NULL);
            if (!name_dup && label_value(name) && label_value(oname) &&
                strcmp(name->value, oname->value) == 0) {
                name_dup = true;
                snprintf(ipath, sizeof(ipath), "%s[%zu].name", path, i);
                snprintf(hint, sizeof(hint), "port names must be unique; first used at line %d",
                         oname->line);
                schema_report(ctx, name, ipath, hint, "duplicate port name '%s'",
                              schema_show(s, sizeof(s), name->value));
            }
            if (!num_dup && has_num && core_scalar_is_int(oport, &other) && other == num) {
                num_dup = true;
                snprintf(ipath, sizeof(ipath), "%s[%zu].port", path, i);
                snprintf(hint, sizeof(hint), "port numbers must be unique; first used at line %d",
                         oport->line);
                schema_report(ctx, port, ipath, hint, "duplicate port %lld", (long long)num);
            }
        }
    }
}

/* Effective duration of an optional key: its valid value, the default, or false if invalid. */
static bool duration_or(const struct core_node *map, const char *key, int64_t dflt, int64_t *out,
                        const struct core_node **node)
{
    *node = schema_map_get(map, key, NULL);
    if (!*node) {
        *out = dflt;
        return true;
    }
    return schema_is_string(*node) && core_parse_duration_ms((*node)->value, out) == 0 && *out > 0;
}

static void check_health(struct schema_ctx *ctx, const struct schema_field *f,
                         const struct core_node *n, const char *path)
{
    const struct core_node *in, *tn;
    int64_t interval, timeout;
    char ipath[SCHEMA_PATH_BUF];
    if (!duration_or(n, "interval", 10000, &interval, &in) ||
        !duration_or(n, "timeout", 1000, &timeout, &tn) || timeout < interval)
        return;
    const struct core_node *at = tn ? tn : in ? in : n;
    schema_join_path(ipath, sizeof(ipath), path, tn ? "timeout" : "interval");
    schema_report(ctx, at, ipath, "a probe must finish before the next one starts",
                  "timeout (%lldms) must be less than interval (%lldms)", (long long)timeout,
                  (long long)interval);
}

static void check_run(struct schema_ctx *ctx, const struct schema_field *f,
                      const struct core_node *n, const char *path)
{
    const struct core_node *env = schema_map_get(n, "env", NULL);
    const struct core_node *secrets = schema_map_get(n, "secrets", NULL);
    char s[SCHEMA_SHOW_BUF], ipath[SCHEMA_PATH_BUF];
    if (!env || env->kind != CORE_NODE_MAP || !secrets || secrets->kind != CORE_NODE_SEQ)
        return;
    for (size_t i = 0; i < secrets->n; i++) {
        const struct core_node *sn = secrets->items[i];
        bool seen = !schema_is_string(sn);
        for (size_t j = 0; j < i && !seen; j++)
            seen = schema_is_string(secrets->items[j]) &&
                   !strcmp(secrets->items[j]->value, sn->value);
        if (seen || !core_node_get(env, sn->value))
            continue; /* a repeated secret is reported as a duplicate already */
        snprintf(ipath, sizeof(ipath), "%s.secrets[%zu]", path, i);
        schema_report(ctx, sn, ipath, "remove it from env; secret values never go in the manifest",
                      "'%s' is both in env and in secrets", schema_show(s, sizeof(s), sn->value));
    }
}

static void check_rollout(struct schema_ctx *ctx, const struct schema_field *f,
                          const struct core_node *n, const char *path)
{
    const struct core_node *strategy = schema_map_get(n, "strategy", NULL);
    const struct core_node *surge = schema_map_get(n, "maxSurge", NULL);
    const struct core_node *unavail = schema_map_get(n, "maxUnavailable", NULL);
    int64_t s = 1, u = 0;
    char ipath[SCHEMA_PATH_BUF];
    if (strategy && !(schema_is_string(strategy) && strcmp(strategy->value, "rolling") == 0))
        return;
    if ((surge && !core_scalar_is_int(surge, &s)) || (unavail && !core_scalar_is_int(unavail, &u)))
        return;
    if (s != 0 || u != 0)
        return;
    schema_join_path(ipath, sizeof(ipath), path, unavail ? "maxUnavailable" : "maxSurge");
    schema_report(ctx, unavail ? unavail : surge, ipath,
                  "set maxSurge: 1 to start a new replica before stopping an old one",
                  "maxSurge and maxUnavailable cannot both be 0 with strategy 'rolling'" );
}

/* Valid min and max of an autoscale map (each within its bounds), or false. */
static bool autoscale_range(const struct core_node *n, const struct core_node **minn,
                            const struct core_node **maxn, int64_t *min, int64_t *max)
{
    *minn = schema_map_get(n, "min", NULL);
    *maxn = schema_map_get(n, "max", NULL);
    return core_scalar_is_int(*minn, min) && *min >= 1 && *min <= 100 &&
           core_scalar_is_int(*maxn, max) && *max >= 1 && *max <= 100;
}

static void check_autoscale(struct schema_ctx *ctx, const struct schema_field *f,
                            const struct core_node *n, const char *path)
{
    const struct core_node *minn, *maxn;
    int64_t min, max;
    char ipath[SCHEMA_PATH_BUF];
    if (!autoscale_range(n, &minn, &maxn, &min, &max) || max >= min)
        return;
    schema_join_path(ipath, sizeof(ipath), path, "max");
    schema_report(ctx, maxn, ipath, "raise max or lower min",
                  "autoscale max (%lld) must be at least min (%lld)", (long long)max,
                  (long long)min);
}

/* Rules across spec's sections: an explicit replicas count must lie within autoscale's range. */
static void check_spec(struct schema_ctx *ctx, const struct schema_field *f,
                       const struct core_node *n, const char *path)
{
    const struct core_node *replicas = schema_map_get(n, "replicas", NULL);
    const struct core_node *as = schema_map_get(n, "autoscale", NULL);
    const struct core_node *minn, *maxn;
    int64_t r, min, max;
    char ipath[SCHEMA_PATH_BUF], hint[SCHEMA_HINT_BUF];
    if (!core_scalar_is_int(replicas, &r) || r < 0 || r > 100 ||
        !autoscale_range(as, &minn, &maxn, &min, &max) || max < min || (r >= min && r <= max))
        return;
    schema_join_path(ipath, sizeof(ipath), path, "replicas");
    snprintf(hint, sizeof(hint),
             "spec.autoscale keeps the count between %lld and %lld; remove replicas or move "
             "it into that range",
             (long long)min, (long long)max);
    schema_report(ctx, replicas, ipath, hint,
                  "replicas (%lld) is outside autoscale min (%lld) and max (%lld)", (long long)r,
                  (long long)min, (long long)max);
}

static void check_dependency(struct schema_ctx *ctx, const struct schema_field *f,
                             const struct core_node *n, const char *path)
{
    const struct core_node *sk, *rk, *nk, *vk;
    const struct core_node *svc = schema_map_get(n, "service", &sk);
    const struct core_node *res = schema_map_get(n, "resource", &rk);
    const struct core_node *name = schema_map_get(n, "name", &nk);
    schema_map_get(n, "version", &vk);
    char ipath[SCHEMA_PATH_BUF];
    if (svc && res) {
        schema_join_path(ipath, sizeof(ipath), path, "resource");
        schema_report(ctx, rk, ipath, "split it into two dependencies",
                      "a dependency has exactly one of 'service' or 'resource', not both" );
        return;
    }
    if (!svc && !res) {
        schema_report(ctx, n, path,
                      "e.g. '- service: ledger' or '- resource: postgres' with 'name'",
                      "a dependency needs exactly one of 'service' or 'resource'");
        return;
    }
    if (svc && (nk || vk)) {
        schema_join_path(ipath, sizeof(ipath), path, nk ? "name" : "version");
        schema_report(ctx, nk ? nk : vk, ipath, "the service name goes in 'service'",
                      "'%s' only applies to resource dependencies", nk ? "name" : "version");
    }
    if (res && !name) {
        schema_join_path(ipath, sizeof(ipath), path, "name");
        schema_report(ctx, rk, ipath, "name the resource instance, e.g. 'name: payments-db'",
                      "missing required key 'name' for a resource dependency" );
    }
}

static void check_dependencies(struct schema_ctx *ctx, const struct schema_field *f,
                               const struct core_node *n, const char *path)
{
    char s[SCHEMA_SHOW_BUF], hint[SCHEMA_HINT_BUF], ipath[SCHEMA_PATH_BUF];
    for (size_t i = 1; i < n->n; i++) {
        const char *keys[] = {"service", "name"};
        for (size_t k = 0; k < 2; k++) {
            const struct core_node *a = schema_map_get(n->items[i], keys[k], NULL);
            if (!label_value(a) || (k == 1 && schema_map_get(n->items[i], "service", NULL)))
                continue;
            for (size_t j = 0; j < i; j++) {
                const struct core_node *b = schema_map_get(n->items[j], keys[k], NULL);
                if (!label_value(b) || (k == 1 && schema_map_get(n->items[j], "service", NULL)) ||
                    strcmp(a->value, b->value) != 0)
                    continue;
                snprintf(ipath, sizeof(ipath), "%s[%zu].%s", path, i, keys[k]);
                snprintf(hint, sizeof(hint), "already listed at line %d", b->line);
                schema_report(ctx, a, ipath, hint, "duplicate dependency on %s '%s'",
                              k == 0 ? "service" : "resource", schema_show(s, sizeof(s), a->value));
                break;
            }
        }
    }
}

static void check_availability(struct schema_ctx *ctx, const struct schema_field *f,
                               const struct core_node *n, const char *path)
{
    double d = 0;
    char s[SCHEMA_SHOW_BUF];
    core_scalar_is_number(n, &d);
    if (d > 0 && d < 100)
        return;
    schema_report(ctx, n, path, "a percentage such as 99.9; 100 cannot be met",
                  "availability must be above 0 and below 100 (percent), got %s",
                  schema_show(s, sizeof(s), n->value));
}


/* ---- the manifest ---------------------------------------------------------------------- */

void catalog_manifest_init(struct catalog_manifest *m)
{
    memset(m, 0, sizeof(*m));
}

void catalog_manifest_release(struct catalog_manifest *m)
{
    core_free(m->file);
    core_free(m->name);
    core_free(m->team);
    core_free(m->description);
    core_free(m->json);
    catalog_manifest_init(m);
}

/* Copies the summary fields out of a validated tree. */
static int fill(struct catalog_manifest *m, const char *file, const struct core_node *root)
{
    const struct core_node *meta = core_node_get(root, "metadata");
    const struct core_node *name = core_node_get(meta, "name");
    const struct core_node *team = core_node_get(meta, "team");
    const struct core_node *tier = core_node_get(meta, "tier");
    const struct core_node *desc = core_node_get(meta, "description");
    struct core_buf json;
    int64_t t = 3;
    int rc = CORE_E_NOMEM;

    core_buf_init(&json, MANIFEST_JSON_MAX);
    if (tier)
        core_scalar_is_int(tier, &t);
    m->tier = (int)t;
    m->team_line = team->line;
    m->team_col = team->col;
    if (!(m->file = core_strdup(file)) || !(m->name = core_strdup(name->value)) ||
        !(m->team = core_strdup(team->value)) ||
        (desc && !(m->description = core_strdup(desc->value))))
        goto out;
    if ((rc = core_node_to_json(root, &json)))
        goto out;
    core_sha256_hex(json.data, json.len, m->digest);
    m->json = core_buf_detach(&json, NULL);
    rc = m->json ? 0 : CORE_E_NOMEM;
out:
    core_buf_release(&json);
    return rc;
}

int catalog_manifest_parse(const char *file, const char *text, size_t len,
                           struct catalog_manifest *m, struct schema_diags *diags,
                           struct core_err *err)
{
    struct core_doc doc = {0};
    const char *name = file ? file : "<input>";
    int rc;

    catalog_manifest_init(m);
    rc = schema_parse(name, text, len, CATALOG_MANIFEST_MAX, root_fields, &doc, diags, err);
    if (rc)
        goto out;
    rc = fill(m, name, doc.root);
    if (rc)
        core_err_set(err, rc, "manifest '%s': out of memory", name);
out:
    core_doc_release(&doc);
    if (rc)
        catalog_manifest_release(m);
    return rc;
}

/* ---- the reference --------------------------------------------------------------------- */

/* Renders every key of pave.yaml as Markdown table rows, walking the same tables as the
 * validator. returns: 0, CORE_E_NOMEM or CORE_E_TOO_BIG (from out). */
int catalog_manifest_schema_markdown(struct core_buf *out)
{
    return schema_markdown(root_fields, out);
}
