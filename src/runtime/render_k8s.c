/* The Kubernetes renderer: a service's canonical manifest JSON to Deployment, Service, Ingress,
 * PodDisruptionBudget, NetworkPolicy and HorizontalPodAutoscaler objects (docs/kubernetes.md). */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "runtime/runtime.h"

#define MIB (1024 * 1024)

/* What every object is built from, plus a sticky out-of-memory flag so the builders stay flat. */
struct render {
    json_t *m;         /* the manifest */
    const char *name;  /* metadata.name */
    const char *team;
    const char *env;
    char ns[128];      /* "<team>-<env>" */
    char image[1024];
    json_t *ports;     /* spec.run.ports or NULL */
    json_t *http_port; /* the first http port item, else the first port, or NULL */
    json_int_t replicas; /* spec.replicas, or autoscale.min when the HPA owns the count */
    json_int_t max_unavailable;
    bool autoscale;      /* spec.autoscale is set: HPA rendered, Deployment replicas left out */
    json_int_t as_min, as_max, as_cpu;
    bool nomem;
};

/* Sets key on obj, stealing val; a NULL val or a failed set marks the render out of memory. */
static void put(struct render *rd, json_t *obj, const char *key, json_t *val)
{
    if (!obj || !val || json_object_set_new(obj, key, val))
        rd->nomem = true;
}

static void push(struct render *rd, json_t *arr, json_t *val)
{
    if (!arr || !val || json_array_append_new(arr, val))
        rd->nomem = true;
}

static json_t *dig(json_t *v, const char *a, const char *b, const char *c)
{
    v = json_object_get(v, a);
    if (b)
        v = json_object_get(v, b);
    if (c)
        v = json_object_get(v, c);
    return v;
}

/* Kubernetes label value: empty, or at most 63 of [A-Za-z0-9-_.] starting and ending with an
 * alphanumeric. */
static bool label_value_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return true;
    if (n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
            return false;
    return true;
}

/* Kubernetes label key: [prefix/]name, prefix a DNS subdomain of at most 253, name a non-empty
 * label value. */
static bool label_key_ok(const char *s)
{
    const char *slash = strchr(s, '/');
    const char *name = slash ? slash + 1 : s;
    if (!*name || !label_value_ok(name) || strchr(name, '/'))
        return false;
    if (!slash)
        return true;
    size_t plen = (size_t)(slash - s);
    if (plen == 0 || plen > 253)
        return false;
    char label[254];
    size_t ll = 0;
    for (size_t i = 0; i <= plen; i++) {
        if (i == plen || s[i] == '.') {
            label[ll] = 0;
            if (!core_is_dns_label(label))
                return false;
            ll = 0;
        } else {
            label[ll++] = s[i];
        }
    }
    return true;
}

/* IANA service name, which Kubernetes requires of port names: at most 15 of [a-z0-9-], at least
 * one letter, no leading, trailing or doubled '-'. */
static bool port_name_ok(const char *s)
{
    size_t n = strlen(s);
    bool letter = false;
    if (n == 0 || n > 15 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 'a' && s[i] <= 'z')
            letter = true;
        else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
            return false;
        if (s[i] == '-' && s[i + 1] == '-')
            return false;
    }
    return letter;
}

/* The port's Kubernetes name: the manifest's when valid, else "p-<number>". */
static void port_name(json_t *p, char *out, size_t outsz)
{
    const char *n = json_string_value(json_object_get(p, "name"));
    if (n && port_name_ok(n))
        snprintf(out, outsz, "%s", n);
    else
        snprintf(out, outsz, "p-%lld", (long long)json_integer_value(json_object_get(p, "port")));
}

static json_t *selector_labels(struct render *rd)
{
    return json_pack("{s:s}", "app.kubernetes.io/name", rd->name);
}

/* The platform's labels, then every manifest tag that is a valid label and not already set. */
static json_t *labels(struct render *rd)
{
    json_t *l = json_pack("{s:s,s:s,s:s,s:s}", "app.kubernetes.io/name", rd->name,
                          "app.kubernetes.io/part-of", "pave", "pave.dev/team", rd->team,
                          "pave.dev/env", rd->env);
    const char *k;
    json_t *v;
    json_object_foreach (dig(rd->m, "metadata", "tags", NULL), k, v) {
        const char *s = json_string_value(v);
        if (l && s && label_key_ok(k) && label_value_ok(s) && !json_object_get(l, k))
            put(rd, l, k, json_string(s));
    }
    if (!l)
        rd->nomem = true;
    return l;
}

