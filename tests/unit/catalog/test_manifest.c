/* Unit tests for the service manifest parser and validator (src/catalog/manifest.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/catalog.h"

/* Defined in manifest.c; not in catalog.h yet. */

static const char minimal[] = "apiVersion: pave/v1\n"
                              "kind: Service\n"
                              "metadata:\n"
                              "  name: payments-api\n"
                              "  team: payments\n";

/* The example from PRODUCT.md, "The service manifest". */
static const char product_example[] =
    "apiVersion: pave/v1\n"
    "kind: Service\n"
    "metadata:\n"
    "  name: payments-api\n"
    "  team: payments\n"
    "  tier: 1\n"
    "  description: Card payments API\n"
    "  tags: { cost-center: cc-1234, data-classification: confidential }\n"
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
    "  rollout: { strategy: rolling, maxSurge: 1, maxUnavailable: 0 }\n"
    "  expose: { host: payments.internal, paths: [\"/\"] }\n"
    "  dependencies:\n"
    "    - service: ledger\n"
    "    - resource: postgres\n"
    "      name: payments-db\n"
    "  slo: { availability: 99.9, latencyP99: 300ms }\n"
    "  docs: docs/\n";

struct result {
    int rc;
    struct catalog_manifest m;
    struct schema_diags d;
};

static void dump(const struct result *r)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    if (schema_diags_format(&r->d, &b) == 0 && b.len)
        print_message("%s", b.data);
    core_buf_release(&b);
}

static void parse_n(struct result *r, const char *text, size_t len)
{
    struct core_err err = {0};
    schema_diags_init(&r->d);
    r->rc = catalog_manifest_parse("pave.yaml", text, len, &r->m, &r->d, &err);
    if (r->rc)
        assert_true(err.msg[0] != 0);
}

static void parse(struct result *r, const char *text)
{
    parse_n(r, text, strlen(text));
}

static void release(struct result *r)
{
    catalog_manifest_release(&r->m);
    schema_diags_release(&r->d);
}

/* Index of the first diagnostic whose message contains needle, or -1. */
static int find(const struct result *r, const char *needle)
{
    for (size_t i = 0; i < r->d.n; i++)
        if (strstr(r->d.items[i].message, needle))
            return (int)i;
    dump(r);
    return -1;
}

/* Parses `text`, expects exactly one problem containing `needle`; returns it. */
static const struct schema_diag *expect_one(struct result *r, const char *text,
                                            const char *needle)
{
    parse(r, text);
    if (r->d.n != 1)
        dump(r);
    assert_int_equal(r->rc, CORE_E_INVAL);
    assert_int_equal(r->d.n, 1);
    assert_non_null(strstr(r->d.items[0].message, needle));
    assert_null(r->m.name); /* m is left released on failure */
    return &r->d.items[0];
}

/* minimal + extra lines appended (a "spec:" block usually) */
static char *with(const char *extra)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf), "%s%s", minimal, extra);
    return buf;
}

static void valid_minimal_manifest(void **state)
{
    struct result r;
    parse(&r, minimal);
    dump(&r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.d.n, 0);
    assert_string_equal(r.m.file, "pave.yaml");
    assert_string_equal(r.m.name, "payments-api");
    assert_string_equal(r.m.team, "payments");
    assert_int_equal(r.m.tier, 3);
    assert_null(r.m.description);
    assert_int_equal(r.m.team_line, 5);
    assert_int_equal(r.m.team_col, 9);
    assert_string_equal(r.m.json, "{\"apiVersion\":\"pave/v1\",\"kind\":\"Service\",\"metadata\":"
                                  "{\"name\":\"payments-api\",\"team\":\"payments\"}}");
    assert_int_equal(strlen(r.m.digest), 64);
    release(&r);
}

static void product_example_is_valid(void **state)
{
    struct result r;
    parse(&r, product_example);
    dump(&r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.m.tier, 1);
    assert_string_equal(r.m.description, "Card payments API");
    assert_non_null(strstr(r.m.json, "\"replicas\":2"));
    assert_non_null(strstr(r.m.json, "\"cpu\":0.5"));
    release(&r);
}

