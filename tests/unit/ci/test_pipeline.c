/* Unit tests for the pipeline file parser and the glob matching (src/ci/pipeline.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ci/ci.h"
#include "schema/schema.h"

static const char minimal[] = "apiVersion: pave/v1\n"
                              "kind: Pipeline\n"
                              "steps:\n"
                              "  - name: build\n"
                              "    commands: [make]\n";

/* The example from docs/pipelines.md. */
static const char full_example[] =
    "apiVersion: pave/v1\n"
    "kind: Pipeline\n"
    "on:\n"
    "  push:\n"
    "    branches: [main, \"release/*\"]\n"
    "caches:\n"
    "  - name: deps\n"
    "    paths: [.deps]\n"
    "    key: [Makefile]\n"
    "steps:\n"
    "  - name: build\n"
    "    commands: [\"make\", \"make test\"]\n"
    "    env: { CC: gcc }\n"
    "    workdir: .\n"
    "    timeout: 10m\n"
    "    network: false\n"
    "    when: { branch: [main], paths: [\"src/**\"] }\n"
    "    cache: [deps]\n"
    "    secrets: [DB_PASSWORD]\n"
    "    resources: { cpu: 1, memory: 512Mi, pids: 256 }\n"
    "  - name: package\n"
    "    commands:\n"
    "      - |\n"
    "        tar czf out.tgz bin\n"
    "        ls -l out.tgz\n"
    "    timeout: 1h30m\n"
    "    network: true\n"
    "    resources: { cpu: \"500m\", memory: 1Gi, pids: 64 }\n"
    "artifact:\n"
    "  paths: [bin/, README.md]\n";

struct result {
    int rc;
    struct ci_pipeline p;
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

static void parse(struct result *r, const char *text)
{
    struct core_err err = {0};
    schema_diags_init(&r->d);
    r->rc = ci_pipeline_parse(".pave/pipeline.yml", text, strlen(text), &r->p, &r->d, &err);
    if (r->rc)
        assert_true(err.msg[0] != 0);
}

static void release(struct result *r)
{
    ci_pipeline_release(&r->p);
    schema_diags_release(&r->d);
}

static void parse_ok(struct result *r, const char *text)
{
    parse(r, text);
    if (r->rc)
        dump(r);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->d.n, 0);
}

/* Parses text that must fail with exactly one diagnostic containing `message`. */
static const struct schema_diag *expect_one(struct result *r, const char *text,
                                            const char *message)
{
    parse(r, text);
    if (r->d.n != 1 || !strstr(r->d.items[0].message, message))
        dump(r);
    assert_int_equal(r->rc, CORE_E_INVAL);
    assert_int_equal(r->d.n, 1);
    assert_non_null(strstr(r->d.items[0].message, message));
    assert_null(r->p.steps);
    return &r->d.items[0];
}

static void minimal_pipeline_gets_the_defaults(void **state)
{
    struct result r;
    parse_ok(&r, minimal);
    assert_string_equal(r.p.file, ".pave/pipeline.yml");
    assert_int_equal(r.p.nbranches, 1);
    assert_string_equal(r.p.branches[0], "main");
    assert_int_equal(r.p.nsteps, 1);
    const struct ci_step *s = &r.p.steps[0];
    assert_string_equal(s->name, "build");
    assert_int_equal(s->line, 4);
    assert_int_equal(s->ncommands, 1);
    assert_string_equal(s->commands[0], "make");
    assert_string_equal(s->workdir, ".");
    assert_int_equal(s->timeout_ms, 10 * 60 * 1000);
    assert_false(s->network);
    assert_int_equal(s->cpu_millicores, 1000);
    assert_int_equal(s->memory_bytes, 512 * 1024 * 1024);
    assert_int_equal(s->pids, 256);
    assert_int_equal(s->nenv + s->nwhen_branches + s->nwhen_paths + s->ncaches + s->nsecrets, 0);
    assert_int_equal(r.p.ncaches, 0);
    assert_int_equal(r.p.nartifact_paths, 0);
    assert_int_equal(strlen(r.p.digest), 64);
    release(&r);
}

