/* Unit tests for the Kubernetes renderer (src/runtime/render_k8s.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/catalog.h"
#include "runtime/runtime.h"

/* The demo payments-api manifest, as in src/catalog/demo.c. */
static const char payments_api[] = "apiVersion: pave/v1\n"
                                   "kind: Service\n"
                                   "metadata:\n"
                                   "  name: payments-api\n"
                                   "  team: payments\n"
                                   "  tier: 1\n"
                                   "  description: Card payments API\n"
                                   "  tags: { cost-center: cc-1234, data-classification: "
                                   "confidential }\n"
                                   "spec:\n"
                                   "  build: { pipeline: .pave/pipeline.yml }\n"
                                   "  run:\n"
                                   "    command: [\"./bin/payments-api\"]\n"
                                   "    ports: [{ name: http, port: 8080, protocol: http }]\n"
                                   "    health: { path: /healthz, interval: 5s, timeout: 1s }\n"
                                   "    resources: { cpu: 0.5, memory: 256Mi }\n"
                                   "    env: { LOG_LEVEL: info }\n"
                                   "    secrets: [DB_PASSWORD]\n"
                                   "  replicas: 2\n"
                                   "  rollout: { strategy: rolling, maxSurge: 1, maxUnavailable: "
                                   "0 }\n"
                                   "  expose: { host: payments.internal, paths: [\"/\"] }\n"
                                   "  dependencies:\n"
                                   "    - service: ledger\n"
                                   "    - resource: postgres\n"
                                   "      name: payments-db\n"
                                   "  slo: { availability: 99.9, latencyP99: 300ms }\n"
                                   "  docs: docs/\n";

static const char minimal[] = "apiVersion: pave/v1\n"
                              "kind: Service\n"
                              "metadata:\n"
                              "  name: tiny\n"
                              "  team: core\n";

/* Parses YAML to canonical JSON and renders it for env; asserts success. */
static json_t *render(const char *yaml, const char *env, const char *image)
{
    struct catalog_manifest m;
    struct core_err err = {0};
    catalog_manifest_init(&m);
    assert_int_equal(catalog_manifest_parse("t.yaml", yaml, strlen(yaml), &m, NULL, &err), 0);
    json_t *items = runtime_render_k8s(m.json, m.team, env, image, &err);
    if (!items)
        fail_msg("render failed: %s", err.msg);
    catalog_manifest_release(&m);
    return items;
}

static json_t *find(json_t *items, const char *kind)
{
    size_t i;
    json_t *o;
    json_array_foreach (items, i, o)
        if (strcmp(json_string_value(json_object_get(o, "kind")), kind) == 0)
            return o;
    return NULL;
}

/* Walks a '/'-separated path of keys and array indexes ("spec/ports/0/port"). */
static json_t *at(json_t *v, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, "/", &save); k && v;
         k = strtok_r(NULL, "/", &save))
        v = json_is_array(v) ? json_array_get(v, strtoul(k, NULL, 10)) : json_object_get(v, k);
    return v;
}

static const char *str(json_t *v, const char *path)
{
    const char *s = json_string_value(at(v, path));
    return s ? s : "(missing)";
}