static void unknown_key_has_did_you_mean_and_position(void **state)
{
    struct result r;
    const struct schema_diag *g = expect_one(&r, with("spec:\n  replica: 2\n"), "unknown key");
    assert_string_equal(g->message, "unknown key 'replica'");
    assert_string_equal(g->hint, "did you mean 'replicas'?");
    assert_string_equal(g->path, "spec.replica");
    assert_string_equal(g->file, "pave.yaml");
    assert_int_equal(g->line, 7);
    assert_int_equal(g->col, 3);
    release(&r);
}

static void unknown_key_without_close_match_lists_allowed_keys(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r, with("spec:\n  run:\n    zzzzzzzz: 1\n"), "unknown key 'zzzzzzzz'");
    assert_non_null(strstr(g->hint, "command"));
    assert_non_null(strstr(g->hint, "secrets"));
    assert_string_equal(g->path, "spec.run.zzzzzzzz");
    release(&r);
}

static void all_errors_are_reported_at_once(void **state)
{
    struct result r;
    parse(&r, "apiVersion: pave/v1\n"     /* 1 */
              "kind: Service\n"           /* 2 */
              "metadata:\n"               /* 3 */
              "  name: Payments_API\n"    /* 4: bad label */
              "  team: payments\n"        /* 5 */
              "  tier: 9\n"               /* 6: out of range */
              "spec:\n"                   /* 7 */
              "  replica: 2\n"            /* 8: unknown key */
              "  run:\n"                  /* 9 */
              "    ports:\n"              /* 10 */
              "      - name: http\n"      /* 11 */
              "        port: 70000\n"     /* 12: out of range */
              "  slo:\n"                  /* 13 */
              "    latencyP99: fast\n");  /* 14: bad duration */
    assert_int_equal(r.rc, CORE_E_INVAL);
    assert_true(r.d.n >= 4);
    int i;
    assert_true((i = find(&r, "invalid name 'Payments_API'")) >= 0);
    assert_int_equal(r.d.items[i].line, 4);
    assert_int_equal(r.d.items[i].col, 9);
    assert_true((i = find(&r, "tier must be between 1 and 4, got 9")) >= 0);
    assert_int_equal(r.d.items[i].line, 6);
    assert_true((i = find(&r, "unknown key 'replica'")) >= 0);
    assert_int_equal(r.d.items[i].line, 8);
    assert_true((i = find(&r, "port must be between 1 and 65535")) >= 0);
    assert_int_equal(r.d.items[i].line, 12);
    assert_string_equal(r.d.items[i].path, "spec.run.ports[0].port");
    assert_true((i = find(&r, "invalid duration 'fast'")) >= 0);
    assert_int_equal(r.d.items[i].line, 14);
    assert_int_equal(r.d.n, 5);
    release(&r);
}

static void wrong_type_names_expected_and_actual(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r, with("spec:\n  replicas: two\n"), "expected an integer");
    assert_string_equal(g->message, "expected an integer, got string \"two\"");
    assert_int_equal(g->line, 7);
    assert_int_equal(g->col, 13); /* the value, not the key */
    release(&r);

    g = expect_one(&r, with("spec:\n  replicas: \"2\"\n"), "expected an integer");
    assert_string_equal(g->message, "expected an integer, got string \"2\"");
    assert_string_equal(g->hint, "remove the quotes: 2");
    release(&r);

    g = expect_one(&r, with("spec:\n  run: [a]\n"), "expected a map, got a list");
    assert_string_equal(g->path, "spec.run");
    release(&r);

    g = expect_one(&r, with("spec:\n  run:\n    command: ./bin/app\n"), "expected a list");
    assert_string_equal(g->hint, "write a list: [\"./bin/app\"]");
    release(&r);
}