static void full_example_is_copied_out(void **state)
{
    struct result r;
    parse_ok(&r, full_example);
    assert_int_equal(r.p.nbranches, 2);
    assert_string_equal(r.p.branches[1], "release/*");
    assert_int_equal(r.p.ncaches, 1);
    assert_string_equal(r.p.caches[0].name, "deps");
    assert_int_equal(r.p.caches[0].npaths, 1);
    assert_string_equal(r.p.caches[0].paths[0], ".deps");
    assert_int_equal(r.p.caches[0].nkey_files, 1);
    assert_string_equal(r.p.caches[0].key_files[0], "Makefile");
    assert_int_equal(r.p.nsteps, 2);

    const struct ci_step *b = &r.p.steps[0];
    assert_int_equal(b->ncommands, 2);
    assert_string_equal(b->commands[1], "make test");
    assert_int_equal(b->nenv, 1);
    assert_string_equal(b->env[0].key, "CC");
    assert_string_equal(b->env[0].value, "gcc");
    assert_int_equal(b->nwhen_branches, 1);
    assert_string_equal(b->when_branches[0], "main");
    assert_int_equal(b->nwhen_paths, 1);
    assert_string_equal(b->when_paths[0], "src/**");
    assert_int_equal(b->ncaches, 1);
    assert_string_equal(b->caches[0], "deps");
    assert_int_equal(b->nsecrets, 1);
    assert_string_equal(b->secrets[0], "DB_PASSWORD");

    const struct ci_step *p = &r.p.steps[1];
    assert_string_equal(p->name, "package");
    assert_string_equal(p->commands[0], "tar czf out.tgz bin\nls -l out.tgz\n");
    assert_int_equal(p->timeout_ms, 90 * 60 * 1000);
    assert_true(p->network);
    assert_int_equal(p->cpu_millicores, 500);
    assert_int_equal(p->memory_bytes, 1024 * 1024 * 1024);
    assert_int_equal(p->pids, 64);

    assert_int_equal(r.p.nartifact_paths, 2);
    assert_string_equal(r.p.artifact_paths[0], "bin/");
    assert_string_equal(r.p.artifact_paths[1], "README.md");
    release(&r);
}

static void digest_is_of_the_file_text(void **state)
{
    struct result a, b;
    parse_ok(&a, minimal);
    parse_ok(&b, "apiVersion: pave/v1\nkind: Pipeline\nsteps: [{name: build, commands: [make]}]\n");
    assert_string_not_equal(a.p.digest, b.p.digest);
    char want[65];
    core_sha256_hex(minimal, strlen(minimal), want);
    assert_string_equal(a.p.digest, want);
    release(&a);
    release(&b);
}

static void unknown_key_suggests_the_nearest(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r,
                   "apiVersion: pave/v1\nkind: Pipeline\nsteps:\n"
                   "  - name: build\n    commands: [make]\n    timout: 5m\n",
                   "unknown key 'timout'");
    assert_string_equal(g->hint, "did you mean 'timeout'?");
    assert_string_equal(g->path, "steps[0].timout");
    assert_int_equal(g->line, 6);
    assert_int_equal(g->col, 5);
    release(&r);

    g = expect_one(&r, "apiVersion: pave/v1\nkind: Pipeline\nstep: []\nsteps: [{name: a, "
                       "commands: [b]}]\n",
                   "unknown key 'step'");
    assert_string_equal(g->hint, "did you mean 'steps'?");
    release(&r);
}

static void unknown_cache_reference_is_reported(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r,
                   "apiVersion: pave/v1\nkind: Pipeline\n"
                   "caches: [{name: deps, paths: [.deps]}]\n"
                   "steps:\n"
                   "  - name: build\n"
                   "    commands: [make]\n"
                   "    cache: [dep]\n",
                   "unknown cache 'dep'");
    assert_string_equal(g->hint, "did you mean 'deps'?");
    assert_string_equal(g->path, "steps[0].cache[0]");
    assert_int_equal(g->line, 7);
    assert_int_equal(g->col, 13);
    release(&r);

    g = expect_one(&r,
                   "apiVersion: pave/v1\nkind: Pipeline\n"
                   "steps: [{name: build, commands: [make], cache: [gradle]}]\n",
                   "unknown cache 'gradle'");
    assert_non_null(strstr(g->hint, "caches"));
    release(&r);
}