static void payments_api_renders_every_object(void **state)
{
    (void)state;
    json_t *items = render(payments_api, "prod", NULL);
    assert_int_equal(json_array_size(items), 5);
    static const char *const kinds[] = {"Deployment", "Service", "Ingress", "PodDisruptionBudget",
                                        "NetworkPolicy"};
    for (size_t i = 0; i < 5; i++) {
        json_t *o = json_array_get(items, i);
        assert_string_equal(str(o, "kind"), kinds[i]);
        assert_string_equal(str(o, "metadata/namespace"), "payments-prod");
        assert_string_equal(str(o, "metadata/name"), "payments-api");
        /* label keys hold '/', so look them up directly rather than through at() */
        json_t *l = at(o, "metadata/labels");
        assert_string_equal(json_string_value(json_object_get(l, "app.kubernetes.io/name")),
                            "payments-api");
    }

    json_t *d = find(items, "Deployment");
    assert_string_equal(str(d, "apiVersion"), "apps/v1");
    assert_int_equal(json_integer_value(at(d, "spec/replicas")), 2);
    assert_string_equal(str(d, "spec/strategy/type"), "RollingUpdate");
    assert_int_equal(json_integer_value(at(d, "spec/strategy/rollingUpdate/maxSurge")), 1);
    assert_int_equal(json_integer_value(at(d, "spec/strategy/rollingUpdate/maxUnavailable")), 0);
    json_t *labels = at(d, "spec/template/metadata/labels");
    assert_string_equal(json_string_value(json_object_get(labels, "app.kubernetes.io/part-of")),
                        "pave");
    assert_string_equal(json_string_value(json_object_get(labels, "pave.dev/team")), "payments");
    assert_string_equal(json_string_value(json_object_get(labels, "pave.dev/env")), "prod");
    assert_string_equal(json_string_value(json_object_get(labels, "cost-center")), "cc-1234");
    assert_string_equal(json_string_value(json_object_get(labels, "data-classification")),
                        "confidential");
    json_t *c = at(d, "spec/template/spec/containers/0");
    assert_non_null(c);
    assert_string_equal(str(c, "image"), "pave-registry.local/payments-api:prod");
    assert_string_equal(str(c, "command/0"), "./bin/payments-api");
    assert_int_equal(json_integer_value(at(c, "ports/0/containerPort")), 8080);
    assert_string_equal(str(c, "ports/0/name"), "http");
    assert_string_equal(str(c, "env/0/name"), "LOG_LEVEL");
    assert_string_equal(str(c, "env/0/value"), "info");
    assert_string_equal(str(c, "env/1/name"), "DB_PASSWORD");
    assert_string_equal(str(c, "env/1/valueFrom/secretKeyRef/name"), "payments-api-secrets");
    assert_string_equal(str(c, "env/1/valueFrom/secretKeyRef/key"), "DB_PASSWORD");
    assert_string_equal(str(c, "resources/requests/cpu"), "500m");
    assert_string_equal(str(c, "resources/limits/cpu"), "500m");
    assert_string_equal(str(c, "resources/requests/memory"), "256Mi");
    assert_string_equal(str(c, "resources/limits/memory"), "256Mi");
    static const char *const probes[] = {"readinessProbe", "livenessProbe"};
    for (size_t i = 0; i < 2; i++) {
        json_t *p = json_object_get(c, probes[i]);
        assert_string_equal(str(p, "httpGet/path"), "/healthz");
        assert_int_equal(json_integer_value(at(p, "httpGet/port")), 8080);
        assert_int_equal(json_integer_value(at(p, "periodSeconds")), 5);
        assert_int_equal(json_integer_value(at(p, "timeoutSeconds")), 1);
    }

    json_t *s = find(items, "Service");
    assert_string_equal(str(s, "spec/type"), "ClusterIP");
    assert_int_equal(json_integer_value(at(s, "spec/ports/0/port")), 8080);
    assert_int_equal(json_integer_value(at(s, "spec/ports/0/targetPort")), 8080);
    assert_string_equal(
        json_string_value(json_object_get(at(s, "spec/selector"), "app.kubernetes.io/name")),
        "payments-api");

    json_t *ing = find(items, "Ingress");
    assert_string_equal(str(ing, "spec/rules/0/host"), "payments.internal");
    assert_string_equal(str(ing, "spec/rules/0/http/paths/0/path"), "/");
    assert_string_equal(str(ing, "spec/rules/0/http/paths/0/pathType"), "Prefix");
    assert_string_equal(str(ing, "spec/rules/0/http/paths/0/backend/service/name"),
                        "payments-api");

    json_t *pdb = find(items, "PodDisruptionBudget");
    assert_string_equal(str(pdb, "apiVersion"), "policy/v1");
    assert_int_equal(json_integer_value(at(pdb, "spec/minAvailable")), 2);

    json_t *np = find(items, "NetworkPolicy");
    json_t *to = at(np, "spec/egress/0/to/0/podSelector/matchLabels");
    assert_string_equal(json_string_value(json_object_get(to, "app.kubernetes.io/name")),
                        "ledger");
    assert_int_equal(json_integer_value(at(np, "spec/egress/1/ports/0/port")), 53);
    json_t *from = at(np, "spec/ingress/0/from/1/namespaceSelector/matchLabels");
    assert_string_equal(json_string_value(json_object_get(from, "kubernetes.io/metadata.name")),
                        RUNTIME_INGRESS_NAMESPACE);
    json_decref(items);
}

static void image_flag_replaces_the_default(void **state)
{
    (void)state;
    json_t *items = render(payments_api, "dev", "registry.example.com/pay@sha256:abc");
    json_t *d = find(items, "Deployment");
    assert_string_equal(str(d, "spec/template/spec/containers/0/image"),
                        "registry.example.com/pay@sha256:abc");
    assert_string_equal(str(d, "metadata/namespace"), "payments-dev");
    json_decref(items);
}