static void numbers_as_tag_values_must_be_quoted(void **state)
{
    struct result r;
    const char *text = "apiVersion: pave/v1\nkind: Service\nmetadata:\n  name: a\n  team: b\n"
                       "  tags: { cost-center: 1234, public: true, ok: \"5\" }\n";
    parse(&r, text);
    assert_int_equal(r.rc, CORE_E_INVAL);
    assert_int_equal(r.d.n, 2);
    assert_string_equal(r.d.items[0].message, "expected a string, got integer 1234");
    assert_string_equal(r.d.items[0].hint, "put it in quotes: \"1234\"");
    assert_string_equal(r.d.items[0].path, "metadata.tags.cost-center");
    assert_string_equal(r.d.items[1].message, "expected a string, got boolean true");
    release(&r);
}

static void bad_dns_label_is_explained(void **state)
{
    struct result r;
    const struct schema_diag *g = expect_one(
        &r, "apiVersion: pave/v1\nkind: Service\nmetadata:\n  name: Payments_API\n  team: p\n",
        "invalid name 'Payments_API'");
    assert_non_null(strstr(g->message, "DNS label"));
    assert_non_null(strstr(g->message, "1-63"));
    assert_string_equal(g->hint, "try 'payments-api'");
    assert_string_equal(g->path, "metadata.name");
    release(&r);
}

static void names_with_traversal_or_control_characters_are_rejected(void **state)
{
    struct result r;
    expect_one(&r, "apiVersion: pave/v1\nkind: Service\nmetadata:\n  name: ../etc\n  team: p\n",
               "must be a DNS label");
    release(&r);
    expect_one(&r,
               "apiVersion: pave/v1\nkind: Service\nmetadata:\n  name: \"a\\x01b\"\n  team: p\n",
               "name must not contain control characters (found U+0001)");
    release(&r);
    expect_one(&r, with("spec:\n  build: { pipeline: ../../secrets.yml }\n"),
               "must not contain '..'");
    release(&r);
    expect_one(&r, with("spec:\n  docs: /etc/passwd\n"), "must be a relative path");
    release(&r);
    expect_one(&r, with("  description: \"bad\\u202Etext\"\n"), "control characters");
    release(&r);
}

static void duplicate_port_names_are_reported_at_the_duplicate(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r,
                   with("spec:\n  run:\n    ports:\n"
                        "      - { name: http, port: 8080 }\n"    /* line 9 */
                        "      - { name: http, port: 8081 }\n"),  /* line 10 */
                   "duplicate port name 'http'");
    assert_int_equal(g->line, 10);
    assert_int_equal(g->col, 17);
    assert_string_equal(g->path, "spec.run.ports[1].name");
    assert_non_null(strstr(g->hint, "line 9"));
    release(&r);
}

static void duplicate_port_numbers_are_reported_at_the_duplicate(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r,
                   with("spec:\n  run:\n    ports:\n"
                        "      - { name: http, port: 8080 }\n"
                        "      - { name: admin, port: 8080, protocol: tcp }\n"),
                   "duplicate port 8080");
    assert_int_equal(g->line, 10);
    assert_int_equal(g->col, 30);
    assert_string_equal(g->path, "spec.run.ports[1].port");
    release(&r);
}

static void unknown_protocol_suggests_the_closest(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r, with("spec:\n  run:\n    ports: [{ name: a, port: 1, protocol: htp }]\n"),
                   "unknown protocol 'htp'");
    assert_string_equal(g->hint, "did you mean 'http'?");
    release(&r);
}

static void bad_duration_is_reported(void **state)
{
    struct result r;
    const struct schema_diag *g = expect_one(
        &r, with("spec:\n  run:\n    health: { path: /h, interval: 5 seconds }\n"),
        "invalid duration '5 seconds'");
    assert_non_null(strstr(g->hint, "ms, s, m, h"));
    assert_string_equal(g->path, "spec.run.health.interval");
    release(&r);

    g = expect_one(&r, with("spec:\n  slo: { latencyP99: 300 }\n"), "expected a duration");
    assert_string_equal(g->hint, "add a unit, e.g. \"300s\" or \"300ms\"");
    release(&r);
}