static json_t *object(struct render *rd, const char *api_version, const char *kind)
{
    json_t *o = json_pack("{s:s,s:s,s:{s:s,s:s}}", "apiVersion", api_version, "kind", kind,
                          "metadata", "name", rd->name, "namespace", rd->ns);
    put(rd, json_object_get(o, "metadata"), "labels", labels(rd));
    if (!o)
        rd->nomem = true;
    return o;
}

/* Whole seconds, rounded up, at least 1. */
static json_int_t seconds(const char *duration, json_int_t dflt_ms)
{
    int64_t ms = dflt_ms;
    if (duration && core_parse_duration_ms(duration, &ms))
        ms = dflt_ms;
    json_int_t s = (ms + 999) / 1000;
    return s < 1 ? 1 : s;
}

static int resources(struct render *rd, json_t *container, struct core_err *err)
{
    json_t *res = dig(rd->m, "spec", "run", "resources");
    if (!json_is_object(res))
        return 0;
    json_t *q = json_object();
    json_t *cpu = json_object_get(res, "cpu");
    json_t *mem = json_object_get(res, "memory");
    char text[64];
    int64_t v = 0;
    if (cpu) {
        if (json_is_string(cpu))
            snprintf(text, sizeof(text), "%s", json_string_value(cpu));
        else if (json_is_integer(cpu))
            snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(cpu));
        else
            snprintf(text, sizeof(text), "%.9g", json_real_value(cpu));
        if (core_parse_millicores(text, &v) || v <= 0) {
            json_decref(q);
            return core_err_set(err, CORE_E_INVAL, "invalid spec.run.resources.cpu '%s'", text);
        }
        snprintf(text, sizeof(text), "%lldm", (long long)v);
        put(rd, q, "cpu", json_string(text));
    }
    if (mem) {
        if (json_is_string(mem))
            snprintf(text, sizeof(text), "%s", json_string_value(mem));
        else
            snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(mem));
        if (core_parse_bytes(text, &v) || v <= 0) {
            json_decref(q);
            return core_err_set(err, CORE_E_INVAL, "invalid spec.run.resources.memory '%s'",
                                text);
        }
        snprintf(text, sizeof(text), "%lldMi", (long long)((v + MIB - 1) / MIB));
        put(rd, q, "memory", json_string(text));
    }
    if (json_object_size(q))
        put(rd, container, "resources", json_pack("{s:O,s:O}", "requests", q, "limits", q));
    json_decref(q);
    return 0;
}

static json_t *probe(struct render *rd, json_t *health, json_int_t port)
{
    return json_pack("{s:{s:s,s:I},s:I,s:I}", "httpGet", "path",
                     json_string_value(json_object_get(health, "path")), "port", port,
                     "periodSeconds",
                     seconds(json_string_value(json_object_get(health, "interval")), 10000),
                     "timeoutSeconds",
                     seconds(json_string_value(json_object_get(health, "timeout")), 1000));
}

static json_t *container(struct render *rd, struct core_err *err)
{
    json_t *run = dig(rd->m, "spec", "run", NULL);
    json_t *c = json_pack("{s:s,s:s}", "name", rd->name, "image", rd->image);
    if (!c) {
        rd->nomem = true;
        return NULL;
    }
    json_t *cmd = json_object_get(run, "command");
    if (json_is_array(cmd) && json_array_size(cmd))
        put(rd, c, "command", json_deep_copy(cmd));
    if (json_array_size(rd->ports)) {
        json_t *ports = json_array();
        size_t i;
        json_t *p;
        json_array_foreach (rd->ports, i, p) {
            char pn[32];
            port_name(p, pn, sizeof(pn));
            push(rd, ports,
                 json_pack("{s:s,s:I,s:s}", "name", pn, "containerPort",
                           json_integer_value(json_object_get(p, "port")), "protocol", "TCP"));
        }
        put(rd, c, "ports", ports);
    }
    json_t *env = json_array();
    const char *k;
    json_t *v;
    json_object_foreach (json_object_get(run, "env"), k, v)
        push(rd, env, json_pack("{s:s,s:s}", "name", k, "value", json_string_value(v)));
    char secret[128];
    snprintf(secret, sizeof(secret), "%s-secrets", rd->name);
    size_t i;
    json_array_foreach (json_object_get(run, "secrets"), i, v)
        push(rd, env,
             json_pack("{s:s,s:{s:{s:s,s:s}}}", "name", json_string_value(v), "valueFrom",
                       "secretKeyRef", "name", secret, "key", json_string_value(v)));
    if (json_array_size(env))
        put(rd, c, "env", env);
    else
        json_decref(env);
    if (resources(rd, c, err)) {
        json_decref(c);
        return NULL;
    }
    json_t *health = json_object_get(run, "health");
    if (json_is_object(health) && rd->http_port) {
        json_int_t port = json_integer_value(json_object_get(rd->http_port, "port"));
        put(rd, c, "readinessProbe", probe(rd, health, port));
        put(rd, c, "livenessProbe", probe(rd, health, port));
    }
    return c;
}