static void minimal_manifest_renders_deployment_and_service(void **state)
{
    (void)state;
    json_t *items = render(minimal, "dev", NULL);
    /* Deployment and Service; the NetworkPolicy (DNS egress only) always comes along. */
    assert_non_null(find(items, "Deployment"));
    assert_non_null(find(items, "Service"));
    assert_null(find(items, "Ingress"));
    assert_null(find(items, "PodDisruptionBudget"));
    assert_null(find(items, "HorizontalPodAutoscaler"));
    json_t *d = find(items, "Deployment");
    assert_int_equal(json_integer_value(at(d, "spec/replicas")), 1);
    json_t *c = at(d, "spec/template/spec/containers/0");
    assert_string_equal(str(c, "image"), "pave-registry.local/tiny:dev");
    assert_null(json_object_get(c, "readinessProbe"));
    assert_null(json_object_get(c, "resources"));
    assert_string_equal(str(d, "metadata/namespace"), "core-dev");
    json_decref(items);
}

static void recreate_and_odd_port_names(void **state)
{
    (void)state;
    static const char yaml[] = "apiVersion: pave/v1\n"
                               "kind: Service\n"
                               "metadata:\n"
                               "  name: batch\n"
                               "  team: data\n"
                               "  tags: { owner: \"Not A Label!\" }\n"
                               "spec:\n"
                               "  run:\n"
                               "    ports: [{ name: metrics, port: 9100, protocol: tcp },\n"
                               "            { name: a-very-long-port-name, port: 8080 }]\n"
                               "    health: { path: /ready, interval: 1500ms }\n"
                               "    resources: { cpu: \"250m\", memory: 1G }\n"
                               "  replicas: 4\n"
                               "  rollout: { strategy: recreate, maxUnavailable: 2 }\n";
    json_t *items = render(yaml, "staging", NULL);
    json_t *d = find(items, "Deployment");
    assert_string_equal(str(d, "spec/strategy/type"), "Recreate");
    assert_null(at(d, "spec/strategy/rollingUpdate"));
    assert_null(json_object_get(at(d, "metadata/labels"), "owner"));
    json_t *c = at(d, "spec/template/spec/containers/0");
    assert_string_equal(str(c, "ports/1/name"), "p-8080");
    assert_int_equal(json_integer_value(at(c, "readinessProbe/httpGet/port")), 8080);
    assert_int_equal(json_integer_value(at(c, "readinessProbe/periodSeconds")), 2);
    assert_string_equal(str(c, "resources/limits/cpu"), "250m");
    assert_string_equal(str(c, "resources/limits/memory"), "954Mi");
    assert_int_equal(json_integer_value(at(find(items, "PodDisruptionBudget"),
                                           "spec/minAvailable")),
                     2);
    json_decref(items);
}