static void bad_quantities_are_reported(void **state)
{
    struct result r;
    parse(&r, with("spec:\n  run:\n    resources: { cpu: lots, memory: 256MB }\n"));
    assert_int_equal(r.rc, CORE_E_INVAL);
    assert_int_equal(r.d.n, 2);
    assert_string_equal(r.d.items[0].message, "invalid CPU quantity 'lots'");
    assert_string_equal(r.d.items[1].message, "invalid memory quantity '256MB'");
    assert_string_equal(r.d.items[1].path, "spec.run.resources.memory");
    release(&r);

    parse(&r, with("spec:\n  run:\n    resources: { cpu: \"500m\", memory: 1Gi }\n"));
    assert_int_equal(r.rc, 0);
    release(&r);
}

static void health_timeout_must_be_less_than_interval(void **state)
{
    struct result r;
    const struct schema_diag *g = expect_one(
        &r, with("spec:\n  run:\n    health: { path: /h, interval: 1s, timeout: 1s }\n"),
        "timeout (1000ms) must be less than interval (1000ms)");
    assert_string_equal(g->path, "spec.run.health.timeout");
    assert_int_equal(g->line, 8);
    assert_int_equal(g->col, 48);
    release(&r);
    /* the default timeout (1s) is checked against a short interval too */
    expect_one(&r, with("spec:\n  run:\n    health: { path: /h, interval: 500ms }\n"),
               "must be less than interval");
    release(&r);
}

static void rolling_update_needs_surge_or_unavailable(void **state)
{
    struct result r;
    expect_one(&r, with("spec:\n  rollout: { maxSurge: 0, maxUnavailable: 0 }\n"),
               "cannot both be 0");
    release(&r);
    parse(&r, with("spec:\n  rollout: { strategy: recreate, maxSurge: 0, maxUnavailable: 0 }\n"));
    assert_int_equal(r.rc, 0);
    release(&r);
}

static void autoscale_max_must_be_at_least_min(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r, with("spec:\n  autoscale: { min: 5, max: 3 }\n"),
                   "autoscale max (3) must be at least min (5)");
    assert_string_equal(g->path, "spec.autoscale.max");
    assert_string_equal(g->file, "pave.yaml");
    assert_int_equal(g->line, 7);
    assert_int_equal(g->col, 29);
    release(&r);
    expect_one(&r, with("spec:\n  autoscale: { max: 3 }\n"), "missing required key 'min'");
    release(&r);
    expect_one(&r, with("spec:\n  autoscale: { min: 1, max: 3, cpu: 101 }\n"),
               "between 1 and 100");
    release(&r);
    /* an out-of-range bound is reported once, not also as max < min */
    expect_one(&r, with("spec:\n  autoscale: { min: 0, max: 3 }\n"), "between 1 and 100");
    release(&r);
    parse(&r, with("spec:\n  autoscale: { min: 2, max: 2 }\n"));
    assert_int_equal(r.rc, 0);
    release(&r);
}

static void replicas_must_lie_within_autoscale_range(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r, with("spec:\n  replicas: 12\n  autoscale: { min: 2, max: 10 }\n"),
                   "replicas (12) is outside autoscale min (2) and max (10)");
    assert_string_equal(g->path, "spec.replicas");
    assert_int_equal(g->line, 7);
    assert_int_equal(g->col, 13);
    assert_non_null(strstr(g->hint, "remove replicas"));
    release(&r);
    expect_one(&r, with("spec:\n  autoscale: { min: 2, max: 10 }\n  replicas: 1\n"),
               "replicas (1) is outside");
    release(&r);
    /* max < min is reported alone, not also against replicas */
    expect_one(&r, with("spec:\n  replicas: 4\n  autoscale: { min: 5, max: 3 }\n"),
               "must be at least min");
    release(&r);
    parse(&r, with("spec:\n  replicas: 2\n  autoscale: { min: 2, max: 10, cpu: 60 }\n"));
    assert_int_equal(r.rc, 0);
    release(&r);
    parse(&r, with("spec:\n  autoscale: { min: 3, max: 10 }\n"));
    assert_int_equal(r.rc, 0); /* the default replicas (1) is not checked */
    release(&r);
}

