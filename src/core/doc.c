/* YAML/JSON documents as node trees that keep line:column marks (libyaml event API). */
#include "core/core.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define DOC_MAX_DEPTH 64
/* The duplicate-key check is quadratic; a cap keeps a hostile map from costing seconds. */
#define DOC_MAX_KEYS 1024
#define DOC_ARENA_CAP (64u << 20)

struct builder {
    yaml_parser_t parser;
    struct core_arena *arena;
    const char *name;
    int depth;
};

static int build_err(struct builder *bd, struct core_err *err, int line, int col, const char *what)
{
    return core_err_set(err, CORE_E_INVAL, "%s:%d:%d: %s", bd->name, line, col, what);
}

static int parser_err(struct builder *bd, struct core_err *err)
{
    yaml_parser_t *p = &bd->parser;
    const char *problem = p->problem ? p->problem : "malformed document";
    return core_err_set(err, CORE_E_INVAL, "%s:%d:%d: %s%s%s", bd->name,
                        (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1, problem,
                        p->context ? " " : "", p->context ? p->context : "");
}

static struct core_node *node_new(struct builder *bd, enum core_node_kind kind,
                                  const yaml_event_t *ev)
{
    struct core_node *n = core_arena_alloc(bd->arena, sizeof(*n));
    if (!n)
        return NULL;
    n->kind = kind;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    return n;
}

/* Appends (key,value) or value into a growing array pair held in the arena. */
static int node_push(struct builder *bd, struct core_node *parent, char *key,
                     struct core_node *key_node, struct core_node *item, size_t *cap)
{
    if (parent->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct core_node **items = core_arena_alloc(bd->arena, nc * sizeof(*items));
        if (!items)
            return CORE_E_NOMEM;
        if (parent->n)
            memcpy(items, parent->items, parent->n * sizeof(*items));
        parent->items = items;
        if (parent->kind == CORE_NODE_MAP) {
            char **keys = core_arena_alloc(bd->arena, nc * sizeof(*keys));
            struct core_node **kn = core_arena_alloc(bd->arena, nc * sizeof(*kn));
            if (!keys || !kn)
                return CORE_E_NOMEM;
            if (parent->n) {
                memcpy(keys, parent->keys, parent->n * sizeof(*keys));
                memcpy(kn, parent->key_nodes, parent->n * sizeof(*kn));
            }
            parent->keys = keys;
            parent->key_nodes = kn;
        }
        *cap = nc;
    }
    if (parent->kind == CORE_NODE_MAP) {
        parent->keys[parent->n] = key;
        parent->key_nodes[parent->n] = key_node;
    }
    parent->items[parent->n++] = item;
    return 0;
}

static int parse_node(struct builder *bd, yaml_event_t *ev, struct core_node **out,
                      struct core_err *err);

static int next_event(struct builder *bd, yaml_event_t *ev, struct core_err *err)
{
    if (!yaml_parser_parse(&bd->parser, ev))
        return parser_err(bd, err);
    return 0;
}

static int parse_collection(struct builder *bd, struct core_node *node, struct core_err *err)
{
    size_t cap = 0;
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next_event(bd, &ev, err)))
            return rc;
        if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (node->kind == CORE_NODE_SEQ) {
            struct core_node *item = NULL;
            rc = parse_node(bd, &ev, &item, err);
            yaml_event_delete(&ev);
            if (rc)
                return rc;
            if ((rc = node_push(bd, node, NULL, NULL, item, &cap)))
                return core_err_set(err, rc, "%s: out of memory", bd->name);
            continue;
        }
        /* mapping: key must be a scalar */
        if (ev.type != YAML_SCALAR_EVENT) {
            int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
            yaml_event_delete(&ev);
            return build_err(bd, err, line, col, "mapping keys must be plain strings");
        }
        if (node->n >= DOC_MAX_KEYS) {
            int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
            yaml_event_delete(&ev);
            return build_err(bd, err, line, col, "mapping has too many keys (limit 1024)");
        }
        struct core_node *key_node = NULL;
        rc = parse_node(bd, &ev, &key_node, err);
        yaml_event_delete(&ev);
        if (rc)
            return rc;
        for (size_t i = 0; i < node->n; i++) {
            if (strcmp(node->keys[i], key_node->value) == 0) {
                char msg[200];
                snprintf(msg, sizeof(msg), "duplicate key '%.100s'", key_node->value);
                return build_err(bd, err, key_node->line, key_node->col, msg);
            }
        }
        yaml_event_t vev;
        if ((rc = next_event(bd, &vev, err)))
            return rc;
        struct core_node *val = NULL;
        rc = parse_node(bd, &vev, &val, err);
        yaml_event_delete(&vev);
        if (rc)
            return rc;
        if ((rc = node_push(bd, node, key_node->value, key_node, val, &cap)))
            return core_err_set(err, rc, "%s: out of memory", bd->name);
    }
}

