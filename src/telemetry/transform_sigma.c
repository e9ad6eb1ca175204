/* The sigma transform: evaluates Sigma detection rules (src/security) on every record and tags
 * the ones that match with `security.rule_ids` (a JSON array of rule ids, in load order) and
 * `security.level` (the highest level among them). docs/security.md.
 *
 *   transforms:
 *     - type: sigma
 *       rules: /etc/pave/sigma          # a directory of *.yml, a file, or a list of them
 *       strict: false                   # true: a rule that does not load stops the engine
 *
 * Rules that do not load (unsupported features, malformed YAML) are logged one by one with the
 * reason at start; with strict they are a config error instead. */
#include <string.h>
#include <sys/stat.h>

#include "security/security.h"
#include "telemetry/telemetry_int.h"

#define SIGMA_MAX_HITS 32

static int load_path(struct security_sigma_set *set, const char *path, struct core_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return core_err_set(err, CORE_E_IO, "no rules at '%s'", path);
    if (S_ISDIR(st.st_mode))
        return security_sigma_add_dir(set, path, err);
    char *text = NULL;
    size_t len = 0;
    int rc = core_file_read(path, 1u << 20, &text, &len, err);
    if (!rc) {
        struct core_err e = {0};
        rc = security_sigma_add(set, path, text, len, &e) == CORE_E_NOMEM ? CORE_E_NOMEM : 0;
        if (rc)
            core_err_set(err, rc, "out of memory");
    }
    core_free(text);
    return rc;
}

static int sigma_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                        struct core_err *err)
{
    static const char *const keys[] = {"type", "rules", "strict", NULL};
    bool strict = false;
    int rc = tel_cfg_keys(e, cfg, "the sigma transform", keys, err);
    if (!rc)
        rc = tel_cfg_bool(e, cfg, "strict", false, &strict, err);
    if (rc)
        return rc;
    const struct core_node *rules = core_node_get(cfg, "rules");
    if (!rules)
        return tel_cfg_error(e, cfg, err, "the sigma transform needs 'rules' (a directory or "
                                          "file of Sigma rules, or a list of them)");
    struct security_sigma_set *set = security_sigma_set_new();
    if (!set)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    size_t n = rules->kind == CORE_NODE_SEQ ? rules->n : 1;
    for (size_t i = 0; i < n && !rc; i++) {
        const struct core_node *p = rules->kind == CORE_NODE_SEQ ? rules->items[i] : rules;
        if (p->kind != CORE_NODE_SCALAR) {
            rc = tel_cfg_error(e, p, err, "rules: a path expected");
            break;
        }
        rc = load_path(set, p->value, err);
        if (rc)
            rc = tel_cfg_error(e, p, err, "%s", err->msg);
    }
    for (size_t i = 0; !rc && i < security_sigma_rejected_count(set); i++) {
        const struct security_sigma_reject *r = security_sigma_rejected(set, i);
        if (strict) {
            rc = tel_cfg_error(e, rules, err, "sigma rule not loaded: %s", r->reason);
            break;
        }
        log_warn("telemetry", "sigma rule not loaded", LOG_STR("rule", r->source),
                 LOG_STR("title", r->title), LOG_STR("reason", r->reason));
    }
    if (rc) {
        security_sigma_set_free(set);
        return rc;
    }
    log_info("telemetry", "sigma rules loaded", LOG_INT("loaded", security_sigma_count(set)),
             LOG_INT("rejected", security_sigma_rejected_count(set)));
    *state = set;
    return 0;
}

static int level_rank(const char *l)
{
    static const char *const order[] = {"informational", "low", "medium", "high", "critical"};
    for (int i = 0; i < 5; i++)
        if (strcmp(l, order[i]) == 0)
            return i + 1;
    return 0;
}

/* Appends the two attributes to r (a new attrs array in the arena). */
static void tag(struct tel_batch *b, struct tel_record *r, const struct security_sigma_set *set,
                const size_t *hits, size_t n)
{
    struct core_buf ids;
    core_buf_init(&ids, 1 << 16);
    core_buf_add(&ids, "[", 1);
    const char *level = "";
    for (size_t i = 0; i < n; i++) {
        const struct security_sigma_rule *rule = security_sigma_rule(set, hits[i]);
        if (i)
            core_buf_add(&ids, ",", 1);
        core_buf_add_json_str(&ids, rule->id);
        if (level_rank(rule->level) > level_rank(level))
            level = rule->level;
    }
    core_buf_add(&ids, "]", 1);
    struct tel_kv *a = core_arena_alloc(&b->arena, (r->nattrs + 2) * sizeof(*a));
    char *json = core_arena_alloc(&b->arena, ids.len + 1);
    if (a && json) {
        memcpy(json, ids.data, ids.len + 1);
        if (r->nattrs)
            memcpy(a, r->attrs, r->nattrs * sizeof(*a));
        a[r->nattrs++] = (struct tel_kv){"security.rule_ids", 17, (uint32_t)ids.len, json,
                                         TEL_V_JSON};
        if (*level)
            a[r->nattrs++] = (struct tel_kv){"security.level", 14, (uint32_t)strlen(level), level,
                                             TEL_V_STR};
        r->attrs = a;
    }
    core_buf_release(&ids);
}

static void sigma_apply(void *state, struct tel_batch *b)
{
    const struct security_sigma_set *set = state;
    size_t hits[SIGMA_MAX_HITS];
    for (size_t i = 0; i < b->n; i++) {
        size_t n = security_sigma_match(set, &b->recs[i], &b->arena, hits, SIGMA_MAX_HITS);
        if (n)
            tag(b, &b->recs[i], set, hits, n < SIGMA_MAX_HITS ? n : SIGMA_MAX_HITS);
    }
}

static void sigma_destroy(void *state)
{
    security_sigma_set_free(state);
}

const struct tel_transform_ops tel_transform_sigma = {"sigma", sigma_create, sigma_apply,
                                                      sigma_destroy};