static void dependency_needs_exactly_one_target(void **state)
{
    struct result r;
    expect_one(&r, with("spec:\n  dependencies:\n    - { version: \"1\" }\n"),
               "exactly one of 'service' or 'resource'");
    release(&r);
    expect_one(&r, with("spec:\n  dependencies:\n    - { service: a, resource: postgres }\n"),
               "not both");
    release(&r);
    expect_one(&r, with("spec:\n  dependencies:\n    - { resource: postgres }\n"),
               "missing required key 'name'");
    release(&r);
    expect_one(&r, with("spec:\n  dependencies:\n    - service: a\n    - service: a\n"),
               "duplicate dependency on service 'a'");
    release(&r);
}

static void slo_availability_is_a_percentage(void **state)
{
    struct result r;
    expect_one(&r, with("spec:\n  slo: { availability: 0 }\n"), "above 0 and below 100");
    release(&r);
    expect_one(&r, with("spec:\n  slo: { availability: 100 }\n"), "got 100");
    release(&r);
    expect_one(&r, with("spec:\n  slo: { availability: \"99.9\" }\n"), "expected a number");
    release(&r);
    parse(&r, with("spec:\n  slo: { availability: 99.95, latencyP99: 1s }\n"));
    assert_int_equal(r.rc, 0);
    release(&r);
}

static void env_and_secret_names_may_not_clash(void **state)
{
    struct result r;
    const struct schema_diag *g = expect_one(
        &r,
        with("spec:\n  run:\n    env: { DB_PASSWORD: x }\n    secrets: [API_KEY, DB_PASSWORD]\n"),
        "'DB_PASSWORD' is both in env and in secrets");
    assert_string_equal(g->path, "spec.run.secrets[1]");
    assert_int_equal(g->line, 9);
    assert_int_equal(g->col, 24);
    release(&r);

    parse(&r, with("spec:\n  run:\n    env: { log-level: x }\n    secrets: [A, A]\n"));
    assert_int_equal(r.rc, CORE_E_INVAL);
    assert_true(find(&r, "invalid environment variable name 'log-level'") >= 0);
    assert_true(find(&r, "duplicate secret name 'A'") >= 0);
    release(&r);
}

/* fuzz find: a secrets item that is not a string used to crash the env/secrets clash check */
static void secrets_that_are_not_strings_do_not_crash(void **state)
{
    struct result r;
    parse(&r, with("spec:\n  run:\n    env: { A: x }\n    secrets: [A, {b: 1}, [c], A]\n"));
    assert_int_equal(r.rc, CORE_E_INVAL);
    assert_true(find(&r, "expected a string, got a map") >= 0);
    assert_true(find(&r, "expected a string, got a list") >= 0);
    assert_true(find(&r, "'A' is both in env and in secrets") >= 0);
    assert_true(find(&r, "duplicate secret name 'A'") >= 0);
    assert_int_equal(r.d.n, 4);
    release(&r);
}

static void missing_required_keys_are_named(void **state)
{
    struct result r;
    parse(&r, "kind: Service\nmetadata:\n  name: x\n");
    assert_int_equal(r.rc, CORE_E_INVAL);
    assert_int_equal(r.d.n, 2);
    assert_true(find(&r, "missing required key 'apiVersion'") >= 0);
    int i = find(&r, "missing required key 'team'");
    assert_true(i >= 0);
    assert_string_equal(r.d.items[i].path, "metadata.team");
    assert_int_equal(r.d.items[i].line, 2); /* at the 'metadata' key */
    release(&r);
}

static void wrong_api_version_and_kind(void **state)
{
    struct result r;
    parse(&r, "apiVersion: pave/v2\nkind: service\nmetadata: { name: a, team: b }\n");
    assert_int_equal(r.rc, CORE_E_INVAL);
    assert_int_equal(r.d.n, 2);
    assert_string_equal(r.d.items[0].message, "unsupported apiVersion 'pave/v2'");
    assert_string_equal(r.d.items[1].message, "unsupported kind 'service'");
    assert_string_equal(r.d.items[1].hint, "did you mean 'Service'?");
    release(&r);
}