static json_t *deployment(struct render *rd, struct core_err *err)
{
    json_t *d = object(rd, "apps/v1", "Deployment");
    json_t *rollout = dig(rd->m, "spec", "rollout", NULL);
    const char *strategy = json_string_value(json_object_get(rollout, "strategy"));
    json_t *st;
    if (strategy && strcmp(strategy, "recreate") == 0) {
        st = json_pack("{s:s}", "type", "Recreate");
    } else {
        json_t *surge = json_object_get(rollout, "maxSurge");
        st = json_pack("{s:s,s:{s:I,s:I}}", "type", "RollingUpdate", "rollingUpdate", "maxSurge",
                       surge ? json_integer_value(surge) : (json_int_t)1, "maxUnavailable",
                       rd->max_unavailable);
    }
    json_t *c = container(rd, err);
    if (!c && !rd->nomem) {
        json_decref(st);
        json_decref(d);
        return NULL;
    }
    json_t *tmeta = json_object();
    put(rd, tmeta, "labels", labels(rd));
    put(rd, d, "spec",
        json_pack("{s:I,s:{s:o},s:o,s:{s:o,s:{s:[o]}}}", "replicas", rd->replicas, "selector",
                  "matchLabels", selector_labels(rd), "strategy", st, "template", "metadata",
                  tmeta, "spec", "containers", c));
    /* With an HPA the Deployment must not carry replicas: every apply would reset the count
     * the HPA chose (the Kubernetes docs recommend leaving it out). */
    if (rd->autoscale)
        json_object_del(json_object_get(d, "spec"), "replicas");
    return d;
}

static json_t *service(struct render *rd)
{
    json_t *s = object(rd, "v1", "Service");
    json_t *spec = json_pack("{s:s,s:o}", "type", "ClusterIP", "selector", selector_labels(rd));
    if (json_array_size(rd->ports)) {
        json_t *ports = json_array();
        size_t i;
        json_t *p;
        json_array_foreach (rd->ports, i, p) {
            char pn[32];
            json_int_t num = json_integer_value(json_object_get(p, "port"));
            port_name(p, pn, sizeof(pn));
            push(rd, ports,
                 json_pack("{s:s,s:I,s:I,s:s}", "name", pn, "port", num, "targetPort", num,
                           "protocol", "TCP"));
        }
        put(rd, spec, "ports", ports);
    } else {
        /* A ClusterIP Service needs a port; without any, a headless one still gives DNS. */
        put(rd, spec, "clusterIP", json_string("None"));
    }
    put(rd, s, "spec", spec);
    return s;
}

static json_t *ingress(struct render *rd, json_t *expose, struct core_err *err)
{
    if (!rd->http_port) {
        core_err_set(err, CORE_E_INVAL,
                     "spec.expose needs a port to route to: add one to spec.run.ports");
        return NULL;
    }
    char pn[32];
    port_name(rd->http_port, pn, sizeof(pn));
    json_t *paths = json_array();
    json_t *list = json_object_get(expose, "paths");
    size_t i;
    json_t *p;
    if (json_array_size(list) == 0)
        list = NULL;
    json_array_foreach (list, i, p)
        push(rd, paths,
             json_pack("{s:s,s:s,s:{s:{s:s,s:{s:s}}}}", "path", json_string_value(p), "pathType",
                       "Prefix", "backend", "service", "name", rd->name, "port", "name", pn));
    if (!list)
        push(rd, paths,
             json_pack("{s:s,s:s,s:{s:{s:s,s:{s:s}}}}", "path", "/", "pathType", "Prefix",
                       "backend", "service", "name", rd->name, "port", "name", pn));
    json_t *o = object(rd, "networking.k8s.io/v1", "Ingress");
    put(rd, o, "spec",
        json_pack("{s:[{s:s,s:{s:o}}]}", "rules", "host",
                  json_string_value(json_object_get(expose, "host")), "http", "paths", paths));
    return o;
}