static void duplicate_names_are_reported(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r,
                   "apiVersion: pave/v1\nkind: Pipeline\nsteps:\n"
                   "  - name: build\n    commands: [make]\n"
                   "  - name: build\n    commands: [make test]\n",
                   "duplicate step name 'build'");
    assert_int_equal(g->line, 6);
    assert_string_equal(g->path, "steps[1].name");
    assert_non_null(strstr(g->hint, "line 4"));
    release(&r);

    expect_one(&r,
               "apiVersion: pave/v1\nkind: Pipeline\n"
               "caches: [{name: a, paths: [x]}, {name: a, paths: [y]}]\n"
               "steps: [{name: build, commands: [make]}]\n",
               "duplicate cache name 'a'");
    release(&r);
}

static void bad_durations_are_reported(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r,
                   "apiVersion: pave/v1\nkind: Pipeline\n"
                   "steps: [{name: build, commands: [make], timeout: 10 minutes}]\n",
                   "invalid duration '10 minutes'");
    assert_int_equal(g->line, 3);
    assert_non_null(g->hint);
    release(&r);

    g = expect_one(&r,
                   "apiVersion: pave/v1\nkind: Pipeline\n"
                   "steps: [{name: build, commands: [make], timeout: 7h}]\n",
                   "at most");
    release(&r);

    g = expect_one(&r,
                   "apiVersion: pave/v1\nkind: Pipeline\n"
                   "steps: [{name: build, commands: [make], timeout: 30}]\n",
                   "expected a duration");
    assert_non_null(strstr(g->hint, "add a unit"));
    release(&r);
}

static void every_problem_is_reported_at_once(void **state)
{
    struct result r;
    parse(&r, "apiVersion: pave/v2\n"
              "kind: Pipeline\n"
              "steps:\n"
              "  - name: Build_It\n"
              "    commands: []\n"
              "    network: yes\n"
              "    env: { 1X: a }\n"
              "    secrets: [TOKEN, TOKEN]\n"
              "    workdir: ../up\n"
              "    resources: { pids: 5000 }\n"
              "artifact: { paths: [] }\n");
    assert_int_equal(r.rc, CORE_E_INVAL);
    if (r.d.n != 9)
        dump(&r);
    assert_int_equal(r.d.n, 9);
    /* sorted into file order */
    for (size_t i = 1; i < r.d.n; i++)
        assert_true(r.d.items[i - 1].line <= r.d.items[i].line);
    release(&r);
}

static void env_and_secret_names_may_not_clash(void **state)
{
    struct result r;
    const struct schema_diag *g =
        expect_one(&r,
                   "apiVersion: pave/v1\nkind: Pipeline\n"
                   "steps: [{name: a, commands: [b], env: {TOKEN: x}, secrets: [TOKEN]}]\n",
                   "'TOKEN' is both in env and in secrets");
    assert_string_equal(g->path, "steps[0].secrets[0]");
    release(&r);
}

static void required_keys_and_shapes(void **state)
{
    struct result r;
    expect_one(&r, "apiVersion: pave/v1\nkind: Pipeline\n", "missing required key 'steps'");
    release(&r);
    expect_one(&r, "apiVersion: pave/v1\nkind: Service\nsteps: [{name: a, commands: [b]}]\n",
               "unsupported kind 'Service'");
    release(&r);
    expect_one(&r, "", "pipeline file is empty");
    release(&r);
    expect_one(&r, "apiVersion: pave/v1\nkind: Pipeline\nsteps: [{name: a}]\n",
               "missing required key 'commands'");
    release(&r);
    expect_one(&r,
               "apiVersion: pave/v1\nkind: Pipeline\nsteps: [{name: a, commands: [b]}]\n"
               "artifact: {}\n",
               "missing required key 'paths'");
    release(&r);
    expect_one(&r,
               "apiVersion: pave/v1\nkind: Pipeline\nsteps: [{name: a, commands: [b]}]\n"
               "artifact: { paths: [/etc] }\n",
               "must be a relative path");
    release(&r);
}