static int parse_node(struct builder *bd, yaml_event_t *ev, struct core_node **out,
                      struct core_err *err)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return build_err(bd, err, line, col, "aliases are not supported");
    case YAML_SCALAR_EVENT: {
        if (ev->data.scalar.anchor)
            return build_err(bd, err, line, col, "anchors are not supported");
        struct core_node *n = node_new(bd, CORE_NODE_SCALAR, ev);
        if (!n)
            return core_err_set(err, CORE_E_NOMEM, "%s: document too large", bd->name);
        size_t len = ev->data.scalar.length;
        if (memchr(ev->data.scalar.value, 0, len))
            return build_err(bd, err, line, col, "NUL character in value");
        n->value = core_arena_alloc(bd->arena, len + 1);
        if (!n->value)
            return core_err_set(err, CORE_E_NOMEM, "%s: document too large", bd->name);
        memcpy(n->value, ev->data.scalar.value, len);
        n->value[len] = 0;
        n->is_quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                       ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE ||
                       ev->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
                       ev->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
        if (ev->data.scalar.tag && strcmp((char *)ev->data.scalar.tag, "!") != 0 &&
            strcmp((char *)ev->data.scalar.tag, YAML_STR_TAG) != 0)
            return build_err(bd, err, line, col, "explicit tags are not supported");
        *out = n;
        return 0;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool is_seq = ev->type == YAML_SEQUENCE_START_EVENT;
        if ((is_seq && ev->data.sequence_start.anchor) ||
            (!is_seq && ev->data.mapping_start.anchor))
            return build_err(bd, err, line, col, "anchors are not supported");
        if (++bd->depth > DOC_MAX_DEPTH)
            return build_err(bd, err, line, col, "document nested too deeply");
        struct core_node *n = node_new(bd, is_seq ? CORE_NODE_SEQ : CORE_NODE_MAP, ev);
        if (!n)
            return core_err_set(err, CORE_E_NOMEM, "%s: document too large", bd->name);
        int rc = parse_collection(bd, n, err);
        bd->depth--;
        if (rc)
            return rc;
        *out = n;
        return 0;
    }
    default:
        return build_err(bd, err, line, col, "unexpected document structure");
    }
}

static int check_input(const char *name, const char *text, size_t len, struct core_err *err)
{
    if (memchr(text, 0, len))
        return core_err_set(err, CORE_E_INVAL, "%s: contains a NUL byte", name);
    if (!core_utf8_valid(text, len))
        return core_err_set(err, CORE_E_INVAL, "%s: is not valid UTF-8", name);
    return 0;
}

int core_doc_parse_stream(const char *name, const char *text, size_t len, core_doc_fn fn,
                          void *arg, struct core_err *err)
{
    int rc = check_input(name, text, len, err);
    if (rc)
        return rc;
    struct core_arena arena;
    core_arena_init(&arena, DOC_ARENA_CAP);
    struct builder bd = {.arena = &arena, .name = name};
    if (!yaml_parser_initialize(&bd.parser)) {
        core_arena_release(&arena);
        return core_err_set(err, CORE_E_NOMEM, "%s: cannot create parser", name);
    }
    yaml_parser_set_input_string(&bd.parser, (const unsigned char *)text, len);
    yaml_parser_set_encoding(&bd.parser, YAML_UTF8_ENCODING);
    for (;;) {
        yaml_event_t ev;
        if ((rc = next_event(&bd, &ev, err)))
            break;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t != YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        yaml_event_delete(&ev);
        struct core_node *root = NULL;
        if ((rc = next_event(&bd, &ev, err)))
            break;
        if (ev.type != YAML_DOCUMENT_END_EVENT) {
            rc = parse_node(&bd, &ev, &root, err);
            yaml_event_delete(&ev);
            if (rc)
                break;
            if ((rc = next_event(&bd, &ev, err)))
                break;
        }
        yaml_event_delete(&ev); /* document end */
        if ((rc = fn(arg, root, err)))
            break;
    }
    yaml_parser_delete(&bd.parser);
    core_arena_release(&arena);
    return rc;
}

struct single {
    struct core_doc *doc;
    int count;
};

int core_doc_parse(struct core_doc *doc, const char *name, const char *text, size_t len,
                   struct core_err *err)
{
    core_arena_init(&doc->arena, DOC_ARENA_CAP);
    doc->root = NULL;
    int rc = check_input(name, text, len, err);
    if (rc)
        return rc;
    struct builder bd = {.arena = &doc->arena, .name = name};
    if (!yaml_parser_initialize(&bd.parser))
        return core_err_set(err, CORE_E_NOMEM, "%s: cannot create parser", name);
    yaml_parser_set_input_string(&bd.parser, (const unsigned char *)text, len);
    yaml_parser_set_encoding(&bd.parser, YAML_UTF8_ENCODING);
    int docs = 0;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next_event(&bd, &ev, err)))
            break;
        yaml_event_type_t t = ev.type;
        int line = (int)ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT)
            break;
        if (t != YAML_DOCUMENT_START_EVENT)
            continue;
        if (++docs > 1) {
            rc = build_err(&bd, err, line, 1, "expected a single document, found several");
            break;
        }
        if ((rc = next_event(&bd, &ev, err)))
            break;
        if (ev.type != YAML_DOCUMENT_END_EVENT) {
            rc = parse_node(&bd, &ev, &doc->root, err);
            yaml_event_delete(&ev);
            if (rc)
                break;
            if ((rc = next_event(&bd, &ev, err)))
                break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&bd.parser);
    if (rc)
        core_doc_release(doc);
    return rc;
}