static json_t *pdb(struct render *rd)
{
    json_int_t min = rd->replicas - rd->max_unavailable;
    json_t *o = object(rd, "policy/v1", "PodDisruptionBudget");
    put(rd, o, "spec",
        json_pack("{s:I,s:{s:o}}", "minAvailable", min < 1 ? (json_int_t)1 : min, "selector",
                  "matchLabels", selector_labels(rd)));
    return o;
}

/* Egress to the pods of declared dependencies (in any namespace) and to cluster DNS; ingress
 * from platform pods and, when exposed, from the ingress controller's namespace. */
static json_t *netpol(struct render *rd, bool exposed)
{
    json_t *egress = json_array();
    json_t *to = json_array();
    size_t i;
    json_t *d;
    json_array_foreach (dig(rd->m, "spec", "dependencies", NULL), i, d) {
        const char *svc = json_string_value(json_object_get(d, "service"));
        const char *res = json_string_value(json_object_get(d, "name"));
        if (svc)
            push(rd, to,
                 json_pack("{s:{},s:{s:{s:s,s:s}}}", "namespaceSelector", "podSelector",
                           "matchLabels", "app.kubernetes.io/name", svc, "pave.dev/env",
                           rd->env));
        else if (res)
            push(rd, to,
                 json_pack("{s:{},s:{s:{s:s,s:s}}}", "namespaceSelector", "podSelector",
                           "matchLabels", "pave.dev/resource", res, "pave.dev/env", rd->env));
    }
    if (json_array_size(to))
        push(rd, egress, json_pack("{s:o}", "to", to));
    else
        json_decref(to);
    push(rd, egress,
         json_pack("{s:[{s:{s:{s:s}},s:{s:{s:s}}}],s:[{s:s,s:i},{s:s,s:i}]}", "to",
                   "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name",
                   "kube-system", "podSelector", "matchLabels", "k8s-app", "kube-dns", "ports",
                   "protocol", "UDP", "port", 53, "protocol", "TCP", "port", 53));
    json_t *from = json_array();
    push(rd, from,
         json_pack("{s:{},s:{s:{s:s}}}", "namespaceSelector", "podSelector", "matchLabels",
                   "app.kubernetes.io/part-of", "pave"));
    if (exposed)
        push(rd, from,
             json_pack("{s:{s:{s:s}}}", "namespaceSelector", "matchLabels",
                       "kubernetes.io/metadata.name", RUNTIME_INGRESS_NAMESPACE));
    json_t *o = object(rd, "networking.k8s.io/v1", "NetworkPolicy");
    put(rd, o, "spec",
        json_pack("{s:{s:o},s:[s,s],s:[{s:o}],s:o}", "podSelector", "matchLabels",
                  selector_labels(rd), "policyTypes", "Ingress", "Egress", "ingress", "from",
                  from, "egress", egress));
    return o;
}

/* Scales the Deployment between autoscale.min and .max on average CPU utilization, measured
 * against the container's CPU request. */
static json_t *hpa(struct render *rd)
{
    json_t *o = object(rd, "autoscaling/v2", "HorizontalPodAutoscaler");
    put(rd, o, "spec",
        json_pack("{s:{s:s,s:s,s:s},s:I,s:I,s:[{s:s,s:{s:s,s:{s:s,s:I}}}]}", "scaleTargetRef",
                  "apiVersion", "apps/v1", "kind", "Deployment", "name", rd->name,
                  "minReplicas", rd->as_min, "maxReplicas", rd->as_max, "metrics", "type",
                  "Resource", "resource", "name", "cpu", "target", "type", "Utilization",
                  "averageUtilization", rd->as_cpu));
    return o;
}

/* Reads spec.autoscale when set. The catalog validated it already; this only guards against
 * JSON that did not come from there. returns: 0 or CORE_E_INVAL. */
static int autoscale(struct render *rd, struct core_err *err)
{
    json_t *as = dig(rd->m, "spec", "autoscale", NULL);
    if (!as)
        return 0;
    json_t *min = json_object_get(as, "min");
    json_t *max = json_object_get(as, "max");
    json_t *cpu = json_object_get(as, "cpu");
    rd->as_min = json_integer_value(min);
    rd->as_max = json_integer_value(max);
    rd->as_cpu = cpu ? json_integer_value(cpu) : 80;
    if (!json_is_object(as) || !json_is_integer(min) || !json_is_integer(max) ||
        (cpu && !json_is_integer(cpu)) || rd->as_min < 1 || rd->as_max > 100 ||
        rd->as_max < rd->as_min || rd->as_cpu < 1 || rd->as_cpu > 100)
        return core_err_set(err, CORE_E_INVAL, "invalid spec.autoscale");
    rd->autoscale = true;
    rd->replicas = rd->as_min;
    return 0;
}