static void invalid_yaml_gives_one_diagnostic_with_a_line(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r, "apiVersion: pave/v1\nkind: [Service\nmetadata: x\n", "invalid YAML");
    assert_true(g->line >= 2);
    assert_true(g->col >= 1);
    release(&r);

    g = expect_one(&r, "apiVersion: pave/v1\nmetadata:\n\tname: x\n", "invalid YAML");
    assert_int_equal(g->line, 3);
    assert_non_null(g->hint);
    assert_non_null(strstr(g->hint, "tabs"));
    release(&r);

    expect_one(&r, "a: 1\na: 2\n", "duplicate key 'a'");
    release(&r);
}

static void invalid_utf8_is_rejected_with_position(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r, "apiVersion: pave/v1\nkind: Serv\xff\n", "invalid UTF-8 byte 0xff");
    assert_int_equal(g->line, 2);
    assert_int_equal(g->col, 11);
    release(&r);
}

static void nul_byte_is_rejected(void **state)
{
    static const char text[] = "apiVersion: pave/v1\nkind: Ser\0vice\n";
    struct result r;
    parse_n(&r, text, sizeof(text) - 1);
    assert_int_equal(r.rc, CORE_E_INVAL);
    assert_int_equal(r.d.n, 1);
    assert_non_null(strstr(r.d.items[0].message, "NUL byte"));
    assert_int_equal(r.d.items[0].line, 2);
    assert_int_equal(r.d.items[0].col, 10);
    release(&r);
}

static void oversize_input_is_too_big(void **state)
{
    size_t len = CATALOG_MANIFEST_MAX + 1;
    char *big = core_malloc(len);
    assert_non_null(big);
    memset(big, '#', len);
    struct result r;
    parse_n(&r, big, len);
    assert_int_equal(r.rc, CORE_E_TOO_BIG);
    assert_int_equal(r.d.n, 1);
    assert_non_null(strstr(r.d.items[0].message, "too large"));
    release(&r);
    core_free(big);
}

static void empty_and_non_map_documents_are_rejected(void **state)
{
    struct result r;
    expect_one(&r, "", "manifest is empty");
    release(&r);
    expect_one(&r, "# only a comment\n", "manifest is empty");
    release(&r);
    expect_one(&r, "- a\n- b\n", "expected a map, got a list");
    release(&r);
}

static void json_input_is_accepted(void **state)
{
    struct result y, j;
    parse(&y, minimal);
    parse(&j, "{\"apiVersion\": \"pave/v1\", \"kind\": \"Service\",\n"
              " \"metadata\": {\"name\": \"payments-api\", \"team\": \"payments\"}}");
    dump(&j);
    assert_int_equal(j.rc, 0);
    assert_string_equal(j.m.name, "payments-api");
    /* same content, same canonical form */
    assert_string_equal(j.m.json, y.m.json);
    assert_string_equal(j.m.digest, y.m.digest);
    release(&y);
    release(&j);
}

static void digest_is_stable_and_content_sensitive(void **state)
{
    struct result a, b, c, d;
    parse(&a, product_example);
    parse(&b, product_example);
    /* comments, flow vs block style and quoting of plain strings do not matter */
    parse(&c, "# the payments service\n"
              "apiVersion: \"pave/v1\"\n"
              "kind: Service\n"
              "metadata: {name: payments-api, team: 'payments'}\n");
    parse(&d, minimal);
    assert_int_equal(a.rc, 0);
    assert_int_equal(c.rc, 0);
    assert_string_equal(a.m.digest, b.m.digest);
    assert_string_equal(c.m.digest, d.m.digest);
    assert_string_not_equal(a.m.digest, d.m.digest);
    release(&a);
    release(&b);
    release(&c);
    release(&d);

    parse(&a, with("spec:\n  replicas: 2\n"));
    parse(&b, with("spec:\n  replicas: 3\n"));
    assert_string_not_equal(a.m.digest, b.m.digest);
    release(&a);
    release(&b);
}