static void json_is_accepted(void **state)
{
    struct result r;
    parse_ok(&r, "{\"apiVersion\": \"pave/v1\", \"kind\": \"Pipeline\", \"on\": {\"push\": "
                 "{\"branches\": [\"dev\"]}}, \"steps\": [{\"name\": \"a\", \"commands\": "
                 "[\"true\"], \"network\": true}]}");
    assert_string_equal(r.p.branches[0], "dev");
    assert_true(r.p.steps[0].network);
    release(&r);
}

static void oversize_input_is_too_big(void **state)
{
    size_t len = CI_PIPELINE_MAX + 1;
    char *big = core_malloc(len + 1);
    assert_non_null(big);
    memset(big, '#', len);
    big[len] = 0;
    struct result r;
    parse(&r, big);
    assert_int_equal(r.rc, CORE_E_TOO_BIG);
    assert_int_equal(r.d.n, 1);
    assert_non_null(strstr(r.d.items[0].message, "too large"));
    release(&r);
    core_free(big);
}

static void glob_star_stays_within_a_segment(void **state)
{
    assert_true(ci_glob_match("main", "main"));
    assert_false(ci_glob_match("main", "mainline"));
    assert_true(ci_glob_match("release/*", "release/1.2"));
    assert_false(ci_glob_match("release/*", "release/1.2/hotfix"));
    assert_false(ci_glob_match("release/*", "release"));
    assert_true(ci_glob_match("*.c", "main.c"));
    assert_false(ci_glob_match("*.c", "src/main.c"));
    assert_true(ci_glob_match("feat-?", "feat-1"));
    assert_false(ci_glob_match("feat-?", "feat-12"));
    assert_false(ci_glob_match("a?b", "a/b"));
    assert_true(ci_glob_match("*", ""));
    assert_true(ci_glob_match("", ""));
    assert_false(ci_glob_match("", "x"));
    assert_true(ci_glob_match("d?j?", "d\xc3\xa9j\xc3\xa0")); /* '?' is one character */
}