static void autoscale_renders_an_hpa_that_owns_replicas(void **state)
{
    (void)state;
    static const char yaml[] = "apiVersion: pave/v1\n"
                               "kind: Service\n"
                               "metadata:\n"
                               "  name: search\n"
                               "  team: shop\n"
                               "spec:\n"
                               "  run:\n"
                               "    resources: { cpu: 0.25 }\n"
                               "  replicas: 3\n"
                               "  autoscale: { min: 2, max: 8, cpu: 65 }\n";
    json_t *items = render(yaml, "prod", NULL);
    /* Deployment, Service, PDB, NetworkPolicy, then the HPA last */
    assert_int_equal(json_array_size(items), 5);
    json_t *h = json_array_get(items, 4);
    assert_string_equal(str(h, "kind"), "HorizontalPodAutoscaler");
    assert_string_equal(str(h, "apiVersion"), "autoscaling/v2");
    assert_string_equal(str(h, "metadata/name"), "search");
    assert_string_equal(str(h, "metadata/namespace"), "shop-prod");
    assert_string_equal(
        json_string_value(json_object_get(at(h, "metadata/labels"), "app.kubernetes.io/name")),
        "search");
    assert_string_equal(str(h, "spec/scaleTargetRef/apiVersion"), "apps/v1");
    assert_string_equal(str(h, "spec/scaleTargetRef/kind"), "Deployment");
    assert_string_equal(str(h, "spec/scaleTargetRef/name"), "search");
    assert_int_equal(json_integer_value(at(h, "spec/minReplicas")), 2);
    assert_int_equal(json_integer_value(at(h, "spec/maxReplicas")), 8);
    assert_int_equal(json_array_size(at(h, "spec/metrics")), 1);
    assert_string_equal(str(h, "spec/metrics/0/type"), "Resource");
    assert_string_equal(str(h, "spec/metrics/0/resource/name"), "cpu");
    assert_string_equal(str(h, "spec/metrics/0/resource/target/type"), "Utilization");
    assert_int_equal(json_integer_value(at(h, "spec/metrics/0/resource/target/averageUtilization")),
                     65);

    /* the HPA owns the count: no replicas in the Deployment, even with spec.replicas set */
    json_t *d = find(items, "Deployment");
    assert_null(at(d, "spec/replicas"));
    assert_non_null(at(d, "spec/selector"));
    assert_string_equal(str(d, "spec/template/spec/containers/0/resources/requests/cpu"), "250m");
    /* the PDB protects autoscale.min, the floor the HPA keeps */
    assert_int_equal(json_integer_value(at(find(items, "PodDisruptionBudget"),
                                           "spec/minAvailable")),
                     2);
    json_decref(items);

    /* cpu defaults to 80; min 1 means no PDB; no CPU request still renders */
    static const char dflt[] = "apiVersion: pave/v1\n"
                               "kind: Service\n"
                               "metadata: { name: tiny, team: core }\n"
                               "spec:\n"
                               "  autoscale: { min: 1, max: 3 }\n";
    items = render(dflt, "dev", NULL);
    h = find(items, "HorizontalPodAutoscaler");
    assert_non_null(h);
    assert_int_equal(json_integer_value(at(h, "spec/metrics/0/resource/target/averageUtilization")),
                     80);
    assert_null(find(items, "PodDisruptionBudget"));
    assert_null(at(find(items, "Deployment"), "spec/replicas"));
    json_decref(items);

    /* without autoscale: no HPA and replicas stays (see payments_api_renders_every_object) */
    items = render(payments_api, "prod", NULL);
    assert_null(find(items, "HorizontalPodAutoscaler"));
    assert_int_equal(json_integer_value(at(find(items, "Deployment"), "spec/replicas")), 2);
    json_decref(items);
}

static void invalid_input_is_an_error(void **state)
{
    (void)state;
    struct core_err err = {0};
    assert_null(runtime_render_k8s("{not json", "t", "dev", NULL, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "invalid manifest JSON"));
    core_err_clear(&err);
    assert_null(runtime_render_k8s("[1,2]", "t", "dev", NULL, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    core_err_clear(&err);
    assert_null(runtime_render_k8s("{\"metadata\":{}}", "t", "dev", NULL, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    core_err_clear(&err);
    assert_null(runtime_render_k8s(NULL, "t", "dev", NULL, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    core_err_clear(&err);
    const char *ok = "{\"metadata\":{\"name\":\"x\",\"team\":\"t\"}}";
    assert_null(runtime_render_k8s(ok, "t", "Bad_Env", NULL, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    core_err_clear(&err);
    assert_null(runtime_render_k8s(ok, "t", "dev", "has space", &err));
    assert_int_equal(err.code, CORE_E_INVAL);
    core_err_clear(&err);
    /* autoscale JSON that did not come through the catalog's validation */
    static const char *const bad_as[] = {
        "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"autoscale\":{\"max\":3}}}",
        "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"autoscale\":{\"min\":4,\"max\":3}}}",
        "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"autoscale\":{\"min\":1,\"max\":3,"
        "\"cpu\":\"80\"}}}",
        "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"autoscale\":true}}",
    };
    for (size_t i = 0; i < sizeof(bad_as) / sizeof(*bad_as); i++) {
        assert_null(runtime_render_k8s(bad_as[i], "t", "dev", NULL, &err));
        assert_int_equal(err.code, CORE_E_INVAL);
        assert_non_null(strstr(err.msg, "spec.autoscale"));
        core_err_clear(&err);
    }
    json_t *items = runtime_render_k8s(ok, NULL, "dev", NULL, &err);
    assert_non_null(items);
    assert_string_equal(str(json_array_get(items, 0), "metadata/namespace"), "t-dev");
    json_decref(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(payments_api_renders_every_object),
        cmocka_unit_test(image_flag_replaces_the_default),
        cmocka_unit_test(minimal_manifest_renders_deployment_and_service),
        cmocka_unit_test(recreate_and_odd_port_names),
        cmocka_unit_test(autoscale_renders_an_hpa_that_owns_replicas),
        cmocka_unit_test(invalid_input_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
