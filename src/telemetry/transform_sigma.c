/* The sigma transform: evaluates Sigma detection rules (src/security) on every record and tags
 * the ones that match with `security.rule_ids` (a JSON array of rule ids, in load order),
 * `security.rule_titles` and `security.rule_levels` (arrays parallel to the ids, for the
 * `security` sink) and `security.level` (the highest level among them). Attributes named
 * `security.*` that a record brought itself are dropped first, so a service cannot forge a
 * detection by logging them. docs/security.md.
 *
 *   transforms:
 *     - type: sigma
 *       rules: /etc/pave/sigma          # a directory of *.yml, a file, or a list of them
 *       builtin: true                   # also the rules built into pave (default false)
 *       strict: false                   # true: a rule that does not load stops the engine
 *
 * Rules that do not load (unsupported features, malformed YAML) are logged one by one with the
 * reason at start; with strict they are a config error instead. */
#include <string.h>

#include "security/security.h"
#include "telemetry/telemetry_int.h"

#define SIGMA_MAX_HITS 32

static int sigma_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                        struct core_err *err)
{
    static const char *const keys[] = {"type", "rules", "builtin", "strict", NULL};
    bool strict = false, builtin = false;
    int rc = tel_cfg_keys(e, cfg, "the sigma transform", keys, err);
    if (!rc)
        rc = tel_cfg_bool(e, cfg, "strict", false, &strict, err);
    if (!rc)
        rc = tel_cfg_bool(e, cfg, "builtin", false, &builtin, err);
    if (rc)
        return rc;
    const struct core_node *rules = core_node_get(cfg, "rules");
    if (!rules && !builtin)
        return tel_cfg_error(e, cfg, err, "the sigma transform needs 'rules' (a directory or "
                                          "file of Sigma rules, or a list of them) or "
                                          "'builtin: true'");
    struct security_sigma_set *set = security_sigma_set_new();
    if (!set)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    if (builtin && (rc = security_sigma_add_builtin(set, err)))
        rc = tel_cfg_error(e, core_node_get(cfg, "builtin"), err, "built-in rules: %s", err->msg);
    size_t n = !rules ? 0 : rules->kind == CORE_NODE_SEQ ? rules->n : 1;
    for (size_t i = 0; i < n && !rc; i++) {
        const struct core_node *p = rules->kind == CORE_NODE_SEQ ? rules->items[i] : rules;
        if (p->kind != CORE_NODE_SCALAR) {
            rc = tel_cfg_error(e, p, err, "rules: a path expected");
            break;
        }
        rc = security_sigma_add_path(set, p->value, err);
        if (rc)
            rc = tel_cfg_error(e, p, err, "%s", err->msg);
    }
    for (size_t i = 0; !rc && i < security_sigma_rejected_count(set); i++) {
        const struct security_sigma_reject *r = security_sigma_rejected(set, i);
        if (strict) {
            rc = tel_cfg_error(e, rules ? rules : cfg, err, "sigma rule not loaded: %s",
                               r->reason);
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

/* A JSON array in the arena of field f of each hit rule (0 id, 1 title, 2 level). */
static char *json_list(struct tel_batch *b, const struct security_sigma_set *set,
                       const size_t *hits, size_t n, int f, uint32_t *len)
{
    struct core_buf l;
    core_buf_init(&l, 1 << 16);
    core_buf_add(&l, "[", 1);
    for (size_t i = 0; i < n; i++) {
        const struct security_sigma_rule *rule = security_sigma_rule(set, hits[i]);
        if (i)
            core_buf_add(&l, ",", 1);
        core_buf_add_json_str(&l, f == 0 ? rule->id : f == 1 ? rule->title : rule->level);
    }
    core_buf_add(&l, "]", 1);
    char *json = core_arena_alloc(&b->arena, l.len + 1);
    if (json)
        memcpy(json, l.data, l.len + 1);
    *len = (uint32_t)l.len;
    core_buf_release(&l);
    return json;
}

/* Appends the attributes to r (a new attrs array in the arena). */
static void tag(struct tel_batch *b, struct tel_record *r, const struct security_sigma_set *set,
                const size_t *hits, size_t n)
{
    const char *level = "";
    for (size_t i = 0; i < n; i++) {
        const struct security_sigma_rule *rule = security_sigma_rule(set, hits[i]);
        if (level_rank(rule->level) > level_rank(level))
            level = rule->level;
    }
    uint32_t lens[3];
    char *ids = json_list(b, set, hits, n, 0, &lens[0]);
    char *titles = json_list(b, set, hits, n, 1, &lens[1]);
    char *levels = json_list(b, set, hits, n, 2, &lens[2]);
    struct tel_kv *a = core_arena_alloc(&b->arena, (r->nattrs + 4) * sizeof(*a));
    if (a && ids && titles && levels) {
        if (r->nattrs)
            memcpy(a, r->attrs, r->nattrs * sizeof(*a));
        a[r->nattrs++] = (struct tel_kv){"security.rule_ids", 17, lens[0], ids, TEL_V_JSON};
        a[r->nattrs++] = (struct tel_kv){"security.rule_titles", 20, lens[1], titles,
                                         TEL_V_JSON};
        a[r->nattrs++] = (struct tel_kv){"security.rule_levels", 20, lens[2], levels,
                                         TEL_V_JSON};
        if (*level)
            a[r->nattrs++] = (struct tel_kv){"security.level", 14, (uint32_t)strlen(level), level,
                                             TEL_V_STR};
        r->attrs = a;
    }
}

/* Drops the record's own security.* attributes: only this transform writes them. */
static void strip_forged(struct tel_record *r)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < r->nattrs; i++)
        if (!(r->attrs[i].klen >= 9 && memcmp(r->attrs[i].key, "security.", 9) == 0))
            r->attrs[k++] = r->attrs[i];
    r->nattrs = k;
}

static void sigma_apply(void *state, struct tel_batch *b)
{
    const struct security_sigma_set *set = state;
    size_t hits[SIGMA_MAX_HITS];
    for (size_t i = 0; i < b->n; i++) {
        strip_forged(&b->recs[i]);
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