/* Image references: no whitespace or control characters, at most 1000 bytes. */
static bool image_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 1000)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return false;
    return true;
}

json_t *runtime_render_k8s(const char *manifest_json, const char *team, const char *env,
                           const char *image, struct core_err *err)
{
    struct render rd = {0};
    json_t *out = NULL;
    json_t *item = NULL;
    bool ok = false;
    json_error_t jerr;
    if (!manifest_json) {
        core_err_set(err, CORE_E_INVAL, "no manifest to render");
        goto out;
    }
    rd.m = json_loads(manifest_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(rd.m)) {
        core_err_set(err, CORE_E_INVAL, "invalid manifest JSON: %s",
                     rd.m ? "not an object" : jerr.text);
        goto out;
    }
    rd.name = json_string_value(dig(rd.m, "metadata", "name", NULL));
    if (!rd.name || !core_is_dns_label(rd.name)) {
        core_err_set(err, CORE_E_INVAL, "manifest has no valid metadata.name");
        goto out;
    }
    rd.team = team ? team : json_string_value(dig(rd.m, "metadata", "team", NULL));
    if (!rd.team || !core_is_dns_label(rd.team)) {
        core_err_set(err, CORE_E_INVAL, "invalid team '%s'", rd.team ? rd.team : "");
        goto out;
    }
    if (!env || !core_is_dns_label(env)) {
        core_err_set(err, CORE_E_INVAL, "invalid environment '%s'", env ? env : "");
        goto out;
    }
    rd.env = env;
    snprintf(rd.ns, sizeof(rd.ns), "%s-%s", rd.team, rd.env);
    if (strlen(rd.ns) > 63) {
        core_err_set(err, CORE_E_INVAL, "namespace '%s' is longer than 63 characters", rd.ns);
        goto out;
    }
    if (image && *image) {
        if (!image_ok(image)) {
            core_err_set(err, CORE_E_INVAL, "invalid image reference");
            goto out;
        }
        snprintf(rd.image, sizeof(rd.image), "%s", image);
    } else {
        snprintf(rd.image, sizeof(rd.image), "%s/%s:%s", RUNTIME_REGISTRY_HOST, rd.name, rd.env);
    }
    rd.ports = dig(rd.m, "spec", "run", "ports");
    size_t i;
    json_t *p;
    json_array_foreach (rd.ports, i, p) {
        const char *proto = json_string_value(json_object_get(p, "protocol"));
        if (!proto || strcmp(proto, "http") == 0) {
            rd.http_port = p;
            break;
        }
    }
    json_t *replicas = dig(rd.m, "spec", "replicas", NULL);
    rd.replicas = replicas ? json_integer_value(replicas) : 1;
    json_t *mu = dig(rd.m, "spec", "rollout", "maxUnavailable");
    rd.max_unavailable = mu ? json_integer_value(mu) : 0;
    if (autoscale(&rd, err))
        goto out;

    out = json_array();
    if (!(item = deployment(&rd, err)))
        goto out;
    push(&rd, out, item);
    push(&rd, out, service(&rd));
    json_t *expose = dig(rd.m, "spec", "expose", NULL);
    if (json_is_object(expose)) {
        if (!(item = ingress(&rd, expose, err)))
            goto out;
        push(&rd, out, item);
    }
    if (rd.replicas > 1)
        push(&rd, out, pdb(&rd));
    push(&rd, out, netpol(&rd, json_is_object(expose)));
    if (rd.autoscale)
        push(&rd, out, hpa(&rd));
    if (rd.nomem) {
        core_err_set(err, CORE_E_NOMEM, "out of memory rendering '%s'", rd.name);
        goto out;
    }
    ok = true;
out:
    if (!ok) {
        if (rd.nomem && (!err || err->code != CORE_E_NOMEM))
            core_err_set(err, CORE_E_NOMEM, "out of memory rendering '%s'", rd.name);
        json_decref(out);
        out = NULL;
    }
    json_decref(rd.m);
    rd.m = NULL;
    return out;
}