static void diagnostics_format_one_per_line(void **state)
{
    struct result r;
    struct core_buf out;
    parse(&r, with("spec:\n  replica: 2\n  docs: /x\n"));
    core_buf_init(&out, 0);
    assert_int_equal(schema_diags_format(&r.d, &out), 0);
    assert_string_equal(out.data,
                        "pave.yaml:7:3: unknown key 'replica' (did you mean 'replicas'?)\n"
                        "pave.yaml:8:9: docs must be a relative path, got '/x' (remove the "
                        "leading '/'; paths are relative to the repository root)\n");
    core_buf_release(&out);
    release(&r);

    struct schema_diags d;
    schema_diags_init(&d);
    assert_int_equal(schema_diags_add(&d, NULL, 0, 0, NULL, NULL, "line\nbreak %d", 1), 0);
    core_buf_init(&out, 0);
    assert_int_equal(schema_diags_format(&d, &out), 0);
    assert_string_equal(out.data, "<input>: line\\nbreak 1\n");
    core_buf_release(&out);
    schema_diags_release(&d);
}

static void problems_are_capped(void **state)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(core_buf_adds(&b, minimal), 0);
    assert_int_equal(core_buf_adds(&b, "spec:\n"), 0);
    for (int i = 0; i < 300; i++)
        assert_int_equal(core_buf_addf(&b, "  bogus%d: 1\n", i), 0);
    struct result r;
    parse(&r, b.data);
    assert_int_equal(r.rc, CORE_E_INVAL);
    assert_int_equal(r.d.n, 101);
    assert_non_null(strstr(r.d.items[100].message, "too many problems"));
    release(&r);
    core_buf_release(&b);
}

static void long_lists_are_refused_before_pairwise_checks(void **state)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(core_buf_adds(&b, minimal), 0);
    assert_int_equal(core_buf_adds(&b, "spec:\n  run:\n    secrets: [S0"), 0);
    for (int i = 1; i < 30000; i++)
        assert_int_equal(core_buf_addf(&b, ",S%d", i), 0);
    assert_int_equal(core_buf_adds(&b, "]\n"), 0);
    struct result r;
    const struct schema_diag *g =
        expect_one(&r, b.data, "secrets has too many items (30000, at most 256)");
    assert_string_equal(g->path, "spec.run.secrets");
    release(&r);
    core_buf_release(&b);
}

static void null_diags_still_fail(void **state)
{
    struct catalog_manifest m;
    assert_int_equal(catalog_manifest_parse(NULL, "x: 1\n", 5, &m, NULL, NULL), CORE_E_INVAL);
    assert_null(m.json);
}

/* The failure setting from the environment (CORE_FAILMALLOC=N), restored after sweeps. */
static unsigned env_failmalloc(void)
{
    const char *e = getenv("CORE_FAILMALLOC");
    return e ? (unsigned)strtoul(e, NULL, 10) : 0;
}

static void allocation_failures_do_not_crash_or_leak(void **state)
{
    static const char *const inputs[] = {product_example, "kind: x\nmetadata: {tags: 3}\n"};
    for (size_t k = 0; k < 2; k++) {
        for (unsigned n = 1; n < 400; n++) {
            struct result r;
            core_failmalloc_set(n);
            parse(&r, inputs[k]);
            core_failmalloc_set(0);
            assert_true(r.rc == CORE_E_NOMEM || r.rc == (k == 0 ? 0 : CORE_E_INVAL));
            release(&r);
        }
    }
    core_failmalloc_set(env_failmalloc());
}

/*
 * Under CORE_FAILMALLOC=N (the CI allocation-failure run) only these run: every input must come
 * back with its normal result or CORE_E_NOMEM, without crashing or leaking.
 */