static void glob_double_star_crosses_segments(void **state)
{
    assert_true(ci_glob_match("src/**", "src/a.c"));
    assert_true(ci_glob_match("src/**", "src/a/b/c.c"));
    assert_false(ci_glob_match("src/**", "docs/a.md"));
    assert_true(ci_glob_match("**/*.c", "main.c"));
    assert_true(ci_glob_match("**/*.c", "src/lib/main.c"));
    assert_false(ci_glob_match("**/*.c", "src/lib/main.h"));
    assert_true(ci_glob_match("src/**/test_*.c", "src/test_a.c"));
    assert_true(ci_glob_match("src/**/test_*.c", "src/x/y/test_a.c"));
    assert_false(ci_glob_match("src/**/test_*.c", "src/x/y/a_test.c"));
    assert_true(ci_glob_match("**", "anything/at/all"));
    /* no exponential backtracking */
    assert_false(ci_glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_false(ci_glob_match(NULL, "x"));
    assert_false(ci_glob_match("x", NULL));
}

static void step_wanted_checks_branch_and_paths(void **state)
{
    struct result r;
    parse_ok(&r, full_example);
    const struct ci_step *b = &r.p.steps[0]; /* when: branch main, paths under src */
    const struct ci_step *p = &r.p.steps[1]; /* no conditions */
    const char *const src[] = {"README.md", "src/a/b.c"};
    const char *const docs[] = {"README.md", "docs/x.md"};

    assert_true(ci_step_wanted(b, "main", src, 2));
    assert_false(ci_step_wanted(b, "main", docs, 2));
    assert_false(ci_step_wanted(b, "feature", src, 2));
    assert_true(ci_step_wanted(b, "main", NULL, 0)); /* unknown changes: paths pass */
    assert_false(ci_step_wanted(b, "main", src, 0)); /* known: nothing changed */
    assert_true(ci_step_wanted(b, NULL, src, 2));     /* unknown branch */
    assert_true(ci_step_wanted(p, "feature", docs, 2));
    assert_true(ci_step_wanted(p, "feature", NULL, 0));
    release(&r);
}

static void watches_defaults_to_main(void **state)
{
    struct result r;
    parse_ok(&r, minimal);
    assert_true(ci_pipeline_watches(&r.p, "main"));
    assert_false(ci_pipeline_watches(&r.p, "master"));
    assert_false(ci_pipeline_watches(&r.p, "main2"));
    assert_false(ci_pipeline_watches(&r.p, NULL));
    release(&r);

    parse_ok(&r, full_example);
    assert_true(ci_pipeline_watches(&r.p, "main"));
    assert_true(ci_pipeline_watches(&r.p, "release/2.0"));
    assert_false(ci_pipeline_watches(&r.p, "release/2.0/rc"));
    assert_false(ci_pipeline_watches(&r.p, "dev"));
    release(&r);

    struct ci_pipeline empty;
    ci_pipeline_init(&empty);
    assert_true(ci_pipeline_watches(&empty, "main"));
    assert_false(ci_pipeline_watches(&empty, "dev"));
    ci_pipeline_release(&empty);
}

static void schema_reference_lists_every_key(void **state)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(ci_pipeline_schema_markdown(&b), 0);
    static const char *const keys[] = {
        "`apiVersion`", "`on.push.branches`", "`caches[].name`", "`caches[].key`",
        "`steps[].commands`", "`steps[].env.<key>`", "`steps[].timeout`",
        "`steps[].network` | boolean", "`steps[].when.paths`", "`steps[].resources.pids`",
        "`artifact.paths`",
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
        if (!strstr(b.data, keys[i]))
            fail_msg("missing %s in\n%s", keys[i], b.data);
    core_buf_release(&b);
}

static unsigned env_failmalloc(void)
{
    const char *e = getenv("CORE_FAILMALLOC");
    return e ? (unsigned)strtoul(e, NULL, 10) : 0;
}

static void allocation_failures_do_not_crash_or_leak(void **state)
{
    static const char *const inputs[] = {full_example, "kind: x\nsteps: [{name: A}]\n"};
    for (size_t k = 0; k < 2; k++) {
        for (unsigned n = 1; n < 300; n++) {
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

/* Under CORE_FAILMALLOC=N every input must come back with its normal result or CORE_E_NOMEM. */
static void every_input_survives_allocation_failures(void **state)
{
    static const struct {
        const char *text;
        int rc;
    } cases[] = {
        {minimal, 0},
        {full_example, 0},
        {"apiVersion: pave/v2\nsteps: [{name: a, commands: [b], cache: [c]}]\n", CORE_E_INVAL},
        {"steps: [\n", CORE_E_INVAL},
        {"", CORE_E_INVAL},
    };
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
            struct result r;
            parse(&r, cases[i].text);
            assert_true(r.rc == cases[i].rc || r.rc == CORE_E_NOMEM);
            release(&r);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(minimal_pipeline_gets_the_defaults),
        cmocka_unit_test(full_example_is_copied_out),
        cmocka_unit_test(digest_is_of_the_file_text),
        cmocka_unit_test(unknown_key_suggests_the_nearest),
        cmocka_unit_test(unknown_cache_reference_is_reported),
        cmocka_unit_test(duplicate_names_are_reported),
        cmocka_unit_test(bad_durations_are_reported),
        cmocka_unit_test(every_problem_is_reported_at_once),
        cmocka_unit_test(env_and_secret_names_may_not_clash),
        cmocka_unit_test(required_keys_and_shapes),
        cmocka_unit_test(json_is_accepted),
        cmocka_unit_test(oversize_input_is_too_big),
        cmocka_unit_test(glob_star_stays_within_a_segment),
        cmocka_unit_test(glob_double_star_crosses_segments),
        cmocka_unit_test(step_wanted_checks_branch_and_paths),
        cmocka_unit_test(watches_defaults_to_main),
        cmocka_unit_test(schema_reference_lists_every_key),
        cmocka_unit_test(allocation_failures_do_not_crash_or_leak),
    };
    const struct CMUnitTest failmalloc_tests[] = {
        cmocka_unit_test(every_input_survives_allocation_failures),
        cmocka_unit_test(allocation_failures_do_not_crash_or_leak),
    };
    if (env_failmalloc())
        return cmocka_run_group_tests(failmalloc_tests, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