void core_doc_release(struct core_doc *doc)
{
    core_arena_release(&doc->arena);
    doc->root = NULL;
}

struct core_node *core_node_get(const struct core_node *map, const char *key)
{
    if (!map || map->kind != CORE_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->items[i];
    return NULL;
}

bool core_scalar_is_null(const struct core_node *n)
{
    if (!n || n->kind != CORE_NODE_SCALAR || n->is_quoted)
        return false;
    const char *v = n->value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

bool core_scalar_is_bool(const struct core_node *n, bool *out)
{
    if (!n || n->kind != CORE_NODE_SCALAR || n->is_quoted)
        return false;
    const char *v = n->value;
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) {
        if (out)
            *out = true;
        return true;
    }
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) {
        if (out)
            *out = false;
        return true;
    }
    return false;
}

bool core_scalar_is_int(const struct core_node *n, int64_t *out)
{
    if (!n || n->kind != CORE_NODE_SCALAR || n->is_quoted || !n->value[0])
        return false;
    const char *v = n->value;
    const char *p = (*v == '-' || *v == '+') ? v + 1 : v;
    if (!*p)
        return false;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return false;
    errno = 0;
    long long x = strtoll(v, NULL, 10);
    if (errno)
        return false;
    if (out)
        *out = x;
    return true;
}

bool core_scalar_is_number(const struct core_node *n, double *out)
{
    if (!n || n->kind != CORE_NODE_SCALAR || n->is_quoted || !n->value[0])
        return false;
    const char *v = n->value;
    const char *p = v;
    if (*p == '-' || *p == '+')
        p++;
    bool digits = false, dot = false, exp = false;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            digits = true;
        } else if (*p == '.' && !dot && !exp) {
            dot = true;
        } else if ((*p == 'e' || *p == 'E') && digits && !exp) {
            exp = true;
            if (p[1] == '-' || p[1] == '+')
                p++;
            if (!p[1])
                return false;
        } else {
            return false;
        }
    }
    if (!digits)
        return false;
    errno = 0;
    double d = strtod(v, NULL);
    if (errno || !isfinite(d))
        return false;
    if (out)
        *out = d;
    return true;
}

int core_node_to_json(const struct core_node *node, struct core_buf *out)
{
    int rc = 0;
    if (!node)
        return core_buf_adds(out, "null");
    switch (node->kind) {
    case CORE_NODE_SCALAR:
        if (core_scalar_is_null(node))
            return core_buf_adds(out, "null");
        if (core_scalar_is_bool(node, NULL) || core_scalar_is_number(node, NULL)) {
            bool b;
            if (core_scalar_is_bool(node, &b))
                return core_buf_adds(out, b ? "true" : "false");
            /* JSON forbids leading '+' and leading zeros; re-render those. */
            const char *v = node->value;
            if (v[0] == '+' || (v[0] == '0' && v[1] >= '0' && v[1] <= '9') ||
                (v[0] == '-' && v[1] == '0' && v[2] >= '0' && v[2] <= '9') || v[0] == '.' ||
                (v[0] == '-' && v[1] == '.') ||
                strstr(v, ".e") || v[strlen(v) - 1] == '.') {
                double d = 0;
                core_scalar_is_number(node, &d);
                return core_buf_addf(out, "%.17g", d);
            }
            return core_buf_adds(out, v);
        }
        return core_buf_add_json_str(out, node->value);
    case CORE_NODE_SEQ:
        rc = core_buf_addc(out, '[');
        for (size_t i = 0; !rc && i < node->n; i++) {
            if (i)
                rc = core_buf_addc(out, ',');
            if (!rc)
                rc = core_node_to_json(node->items[i], out);
        }
        return rc ? rc : core_buf_addc(out, ']');
    case CORE_NODE_MAP:
        rc = core_buf_addc(out, '{');
        for (size_t i = 0; !rc && i < node->n; i++) {
            if (i)
                rc = core_buf_addc(out, ',');
            if (!rc)
                rc = core_buf_add_json_str(out, node->keys[i]);
            if (!rc)
                rc = core_buf_addc(out, ':');
            if (!rc)
                rc = core_node_to_json(node->items[i], out);
        }
        return rc ? rc : core_buf_addc(out, '}');
    }
    return CORE_E_INVAL;
}
