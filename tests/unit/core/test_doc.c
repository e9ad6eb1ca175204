/* Unit tests for the YAML/JSON document tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static int parse(const char *text, struct core_doc *doc, struct core_err *err)
{
    return core_doc_parse(doc, "t.yaml", text, strlen(text), err);
}

static void nodes_keep_line_and_column(void **state)
{
    struct core_doc doc;
    struct core_err err = {0};
    assert_int_equal(parse("a: 1\nb:\n  c: [x, y]\n", &doc, &err), 0);
    struct core_node *b = core_node_get(doc.root, "b");
    assert_non_null(b);
    struct core_node *c = core_node_get(b, "c");
    assert_int_equal(c->kind, CORE_NODE_SEQ);
    assert_int_equal(c->line, 3);
    assert_int_equal(c->col, 6);
    assert_int_equal(c->items[1]->line, 3);
    assert_int_equal(c->items[1]->col, 10);
    assert_int_equal(doc.root->key_nodes[1]->line, 2);
    core_doc_release(&doc);
}

static void syntax_errors_name_the_position(void **state)
{
    struct core_doc doc;
    struct core_err err = {0};
    assert_int_equal(parse("a: [1, 2\nb: 3\n", &doc, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "t.yaml:"));
}

static void duplicate_keys_aliases_and_tags_are_refused(void **state)
{
    struct core_doc doc;
    struct core_err err = {0};
    assert_int_equal(parse("a: 1\na: 2\n", &doc, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "t.yaml:2:1: duplicate key 'a'"));
    assert_int_equal(parse("a: &x 1\nb: *x\n", &doc, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "not supported"));
    assert_int_equal(parse("a: !!binary aGk=\n", &doc, &err), CORE_E_INVAL);
}

static void deep_nesting_is_refused(void **state)
{
    char text[400];
    memset(text, '[', 200);
    text[200] = 0;
    struct core_doc doc;
    struct core_err err = {0};
    assert_int_equal(parse(text, &doc, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "nested too deeply"));
}

static void huge_maps_are_refused(void **state)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    for (int i = 0; i < 2000; i++)
        core_buf_addf(&b, "k%d: x\n", i);
    struct core_doc doc;
    struct core_err err = {0};
    assert_int_equal(parse(b.data, &doc, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "too many keys"));
    core_buf_release(&b);
}

static void bad_bytes_are_refused(void **state)
{
    struct core_doc doc;
    struct core_err err = {0};
    assert_int_equal(core_doc_parse(&doc, "t", "a: \xff\n", 5, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "UTF-8"));
    assert_int_equal(core_doc_parse(&doc, "t", "a: b\0c", 6, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "NUL"));
    assert_int_equal(parse("---\na: 1\n---\nb: 2\n", &doc, &err), CORE_E_INVAL);
}

static void json_rendering_types_scalars(void **state)
{
    struct core_doc doc;
    struct core_err err = {0};
    assert_int_equal(parse("n: 2\ns: \"2\"\nb: true\nz: ~\nf: 0.5\nw: hello\nl: [1, a]\nm: -.5\n",
                           &doc, &err),
                     0);
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(core_node_to_json(doc.root, &b), 0);
    assert_string_equal(
        b.data, "{\"n\":2,\"s\":\"2\",\"b\":true,\"z\":null,\"f\":0.5,\"w\":\"hello\",\"l\":[1,\"a\"],\"m\":-0.5}");
    core_buf_release(&b);
    core_doc_release(&doc);
}

static void json_input_is_accepted(void **state)
{
    struct core_doc doc;
    struct core_err err = {0};
    assert_int_equal(parse("{\"a\": {\"b\": [1, 2, {\"c\": \"d\"}]}}", &doc, &err), 0);
    assert_int_equal(core_node_get(doc.root, "a")->kind, CORE_NODE_MAP);
    core_doc_release(&doc);
}

static void allocation_failures_never_crash_or_leak(void **state)
{
    const char *text = "a: 1\nb:\n  c: [x, y, {d: e}]\n  f: \"g\"\n";
    for (unsigned n = 1; n < 60; n++) {
        struct core_doc doc;
        struct core_err err = {0};
        core_failmalloc_set(n);
        int rc = parse(text, &doc, &err);
        core_failmalloc_set(0);
        if (rc == 0)
            core_doc_release(&doc);
        else
            assert_true(rc == CORE_E_NOMEM || rc == CORE_E_INVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nodes_keep_line_and_column),
        cmocka_unit_test(syntax_errors_name_the_position),
        cmocka_unit_test(duplicate_keys_aliases_and_tags_are_refused),
        cmocka_unit_test(deep_nesting_is_refused),
        cmocka_unit_test(bad_bytes_are_refused),
        cmocka_unit_test(huge_maps_are_refused),
        cmocka_unit_test(json_rendering_types_scalars),
        cmocka_unit_test(json_input_is_accepted),
        cmocka_unit_test(allocation_failures_never_crash_or_leak),
    };
    return cmocka_run_group_tests_name("doc", tests, NULL, NULL);
}