static void every_input_survives_allocation_failures(void **state)
{
    static const struct {
        const char *text;
        int rc;
    } cases[] = {
        {minimal, 0},
        {product_example, 0},
        {"{\"apiVersion\":\"pave/v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"a\","
         "\"team\":\"b\"}}",
         0},
        {"apiVersion: pave/v2\nkind: s\nmetadata: {name: A_, tier: 9, tags: {k: 1}}\n"
         "spec: {replica: 1, run: {ports: [{name: a, port: 1}, {name: a, port: 1}]}}\n",
         CORE_E_INVAL},
        {"apiVersion: [\n", CORE_E_INVAL},
        {"", CORE_E_INVAL},
    };
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
            struct result r;
            parse(&r, cases[i].text);
            if (r.rc != cases[i].rc && r.rc != CORE_E_NOMEM)
                dump(&r);
            assert_true(r.rc == cases[i].rc || r.rc == CORE_E_NOMEM);
            release(&r);
        }
    }
}

static void schema_reference_lists_every_key(void **state)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(catalog_manifest_schema_markdown(&b), 0);
    static const char *const keys[] = {
        "`apiVersion`",         "`metadata.tags.<key>`",  "`spec.run.ports[].port`",
        "`spec.run.health.timeout`", "`spec.rollout.maxUnavailable`", "`spec.slo.latencyP99`",
        "`spec.dependencies[].resource`", "`spec.docs`", "`spec.autoscale.max`",
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
        assert_non_null(strstr(b.data, keys[i]));
    core_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_minimal_manifest),
        cmocka_unit_test(product_example_is_valid),
        cmocka_unit_test(unknown_key_has_did_you_mean_and_position),
        cmocka_unit_test(unknown_key_without_close_match_lists_allowed_keys),
        cmocka_unit_test(all_errors_are_reported_at_once),
        cmocka_unit_test(wrong_type_names_expected_and_actual),
        cmocka_unit_test(numbers_as_tag_values_must_be_quoted),
        cmocka_unit_test(bad_dns_label_is_explained),
        cmocka_unit_test(names_with_traversal_or_control_characters_are_rejected),
        cmocka_unit_test(duplicate_port_names_are_reported_at_the_duplicate),
        cmocka_unit_test(duplicate_port_numbers_are_reported_at_the_duplicate),
        cmocka_unit_test(unknown_protocol_suggests_the_closest),
        cmocka_unit_test(bad_duration_is_reported),
        cmocka_unit_test(bad_quantities_are_reported),
        cmocka_unit_test(health_timeout_must_be_less_than_interval),
        cmocka_unit_test(rolling_update_needs_surge_or_unavailable),
        cmocka_unit_test(autoscale_max_must_be_at_least_min),
        cmocka_unit_test(replicas_must_lie_within_autoscale_range),
        cmocka_unit_test(dependency_needs_exactly_one_target),
        cmocka_unit_test(slo_availability_is_a_percentage),
        cmocka_unit_test(env_and_secret_names_may_not_clash),
        cmocka_unit_test(secrets_that_are_not_strings_do_not_crash),
        cmocka_unit_test(missing_required_keys_are_named),
        cmocka_unit_test(wrong_api_version_and_kind),
        cmocka_unit_test(invalid_yaml_gives_one_diagnostic_with_a_line),
        cmocka_unit_test(invalid_utf8_is_rejected_with_position),
        cmocka_unit_test(nul_byte_is_rejected),
        cmocka_unit_test(oversize_input_is_too_big),
        cmocka_unit_test(empty_and_non_map_documents_are_rejected),
        cmocka_unit_test(json_input_is_accepted),
        cmocka_unit_test(digest_is_stable_and_content_sensitive),
        cmocka_unit_test(diagnostics_format_one_per_line),
        cmocka_unit_test(problems_are_capped),
        cmocka_unit_test(long_lists_are_refused_before_pairwise_checks),
        cmocka_unit_test(null_diags_still_fail),
        cmocka_unit_test(allocation_failures_do_not_crash_or_leak),
        cmocka_unit_test(schema_reference_lists_every_key),
    };
    const struct CMUnitTest failmalloc_tests[] = {
        cmocka_unit_test(every_input_survives_allocation_failures),
        cmocka_unit_test(allocation_failures_do_not_crash_or_leak),
    };
    if (env_failmalloc())
        return cmocka_run_group_tests(failmalloc_tests, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
