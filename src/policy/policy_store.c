/*
 * The platform side of policy (policy.h, "the platform"): policy documents versioned in the
 * store, the active compiled set, exceptions and their approval, gate decisions, background
 * scans and compliance reports.
 *
 * The active set is compiled from the newest non-deleted version of every stored policy when
 * the engine opens and again after each apply or delete; it is swapped under a rwlock, so gates
 * always read a whole set, never half of one. Results borrow rule ids, policy names, kinds and
 * remediation texts from the set that produced them; because a swap frees the old set while a
 * caller may still hold results, those strings are interned in the engine (a pool that only
 * grows by distinct texts) before the read lock is dropped.
 */
#include "policy/policy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "schema/schema.h"
#include "store/store.h"

#define EXCEPTION_MAX_MS (366LL * 24 * 3600 * 1000) /* "at most 1 year" (leap years included) */
#define SCANS_KEPT 300                              /* about a day at one scan every 5 minutes */
#define TREND_SCANS 30
#define POLICY_DOC_MAX (1024 * 1024)

extern const char policy_default_yaml[];

/* ---- interned strings ---------------------------------------------------------------------- */

struct intern_pool {
    pthread_mutex_t lock;
    char **slots;
    size_t cap; /* power of two */
    size_t n;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int intern_grow(struct intern_pool *p)
{
    size_t cap = p->cap ? p->cap * 2 : 256;
    char **slots = core_calloc(cap, sizeof(*slots));
    if (!slots)
        return CORE_E_NOMEM;
    for (size_t i = 0; i < p->cap; i++) {
        if (!p->slots[i])
            continue;
        size_t j = fnv1a(p->slots[i]) & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = p->slots[i];
    }
    core_free(p->slots);
    p->slots = slots;
    p->cap = cap;
    return 0;
}

/* returns: the pool's copy of s (lives until the engine is freed), NULL for NULL or NOMEM. */
static const char *intern(struct intern_pool *p, const char *s)
{
    if (!s)
        return NULL;
    const char *res = NULL;
    pthread_mutex_lock(&p->lock);
    if ((p->n + 1) * 2 > p->cap && intern_grow(p))
        goto out;
    size_t j = fnv1a(s) & (p->cap - 1);
    while (p->slots[j] && strcmp(p->slots[j], s) != 0)
        j = (j + 1) & (p->cap - 1);
    if (!p->slots[j]) {
        if (!(p->slots[j] = core_strdup(s)))
            goto out;
        p->n++;
    }
    res = p->slots[j];
out:
    pthread_mutex_unlock(&p->lock);
    return res;
}

static void intern_release(struct intern_pool *p)
{
    for (size_t i = 0; i < p->cap; i++)
        core_free(p->slots[i]);
    core_free(p->slots);
    pthread_mutex_destroy(&p->lock);
}

/* ---- the engine ---------------------------------------------------------------------------- */

struct policy_engine {
    struct store *st;
    struct catalog *cat;
    pthread_rwlock_t set_lock;  /* guards set */
    struct policy_set *set;     /* NULL: no policy stored (everything passes) */
    char load_error[512];       /* why the stored policies did not compile at open, or "" */
    pthread_mutex_t write_lock; /* serializes apply and delete (compile + store + swap) */
    pthread_mutex_t scan_lock;  /* one scan at a time */
    struct intern_pool pool;
};

static void now_text(char out[40])
{
    core_time_format(core_now_ms(), out, 40);
}

/* One stored version of a policy. */
struct stored_doc {
    char *name;
    int64_t version;
    char *yaml;
    char *digest;
    bool deleted;
    char *created_by;
    char *created_at;
    char *file; /* name for messages: "stored:NAME@vN" */
};

struct stored_list {
    struct stored_doc *v;
    size_t n, cap;
};

static void stored_list_release(struct stored_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct stored_doc *d = &l->v[i];
        core_free(d->name);
        core_free(d->yaml);
        core_free(d->digest);
        core_free(d->created_by);
        core_free(d->created_at);
        core_free(d->file);
    }
    core_free(l->v);
    memset(l, 0, sizeof(*l));
}

static int stored_row(void *arg, const struct store_row *row)
{
    struct stored_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct stored_doc *v = core_realloc(l->v, cap * sizeof(*v));
        if (!v)
            return CORE_E_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    struct stored_doc *d = &l->v[l->n];
    memset(d, 0, sizeof(*d));
    d->name = core_strdup(store_row_text(row, "name"));
    d->version = store_row_int(row, "version");
    d->yaml = core_strdup(store_row_text(row, "yaml"));
    d->digest = core_strdup(store_row_text(row, "digest"));
    d->deleted = store_row_int(row, "deleted") != 0;
    d->created_by = core_strdup(store_row_text(row, "created_by"));
    d->created_at = core_strdup(store_row_text(row, "created_at"));
    char file[300];
    snprintf(file, sizeof(file), "stored:%s@v%lld", d->name ? d->name : "?",
             (long long)d->version);
    d->file = core_strdup(file);
    l->n++;
    if (!d->name || !d->yaml || !d->digest || !d->created_by || !d->created_at || !d->file)
        return CORE_E_NOMEM;
    return 0;
}

#define STORED_COLS "name, version, yaml, digest, deleted, created_by, created_at"

/* The newest version of every policy name (deleted ones included), by name. */
static int load_latest(struct policy_engine *pe, struct stored_list *out, struct core_err *err)
{
    memset(out, 0, sizeof(*out));
    int rc = store_query(pe->st,
                         "SELECT " STORED_COLS " FROM policies p WHERE version = (SELECT "
                         "MAX(version) FROM policies q WHERE q.name = p.name) ORDER BY name",
                         NULL, 0, stored_row, out, err);
    if (rc == CORE_E_NOMEM)
        core_err_set(err, rc, "out of memory");
    return rc;
}

static const struct stored_doc *find_stored(const struct stored_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    return NULL;
}

/* Compiles docs (NULL set when there are none); diags (may be NULL) receives every problem. */
static int compile(const struct policy_doc *docs, size_t n, struct policy_set **out,
                   json_t **warnings, struct schema_diags *diags, struct core_err *err)
{
    *out = NULL;
    if (n == 0)
        return 0;
    *out = policy_set_parse_diags(docs, n, warnings, diags, err);
    if (!*out)
        return err && err->code ? err->code : CORE_E_INVAL;
    return 0;
}

/* Compiles the active stored documents. */
static int compile_stored(struct policy_engine *pe, struct policy_set **out,
                          struct core_err *err)
{
    struct stored_list l;
    *out = NULL;
    int rc = load_latest(pe, &l, err);
    if (rc)
        return rc;
    struct policy_doc *docs = core_calloc(l.n + 1, sizeof(*docs));
    size_t n = 0;
    if (!docs) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < l.n; i++)
        if (!l.v[i].deleted)
            docs[n++] = (struct policy_doc){l.v[i].file, l.v[i].yaml, strlen(l.v[i].yaml)};
    rc = compile(docs, n, out, NULL, NULL, err);
out:
    core_free(docs);
    stored_list_release(&l);
    return rc;
}

static void swap_set(struct policy_engine *pe, struct policy_set *set)
{
    pthread_rwlock_wrlock(&pe->set_lock);
    struct policy_set *old = pe->set;
    pe->set = set;
    pe->load_error[0] = 0;
    pthread_rwlock_unlock(&pe->set_lock);
    policy_set_free(old);
}

struct policy_engine *policy_engine_open(struct store *st, struct catalog *cat,
                                         struct core_err *err)
{
    struct policy_engine *pe = core_calloc(1, sizeof(*pe));
    if (!pe) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    pe->st = st;
    pe->cat = cat;
    pthread_rwlock_init(&pe->set_lock, NULL);
    pthread_mutex_init(&pe->write_lock, NULL);
    pthread_mutex_init(&pe->scan_lock, NULL);
    pthread_mutex_init(&pe->pool.lock, NULL);
    struct core_err cerr = {0};
    int rc = compile_stored(pe, &pe->set, &cerr);
    if (rc == CORE_E_NOMEM || rc == CORE_E_IO) {
        core_err_set(err, rc, "loading the stored policies: %s", cerr.msg);
        policy_engine_free(pe);
        return NULL;
    }
    if (rc) {
        /* A stored set that no longer compiles (say, after an upgrade changed the language)
         * must not keep the platform from starting: admins fix it through the API. Until then
         * no rule applies, and policy_list says why. */
        snprintf(pe->load_error, sizeof(pe->load_error), "%s", cerr.msg);
        log_error("policy", "stored policies do not compile; no rule applies until fixed",
                  LOG_STR("error", cerr.msg));
    }
    return pe;
}

void policy_engine_free(struct policy_engine *pe)
{
    if (!pe)
        return;
    policy_set_free(pe->set);
    pthread_rwlock_destroy(&pe->set_lock);
    pthread_mutex_destroy(&pe->write_lock);
    pthread_mutex_destroy(&pe->scan_lock);
    intern_release(&pe->pool);
    core_free(pe);
}

/* ---- apply and delete ---------------------------------------------------------------------- */

/* One Policy object of a request: its own text (between '---' separators) and name. */
struct chunk {
    const char *doc_name;
    char *text;
    char *name; /* metadata.name, NULL if it has none (the compiler reports that) */
    char digest[65];
    bool empty; /* comments or blank only */
};

struct chunks {
    struct chunk *v;
    size_t n, cap;
};

static void chunks_release(struct chunks *c)
{
    for (size_t i = 0; i < c->n; i++) {
        core_free(c->v[i].text);
        core_free(c->v[i].name);
    }
    core_free(c->v);
    memset(c, 0, sizeof(*c));
}

static bool is_separator(const char *line, size_t len)
{
    return len >= 3 && memcmp(line, "---", 3) == 0 &&
           (len == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
}

/* Whether text holds only blank lines and comments (what precedes a leading '---'). */
static bool is_blank(const char *text, size_t len)
{
    bool comment = false;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == '\n')
            comment = false;
        else if (ch == '#' && !comment)
            comment = true;
        else if (!comment && ch != ' ' && ch != '\t' && ch != '\r')
            return false;
    }
    return true;
}

static int add_chunk(struct chunks *c, const char *doc_name, const char *text, size_t len)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct chunk *v = core_realloc(c->v, cap * sizeof(*v));
        if (!v)
            return CORE_E_NOMEM;
        c->v = v;
        c->cap = cap;
    }
    struct chunk *k = &c->v[c->n];
    memset(k, 0, sizeof(*k));
    if (!(k->text = core_strndup(text, len)))
        return CORE_E_NOMEM;
    c->n++;
    k->doc_name = doc_name;
    core_sha256_hex(k->text, len, k->digest);
    if (is_blank(text, len)) {
        k->empty = true;
        return 0;
    }
    struct core_doc d;
    struct core_err perr = {0};
    if (core_doc_parse(&d, doc_name, k->text, len, &perr) == 0) {
        k->empty = d.root == NULL;
        struct core_node *md = d.root ? core_node_get(d.root, "metadata") : NULL;
        struct core_node *nm = md && md->kind == CORE_NODE_MAP ? core_node_get(md, "name") : NULL;
        if (nm && nm->kind == CORE_NODE_SCALAR && !(k->name = core_strdup(nm->value))) {
            core_doc_release(&d);
            return CORE_E_NOMEM;
        }
        core_doc_release(&d);
    }
    return 0;
}

/* Splits a document stream at '---' lines, so each Policy object is stored on its own. */
static int split_doc(struct chunks *c, const struct policy_doc *doc)
{
    const char *p = doc->text, *end = doc->text + doc->len, *start = p;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;
        if (is_separator(p, (size_t)((nl ? nl : end) - p))) {
            int rc = add_chunk(c, doc->name, start, (size_t)(p - start));
            if (rc)
                return rc;
            start = next;
        }
        p = next;
    }
    return add_chunk(c, doc->name, start, (size_t)(end - start));
}

static bool name_in(const struct chunks *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].name && strcmp(c->v[i].name, name) == 0)
            return true;
    return false;
}

static int audit(struct store *st, const char *actor, const char *action, const char *object,
                 const char *before, const char *after, const char *detail, struct core_err *err)
{
    struct store_audit_event ev = {.actor = actor, .action = action, .kind = "policy",
                                   .object = object, .before = before, .after = after,
                                   .detail = detail};
    return store_audit_append(st, &ev, err);
}

static int apply_locked(struct policy_engine *pe, const struct catalog_actor *actor,
                        const struct policy_doc *docs, size_t ndocs, json_t **result,
                        struct core_err *err)
{
    struct chunks ch = {0};
    struct stored_list cur = {0};
    struct policy_doc *all = NULL;
    struct policy_set *set = NULL;
    json_t *warnings = NULL, *applied = NULL;
    struct schema_diags diags;
    bool in_txn = false;
    int rc = 0;
    schema_diags_init(&diags);
    for (size_t i = 0; i < ndocs && !rc; i++) {
        if (docs[i].len > POLICY_DOC_MAX)
            rc = core_err_set(err, CORE_E_TOO_BIG, "%s: policy document over %d bytes",
                              docs[i].name, POLICY_DOC_MAX);
        else if ((rc = split_doc(&ch, &docs[i])))
            core_err_set(err, rc, "out of memory");
    }
    if (rc)
        goto out;
    for (size_t i = 0; i < ch.n; i++)
        for (size_t j = 0; j < i; j++)
            if (ch.v[i].name && ch.v[j].name && strcmp(ch.v[i].name, ch.v[j].name) == 0) {
                rc = core_err_set(err, CORE_E_INVAL,
                                  "%s: policy '%s' is given twice (also in %s); apply one "
                                  "version of it",
                                  ch.v[i].doc_name, ch.v[i].name, ch.v[j].doc_name);
                goto out;
            }
    if ((rc = load_latest(pe, &cur, err)))
        goto out;
    /* The would-be set: every stored policy this request does not replace, plus the request's
     * documents as given (so problems point at the caller's file:line:col). */
    if (!(all = core_calloc(cur.n + ndocs + 1, sizeof(*all)))) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < cur.n; i++)
        if (!cur.v[i].deleted && !name_in(&ch, cur.v[i].name))
            all[n++] = (struct policy_doc){cur.v[i].file, cur.v[i].yaml, strlen(cur.v[i].yaml)};
    for (size_t i = 0; i < ndocs; i++)
        all[n++] = docs[i];
    if ((rc = compile(all, n, &set, &warnings, &diags, err))) {
        if (result && diags.n) {
            json_t *problems = json_array();
            for (size_t i = 0; problems && i < diags.n; i++) {
                const struct schema_diag *g = &diags.items[i];
                json_array_append_new(problems,
                                      json_pack("{s:s?,s:i,s:i,s:s?,s:s?,s:s?}", "file", g->file,
                                                "line", g->line, "column", g->col, "path",
                                                g->path, "message", g->message, "hint", g->hint));
            }
            *result = problems ? json_pack("{s:o}", "problems", problems) : NULL;
        }
        goto out;
    }
    size_t named = 0;
    for (size_t i = 0; i < ch.n; i++) {
        if (ch.v[i].empty)
            continue;
        if (!ch.v[i].name) {
            rc = core_err_set(err, CORE_E_INVAL,
                              "%s: a document has no metadata.name after splitting at '---' "
                              "lines; start each policy with a '---' line of its own",
                              ch.v[i].doc_name);
            goto out;
        }
        named++;
    }
    if (named == 0) {
        rc = core_err_set(err, CORE_E_INVAL, "no Policy document given");
        goto out;
    }
    if (!(applied = json_array())) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    char now[40];
    now_text(now);
    if ((rc = store_txn_begin(pe->st, err)))
        goto out;
    in_txn = true;
    bool changed = false;
    for (size_t i = 0; i < ch.n; i++) {
        struct chunk *k = &ch.v[i];
        if (k->empty)
            continue;
        const struct stored_doc *old = find_stored(&cur, k->name);
        bool active = old && !old->deleted;
        const char *change = !active ? "created" : "updated";
        int64_t version = old ? old->version + 1 : 1;
        if (active && strcmp(old->digest, k->digest) == 0) {
            change = "unchanged";
            version = old->version;
        } else {
            struct store_value p[] = {STORE_V_TEXT(k->name), STORE_V_INT(version),
                                      STORE_V_TEXT(k->text), STORE_V_TEXT(k->digest),
                                      STORE_V_TEXT(actor->user), STORE_V_TEXT(now)};
            char detail[160];
            snprintf(detail, sizeof(detail), "version %lld", (long long)version);
            if ((rc = store_exec(pe->st,
                                 "INSERT INTO policies (name, version, yaml, digest, deleted, "
                                 "created_by, created_at) VALUES (?, ?, ?, ?, 0, ?, ?)",
                                 p, 6, NULL, err)) ||
                (rc = audit(pe->st, actor->user, "policy.apply", k->name,
                            active ? old->digest : NULL, k->digest, detail, err)))
                goto out;
            changed = true;
        }
        if (json_array_append_new(applied, json_pack("{s:s,s:I,s:s}", "name", k->name, "version",
                                                     (json_int_t)version, "change", change))) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
    }
    in_txn = false;
    if (!changed)
        store_txn_rollback(pe->st);
    else if ((rc = store_txn_commit(pe->st, err)))
        goto out;
    if (changed) {
        /* Recompile from the store, so the active set (and its digest) is exactly what a
         * restart would load; the request's set is the fallback if that somehow fails. */
        struct policy_set *fresh = NULL;
        struct core_err rerr = {0};
        if (compile_stored(pe, &fresh, &rerr) == 0) {
            policy_set_free(set);
            set = fresh;
        } else {
            log_error("policy", "recompiling the stored policies failed",
                      LOG_STR("error", rerr.msg));
        }
        swap_set(pe, set);
        set = NULL;
    }
    if (result) {
        *result = json_pack("{s:O,s:o}", "applied", applied, "warnings",
                            warnings ? json_incref(warnings) : json_array());
        if (!*result)
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
out:
    if (in_txn)
        store_txn_rollback(pe->st);
    policy_set_free(set);
    json_decref(warnings);
    json_decref(applied);
    schema_diags_release(&diags);
    core_free(all);
    stored_list_release(&cur);
    chunks_release(&ch);
    return rc;
}

int policy_apply(struct policy_engine *pe, const struct catalog_actor *actor,
                 const struct policy_doc *docs, size_t ndocs, json_t **result,
                 struct core_err *err)
{
    if (result)
        *result = NULL;
    if (!actor || !actor->is_admin)
        return core_err_set(err, CORE_E_PERM, "only an admin may apply policies");
    if (ndocs == 0)
        return core_err_set(err, CORE_E_INVAL, "no Policy document given");
    pthread_mutex_lock(&pe->write_lock);
    int rc = apply_locked(pe, actor, docs, ndocs, result, err);
    pthread_mutex_unlock(&pe->write_lock);
    return rc;
}

int policy_engine_load_defaults(struct policy_engine *pe, struct core_err *err)
{
    int64_t n = 0;
    int rc = store_query_int(pe->st, "SELECT COUNT(*) FROM policies", NULL, 0, &n, err);
    if (rc || n > 0)
        return rc;
    struct policy_doc doc = {"policies/default.yaml", policy_default_yaml,
                             strlen(policy_default_yaml)};
    rc = policy_apply(pe, &catalog_actor_system, &doc, 1, NULL, err);
    if (rc)
        core_err_wrap(err, "loading the default policies");
    return rc;
}

int policy_delete(struct policy_engine *pe, const struct catalog_actor *actor, const char *name,
                  struct core_err *err)
{
    if (!actor || !actor->is_admin)
        return core_err_set(err, CORE_E_PERM, "only an admin may delete policies");
    if (!name || !*name)
        return core_err_set(err, CORE_E_INVAL, "a policy name is required");
    struct stored_list cur = {0};
    struct policy_doc *all = NULL;
    struct policy_set *set = NULL;
    bool in_txn = false;
    pthread_mutex_lock(&pe->write_lock);
    int rc = load_latest(pe, &cur, err);
    if (rc)
        goto out;
    const struct stored_doc *old = find_stored(&cur, name);
    if (!old || old->deleted) {
        rc = core_err_set(err, CORE_E_NOTFOUND, "no policy '%s' (see 'pave policy list')", name);
        goto out;
    }
    if (!(all = core_calloc(cur.n + 1, sizeof(*all)))) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < cur.n; i++)
        if (!cur.v[i].deleted && &cur.v[i] != old)
            all[n++] = (struct policy_doc){cur.v[i].file, cur.v[i].yaml, strlen(cur.v[i].yaml)};
    if ((rc = compile(all, n, &set, NULL, NULL, err)))
        goto out;
    char now[40];
    now_text(now);
    if ((rc = store_txn_begin(pe->st, err)))
        goto out;
    in_txn = true;
    struct store_value p[] = {STORE_V_TEXT(name), STORE_V_INT(old->version + 1),
                              STORE_V_TEXT(actor->user), STORE_V_TEXT(now)};
    char detail[64];
    snprintf(detail, sizeof(detail), "version %lld", (long long)old->version + 1);
    if ((rc = store_exec(pe->st,
                         "INSERT INTO policies (name, version, yaml, digest, deleted, created_by, "
                         "created_at) VALUES (?, ?, '', '', 1, ?, ?)",
                         p, 4, NULL, err)) ||
        (rc = audit(pe->st, actor->user, "policy.delete", name, old->digest, NULL, detail, err)))
        goto out;
    in_txn = false;
    if ((rc = store_txn_commit(pe->st, err)))
        goto out;
    swap_set(pe, set);
    set = NULL;
out:
    if (in_txn)
        store_txn_rollback(pe->st);
    pthread_mutex_unlock(&pe->write_lock);
    policy_set_free(set);
    core_free(all);
    stored_list_release(&cur);
    return rc;
}

/* ---- listing ------------------------------------------------------------------------------- */

/* The active set's rules as JSON (an empty array without a set). */
static json_t *active_rules(struct policy_engine *pe, char *digest, size_t digestsz)
{
    pthread_rwlock_rdlock(&pe->set_lock);
    json_t *rules = pe->set ? policy_set_rules(pe->set) : json_array();
    if (digest)
        snprintf(digest, digestsz, "%s", pe->set ? policy_set_digest(pe->set) : "");
    pthread_rwlock_unlock(&pe->set_lock);
    return rules;
}

static json_t *rules_of(json_t *rules, const char *policy)
{
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach (rules, i, r) {
        const char *p = json_string_value(json_object_get(r, "policy"));
        if (p && strcmp(p, policy) == 0)
            json_array_append(out, r);
    }
    return out;
}

json_t *policy_list(struct policy_engine *pe, struct core_err *err)
{
    struct stored_list l;
    if (load_latest(pe, &l, err))
        return NULL;
    char digest[80];
    json_t *rules = active_rules(pe, digest, sizeof(digest));
    json_t *items = json_array();
    for (size_t i = 0; rules && items && i < l.n; i++) {
        const struct stored_doc *d = &l.v[i];
        if (d->deleted)
            continue;
        json_t *mine = rules_of(rules, d->name);
        json_array_append_new(items,
                              json_pack("{s:s,s:I,s:s,s:I,s:s,s:s}", "name", d->name, "version",
                                        (json_int_t)d->version, "digest", d->digest, "rules",
                                        (json_int_t)json_array_size(mine), "created_by",
                                        d->created_by, "created_at", d->created_at));
        json_decref(mine);
    }
    json_t *out = NULL;
    if (rules && items) {
        pthread_rwlock_rdlock(&pe->set_lock);
        const char *lerr = pe->load_error[0] ? pe->load_error : NULL;
        out = json_pack("{s:O,s:I,s:I,s:s,s:s?}", "items", items, "total",
                        (json_int_t)json_array_size(items), "rules",
                        (json_int_t)json_array_size(rules), "set_digest", digest, "load_error",
                        lerr);
        pthread_rwlock_unlock(&pe->set_lock);
    }
    if (!out)
        core_err_set(err, CORE_E_NOMEM, "out of memory");
    json_decref(items);
    json_decref(rules);
    stored_list_release(&l);
    return out;
}

json_t *policy_show(struct policy_engine *pe, const char *name, struct core_err *err)
{
    struct stored_list l = {0};
    struct store_value p[] = {STORE_V_TEXT(name)};
    int rc = store_query(pe->st,
                         "SELECT " STORED_COLS " FROM policies WHERE name = ? ORDER BY version "
                         "DESC",
                         p, 1, stored_row, &l, err);
    json_t *out = NULL;
    if (rc) {
        if (rc == CORE_E_NOMEM)
            core_err_set(err, rc, "out of memory");
        goto out;
    }
    if (l.n == 0 || l.v[0].deleted) {
        core_err_set(err, CORE_E_NOTFOUND, "no policy '%s' (see 'pave policy list')", name);
        goto out;
    }
    json_t *history = json_array();
    for (size_t i = 0; history && i < l.n; i++)
        json_array_append_new(history,
                              json_pack("{s:I,s:s?,s:b,s:s,s:s}", "version",
                                        (json_int_t)l.v[i].version, "digest",
                                        l.v[i].deleted ? NULL : l.v[i].digest, "deleted",
                                        l.v[i].deleted, "created_by", l.v[i].created_by,
                                        "created_at", l.v[i].created_at));
    json_t *rules = active_rules(pe, NULL, 0);
    const struct stored_doc *d = &l.v[0];
    out = json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:o,s:o}", "name", d->name, "version",
                    (json_int_t)d->version, "digest", d->digest, "created_by", d->created_by,
                    "created_at", d->created_at, "yaml", d->yaml, "rules", rules_of(rules, name),
                    "history", history);
    json_decref(rules);
    if (!out)
        core_err_set(err, CORE_E_NOMEM, "out of memory");
out:
    stored_list_release(&l);
    return out;
}

/* ---- exceptions ---------------------------------------------------------------------------- */

struct exc_list {
    struct policy_exception *v;
    size_t n, cap;
    struct core_arena arena;
};

static int exc_row(void *arg, const struct store_row *row)
{
    struct exc_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct policy_exception *v = core_realloc(l->v, cap * sizeof(*v));
        if (!v)
            return CORE_E_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    struct policy_exception *e = &l->v[l->n];
    e->id = store_row_int(row, "id");
    e->subject = core_arena_strdup(&l->arena, store_row_text(row, "subject"));
    e->rule = core_arena_strdup(&l->arena, store_row_text(row, "rule"));
    e->expires_ms = store_row_int(row, "expires_ms");
    if (!e->subject || !e->rule)
        return CORE_E_NOMEM;
    l->n++;
    return 0;
}

/* Approved, unexpired exceptions for subject (or for any subject, "*"). */
static int load_exceptions(struct policy_engine *pe, const char *subject, int64_t now,
                           struct exc_list *l, struct core_err *err)
{
    memset(l, 0, sizeof(*l));
    core_arena_init(&l->arena, 1024 * 1024);
    struct store_value p[] = {STORE_V_TEXT(subject ? subject : ""), STORE_V_INT(now)};
    int rc = store_query(pe->st,
                         "SELECT id, subject, rule, expires_ms FROM policy_exceptions WHERE "
                         "subject IN (?, '*') AND state = 'approved' AND expires_ms > ? ORDER BY "
                         "id",
                         p, 2, exc_row, l, err);
    if (rc == CORE_E_NOMEM)
        core_err_set(err, rc, "out of memory");
    return rc;
}

static void exc_list_release(struct exc_list *l)
{
    core_free(l->v);
    core_arena_release(&l->arena);
    memset(l, 0, sizeof(*l));
}

static bool rule_exists(struct policy_engine *pe, const char *rule)
{
    json_t *rules = active_rules(pe, NULL, 0);
    bool found = false;
    size_t i;
    json_t *r;
    json_array_foreach (rules, i, r) {
        const char *id = json_string_value(json_object_get(r, "id"));
        if (id && strcmp(id, rule) == 0)
            found = true;
    }
    json_decref(rules);
    return found;
}

static bool text_ok(const char *s, size_t max)
{
    return s && *s && strlen(s) <= max && core_utf8_valid(s, strlen(s));
}

int policy_exception_request(struct policy_engine *pe, const struct catalog_actor *actor,
                             const char *subject, const char *rule, const char *justification,
                             int64_t expires_ms, int64_t *id, struct core_err *err)
{
    int64_t now = core_now_ms();
    if (!text_ok(subject, 512))
        return core_err_set(err, CORE_E_INVAL,
                            "subject is required: a service name or a resource address");
    if (!text_ok(rule, 256))
        return core_err_set(err, CORE_E_INVAL, "rule is required: a rule id (see 'pave policy "
                                               "show')");
    if (!text_ok(justification, 4000))
        return core_err_set(err, CORE_E_INVAL,
                            "a justification is required (why the rule cannot be met, and the "
                            "plan to meet it)");
    if (expires_ms <= now)
        return core_err_set(err, CORE_E_INVAL, "the expiry must be in the future");
    if (expires_ms > now + EXCEPTION_MAX_MS)
        return core_err_set(err, CORE_E_INVAL, "an exception may last at most 1 year");
    if (!rule_exists(pe, rule))
        return core_err_set(err, CORE_E_NOTFOUND,
                            "no rule '%s' in the active policies (see 'pave policy list')",
                            rule);
    /* Who may ask: an admin; for a catalog service, its team; for anything else (a resource
     * address), any member of a team, since its owner is only known from its tags. */
    if (!actor->is_admin) {
        if (strcmp(subject, "*") == 0)
            return core_err_set(err, CORE_E_PERM,
                                "only an admin may request an exception for every subject");
        struct catalog_service s;
        struct core_err gerr = {0};
        int grc = catalog_service_get(pe->cat, subject, &s, &gerr);
        if (grc == 0) {
            bool ok = catalog_actor_in_team(actor, s.team);
            char team[128];
            snprintf(team, sizeof(team), "%s", s.team);
            catalog_service_release(&s);
            if (!ok)
                return core_err_set(err, CORE_E_PERM,
                                    "only members of team '%s' (or an admin) may request an "
                                    "exception for '%s'",
                                    team, subject);
        } else if (grc != CORE_E_NOTFOUND) {
            return core_err_set(err, grc, "%s", gerr.msg);
        } else if (actor->nteams == 0) {
            return core_err_set(err, CORE_E_PERM,
                                "only members of a team (or an admin) may request exceptions");
        }
    }
    char now_s[40], exp_s[40];
    now_text(now_s);
    core_time_format(expires_ms, exp_s, sizeof(exp_s));
    int rc = store_txn_begin(pe->st, err);
    if (rc)
        return rc;
    struct store_value p[] = {STORE_V_TEXT(subject),       STORE_V_TEXT(rule),
                              STORE_V_TEXT(justification), STORE_V_TEXT(actor->user),
                              STORE_V_INT(expires_ms),     STORE_V_TEXT(now_s)};
    int64_t new_id = 0;
    rc = store_exec(pe->st,
                    "INSERT INTO policy_exceptions (subject, rule, justification, requester, "
                    "state, expires_ms, created_at) VALUES (?, ?, ?, ?, 'requested', ?, ?)",
                    p, 6, NULL, err);
    if (!rc)
        rc = store_query_int(pe->st, "SELECT MAX(id) FROM policy_exceptions", NULL, 0, &new_id,
                             err);
    char detail[400];
    snprintf(detail, sizeof(detail), "exception %lld: rule %s until %s", (long long)new_id, rule,
             exp_s);
    if (!rc)
        rc = audit(pe->st, actor->user, "exception.request", subject, NULL, NULL, detail, err);
    if (rc) {
        store_txn_rollback(pe->st);
        return rc;
    }
    if ((rc = store_txn_commit(pe->st, err)))
        return rc;
    if (id)
        *id = new_id;
    return 0;
}

struct exc_full {
    bool found;
    char subject[520];
    char rule[260];
    char requester[130];
    char state[16];
    int64_t expires_ms;
};

static int exc_full_row(void *arg, const struct store_row *row)
{
    struct exc_full *e = arg;
    e->found = true;
    snprintf(e->subject, sizeof(e->subject), "%s", store_row_text(row, "subject"));
    snprintf(e->rule, sizeof(e->rule), "%s", store_row_text(row, "rule"));
    snprintf(e->requester, sizeof(e->requester), "%s", store_row_text(row, "requester"));
    snprintf(e->state, sizeof(e->state), "%s", store_row_text(row, "state"));
    e->expires_ms = store_row_int(row, "expires_ms");
    return 1;
}

int policy_exception_decide(struct policy_engine *pe, const struct catalog_actor *actor,
                            int64_t id, const char *decision, const char *comment,
                            struct core_err *err)
{
    const char *to = NULL;
    if (decision && strcmp(decision, "approve") == 0)
        to = "approved";
    else if (decision && strcmp(decision, "reject") == 0)
        to = "rejected";
    else if (decision && strcmp(decision, "revoke") == 0)
        to = "revoked";
    else
        return core_err_set(err, CORE_E_INVAL,
                            "unknown decision '%s': use approve, reject or revoke",
                            decision ? decision : "");
    if (comment && (strlen(comment) > 4000 || !core_utf8_valid(comment, strlen(comment))))
        return core_err_set(err, CORE_E_INVAL, "the comment must be UTF-8 text of at most 4000 "
                                               "bytes");
    int rc = store_txn_begin(pe->st, err);
    if (rc)
        return rc;
    struct exc_full e = {0};
    struct store_value p[] = {STORE_V_INT(id)};
    rc = store_query(pe->st,
                     "SELECT subject, rule, requester, state, expires_ms FROM policy_exceptions "
                     "WHERE id = ?",
                     p, 1, exc_full_row, &e, err);
    if (rc == 1)
        rc = 0;
    if (rc)
        goto out;
    if (!e.found) {
        rc = core_err_set(err, CORE_E_NOTFOUND, "no exception %lld", (long long)id);
        goto out;
    }
    bool is_requester = strcmp(e.requester, actor->user) == 0;
    if (strcmp(to, "revoked") == 0) {
        if (!actor->is_admin && !is_requester) {
            rc = core_err_set(err, CORE_E_PERM,
                              "only an admin or the requester ('%s') may revoke exception %lld",
                              e.requester, (long long)id);
            goto out;
        }
        if (strcmp(e.state, "approved") != 0 && strcmp(e.state, "requested") != 0) {
            rc = core_err_set(err, CORE_E_CONFLICT, "exception %lld is %s; it cannot be revoked",
                              (long long)id, e.state);
            goto out;
        }
    } else {
        if (!actor->is_admin) {
            rc = core_err_set(err, CORE_E_PERM, "only an admin may %s exceptions", decision);
            goto out;
        }
        if (is_requester) {
            rc = core_err_set(err, CORE_E_PERM,
                              "'%s' requested exception %lld and cannot %s it: another admin "
                              "must decide",
                              actor->user, (long long)id, decision);
            goto out;
        }
        if (strcmp(e.state, "requested") != 0) {
            rc = core_err_set(err, CORE_E_CONFLICT, "exception %lld is already %s",
                              (long long)id, e.state);
            goto out;
        }
        if (strcmp(to, "approved") == 0 && e.expires_ms <= core_now_ms()) {
            rc = core_err_set(err, CORE_E_CONFLICT,
                              "exception %lld expired before it was approved; request a new one",
                              (long long)id);
            goto out;
        }
    }
    char now_s[40];
    now_text(now_s);
    struct store_value u[] = {STORE_V_TEXT(to), STORE_V_TEXT(actor->user), STORE_V_TEXT(now_s),
                              STORE_V_TEXT(comment && *comment ? comment : NULL),
                              STORE_V_INT(id)};
    if ((rc = store_exec(pe->st,
                         "UPDATE policy_exceptions SET state = ?, approver = ?, decided_at = ?, "
                         "comment = ? WHERE id = ?",
                         u, 5, NULL, err)))
        goto out;
    char action[40], detail[400];
    snprintf(action, sizeof(action), "exception.%s", decision);
    snprintf(detail, sizeof(detail), "exception %lld: rule %s%s%s", (long long)id, e.rule,
             comment && *comment ? ": " : "", comment && *comment ? comment : "");
    rc = audit(pe->st, actor->user, action, e.subject, NULL, NULL, detail, err);
out:
    if (rc) {
        store_txn_rollback(pe->st);
        return rc;
    }
    return store_txn_commit(pe->st, err);
}

struct exc_json_ctx {
    json_t *items;
    int64_t now;
};

static int exc_json_row(void *arg, const struct store_row *row)
{
    struct exc_json_ctx *c = arg;
    int64_t exp = store_row_int(row, "expires_ms");
    char exp_s[40];
    core_time_format(exp, exp_s, sizeof(exp_s));
    const char *state = store_row_text(row, "state");
    bool active = state && strcmp(state, "approved") == 0 && exp > c->now;
    json_t *o = json_pack(
        "{s:I,s:s,s:s,s:s,s:s,s:s?,s:s,s:s,s:b,s:b,s:s,s:s?,s:s?}", "id",
        (json_int_t)store_row_int(row, "id"), "subject", store_row_text(row, "subject"), "rule",
        store_row_text(row, "rule"), "justification", store_row_text(row, "justification"),
        "requester", store_row_text(row, "requester"), "approver",
        store_row_text(row, "approver"), "state", state, "expires_at", exp_s, "active", active,
        "expired", exp <= c->now, "created_at", store_row_text(row, "created_at"), "decided_at",
        store_row_text(row, "decided_at"), "comment", store_row_text(row, "comment"));
    return !o || json_array_append_new(c->items, o) ? CORE_E_NOMEM : 0;
}

json_t *policy_exception_list(struct policy_engine *pe, const char *state, const char *subject,
                              struct core_err *err)
{
    int64_t now = core_now_ms();
    const char *st = state && *state ? state : NULL;
    const char *cond = "";
    if (st && strcmp(st, "active") == 0)
        cond = " AND state = 'approved' AND expires_ms > ?";
    else if (st && strcmp(st, "expired") == 0)
        cond = " AND state = 'approved' AND expires_ms <= ?";
    else if (st && strcmp(st, "requested") && strcmp(st, "approved") &&
             strcmp(st, "rejected") && strcmp(st, "revoked")) {
        core_err_set(err, CORE_E_INVAL,
                     "unknown state '%s': use requested, approved, rejected, revoked, active or "
                     "expired",
                     st);
        return NULL;
    } else if (st)
        cond = " AND state = ?";
    subject = subject && *subject ? subject : NULL;
    /* Bind only the filters that are present (see catalog_service_each). */
    struct store_value p[2];
    size_t np = 0;
    if (*cond)
        p[np++] = strstr(cond, "expires_ms") ? STORE_V_INT(now) : STORE_V_TEXT(st);
    if (subject)
        p[np++] = STORE_V_TEXT(subject);
    char sql[400];
    snprintf(sql, sizeof(sql),
             "SELECT id, subject, rule, justification, requester, approver, state, expires_ms, "
             "created_at, decided_at, comment FROM policy_exceptions WHERE 1 = 1%s%s ORDER BY id "
             "DESC LIMIT 1000",
             cond, subject ? " AND subject = ?" : "");
    struct exc_json_ctx c = {json_array(), now};
    if (!c.items) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    int rc = store_query(pe->st, sql, p, np, exc_json_row, &c, err);
    if (rc) {
        if (rc == CORE_E_NOMEM)
            core_err_set(err, rc, "out of memory");
        json_decref(c.items);
        return NULL;
    }
    json_t *out = json_pack("{s:o,s:I}", "items", c.items, "total",
                            (json_int_t)json_array_size(c.items));
    if (!out)
        core_err_set(err, CORE_E_NOMEM, "out of memory");
    return out;
}

/* ---- gates --------------------------------------------------------------------------------- */

/* Evaluates in against the active set, then moves the results' borrowed strings into the
 * engine's pool so they outlive a swap of the set. */
static int evaluate_active(struct policy_engine *pe, const struct policy_input *in,
                           struct policy_results *out, struct core_err *err)
{
    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&pe->set_lock);
    int rc = pe->set ? policy_evaluate(pe->set, in, out, err) : 0;
    for (size_t i = 0; !rc && i < out->n; i++) {
        struct policy_result *r = &out->v[i];
        const char *rule = intern(&pe->pool, r->rule), *pol = intern(&pe->pool, r->policy),
                   *kind = intern(&pe->pool, r->kind), *rem = intern(&pe->pool, r->remediation);
        if ((r->rule && !rule) || (r->policy && !pol) || (r->kind && !kind) ||
            (r->remediation && !rem)) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            break;
        }
        r->rule = rule;
        r->policy = pol;
        r->kind = kind;
        r->remediation = rem;
    }
    pthread_rwlock_unlock(&pe->set_lock);
    if (rc)
        policy_results_free(out);
    return rc;
}

/* Evaluates with the subject's approved exceptions and the current time. */
static int evaluate_with_exceptions(struct policy_engine *pe, struct policy_input *in,
                                    struct exc_list *ex, struct policy_results *out,
                                    struct core_err *err)
{
    int64_t now = core_now_ms();
    int rc = load_exceptions(pe, in->name, now, ex, err);
    if (rc)
        return rc;
    in->exceptions = ex->v;
    in->nexceptions = ex->n;
    in->now_ms = now;
    rc = evaluate_active(pe, in, out, err);
    in->exceptions = NULL;
    in->nexceptions = 0;
    return rc;
}

int policy_gate_check(struct policy_engine *pe, struct policy_input *in,
                      struct policy_results *out, struct core_err *err)
{
    struct exc_list ex;
    memset(out, 0, sizeof(*out));
    int rc = evaluate_with_exceptions(pe, in, &ex, out, err);
    exc_list_release(&ex);
    if (rc)
        return rc;
    json_t *failed = json_array();
    struct core_buf rules;
    core_buf_init(&rules, 900);
    for (size_t i = 0; failed && i < out->n; i++) {
        const struct policy_result *r = &out->v[i];
        if (r->outcome != POLICY_FAIL)
            continue;
        json_array_append_new(failed,
                              json_pack("{s:s?,s:s?,s:s,s:s,s:s?,s:s?}", "rule", r->rule,
                                        "policy", r->policy, "mode", policy_mode_name(r->mode),
                                        "severity", policy_severity_name(r->severity), "message",
                                        r->message, "remediation", r->remediation));
        if (r->mode == POLICY_ENFORCE && r->rule &&
            (rules.len == 0 || core_buf_adds(&rules, ", ") == 0))
            core_buf_adds(&rules, r->rule); /* a detail cut at 900 bytes is still useful */
    }
    char *failed_s = failed ? json_dumps(failed, JSON_COMPACT) : NULL;
    json_decref(failed);
    if (!failed_s) {
        core_buf_release(&rules);
        policy_results_free(out);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    char now_s[40];
    now_text(now_s);
    const char *gate = policy_gate_name(in->gate);
    const char *name = in->name ? in->name : "(unnamed)";
    rc = store_txn_begin(pe->st, err);
    if (!rc) {
        struct store_value p[] = {STORE_V_TEXT(now_s),
                                  STORE_V_TEXT(gate),
                                  STORE_V_TEXT(name),
                                  STORE_V_TEXT(policy_subject_name(in->subject)),
                                  STORE_V_TEXT(in->team),
                                  STORE_V_TEXT(in->env),
                                  STORE_V_INT(out->blocked ? 1 : 0),
                                  STORE_V_TEXT(failed_s)};
        rc = store_exec(pe->st,
                        "INSERT INTO policy_decisions (ts, gate, subject, subject_kind, team, "
                        "env, blocked, failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        p, 8, NULL, err);
        if (!rc)
            rc = store_query_int(pe->st, "SELECT MAX(id) FROM policy_decisions", NULL, 0,
                                 &out->decision_id, err);
        if (!rc && out->blocked) {
            char detail[1024];
            snprintf(detail, sizeof(detail), "decision %lld, gate %s%s%s: %s",
                     (long long)out->decision_id, gate, in->env ? ", env " : "",
                     in->env ? in->env : "", rules.data);
            rc = audit(pe->st, "system", "policy.block", name, NULL, NULL, detail, err);
        }
        if (rc)
            store_txn_rollback(pe->st);
        else
            rc = store_txn_commit(pe->st, err);
    }
    free(failed_s);
    core_buf_release(&rules);
    if (rc)
        policy_results_free(out);
    return rc;
}

/* ---- scans --------------------------------------------------------------------------------- */

struct scan_row {
    char *team, *service, *rule, *message;
    const char *severity, *mode, *outcome; /* static names */
    int64_t exception_id;
};

struct scan_ctx {
    struct policy_engine *pe;
    struct scan_row *rows;
    size_t n, cap;
    char **names; /* services to scan */
    size_t nnames, capnames;
    const char *team; /* of the service being scanned */
    int tier;
    struct core_err *err;
};

static int collect_name(void *arg, const struct catalog_service *s)
{
    struct scan_ctx *c = arg;
    if (c->nnames == c->capnames) {
        size_t cap = c->capnames ? c->capnames * 2 : 64;
        char **v = core_realloc(c->names, cap * sizeof(*v));
        if (!v)
            return CORE_E_NOMEM;
        c->names = v;
        c->capnames = cap;
    }
    if (!(c->names[c->nnames] = core_strdup(s->name)))
        return CORE_E_NOMEM;
    c->nnames++;
    return 0;
}

static int scan_subject(void *arg, struct policy_input *in)
{
    struct scan_ctx *c = arg;
    in->gate = POLICY_GATE_CHECK;
    in->env = NULL;
    if (!in->team)
        in->team = c->team;
    if (!in->tier)
        in->tier = c->tier;
    struct exc_list ex;
    struct policy_results res;
    int rc = evaluate_with_exceptions(c->pe, in, &ex, &res, c->err);
    exc_list_release(&ex);
    if (rc)
        return rc;
    for (size_t i = 0; !rc && i < res.n; i++) {
        const struct policy_result *r = &res.v[i];
        if (r->outcome == POLICY_SKIPPED)
            continue;
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 64;
            struct scan_row *v = core_realloc(c->rows, cap * sizeof(*v));
            if (!v) {
                rc = CORE_E_NOMEM;
                break;
            }
            c->rows = v;
            c->cap = cap;
        }
        struct scan_row *row = &c->rows[c->n];
        memset(row, 0, sizeof(*row));
        c->n++;
        row->team = core_strdup(in->team ? in->team : c->team);
        row->service = core_strdup(in->name ? in->name : "");
        row->rule = core_strdup(r->rule ? r->rule : "");
        row->message = r->message ? core_strdup(r->message) : NULL;
        row->severity = policy_severity_name(r->severity);
        row->mode = policy_mode_name(r->mode);
        row->outcome = policy_outcome_name(r->outcome);
        row->exception_id = r->outcome == POLICY_EXCEPTED ? r->exception_id : 0;
        if (!row->team || !row->service || !row->rule || (r->message && !row->message))
            rc = CORE_E_NOMEM;
    }
    policy_results_free(&res);
    if (rc == CORE_E_NOMEM)
        core_err_set(c->err, rc, "out of memory");
    return rc;
}

static void scan_ctx_release(struct scan_ctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        core_free(c->rows[i].team);
        core_free(c->rows[i].service);
        core_free(c->rows[i].rule);
        core_free(c->rows[i].message);
    }
    core_free(c->rows);
    for (size_t i = 0; i < c->nnames; i++)
        core_free(c->names[i]);
    core_free(c->names);
}

static int scan_locked(struct policy_engine *pe, int64_t *scan_id, struct core_err *err)
{
    struct scan_ctx c = {.pe = pe, .err = err};
    int rc = 0;
    /* Names first (a page at a time, by cursor), then each manifest: the listing does not
     * carry manifests. */
    for (;;) {
        int64_t total = 0;
        size_t before = c.nnames;
        struct catalog_service_query q = {.limit = 500,
                                          .after = c.nnames ? c.names[c.nnames - 1] : NULL};
        if ((rc = catalog_service_each(pe->cat, &q, &total, collect_name, &c, err)))
            goto out;
        if (c.nnames - before < 500)
            break;
    }
    for (size_t i = 0; i < c.nnames; i++) {
        struct catalog_service s;
        struct core_err gerr = {0};
        int grc = catalog_service_get(pe->cat, c.names[i], &s, &gerr);
        if (grc == CORE_E_NOTFOUND)
            continue; /* deleted since the listing */
        if (grc) {
            rc = core_err_set(err, grc, "%s", gerr.msg);
            goto out;
        }
        c.team = s.team;
        c.tier = s.tier;
        rc = policy_inventory_each(s.name, s.manifest, strlen(s.manifest), POLICY_INV_MANIFEST,
                                   scan_subject, &c, err);
        c.team = NULL;
        catalog_service_release(&s);
        if (rc)
            goto out;
    }
    char now_s[40];
    now_text(now_s);
    if ((rc = store_txn_begin(pe->st, err)))
        goto out;
    struct store_value tp[] = {STORE_V_TEXT(now_s)};
    int64_t id = 0;
    rc = store_exec(pe->st, "INSERT INTO policy_scans (ts) VALUES (?)", tp, 1, NULL, err);
    if (!rc)
        rc = store_query_int(pe->st, "SELECT MAX(id) FROM policy_scans", NULL, 0, &id, err);
    for (size_t i = 0; !rc && i < c.n; i++) {
        const struct scan_row *r = &c.rows[i];
        struct store_value p[] = {STORE_V_INT(id),         STORE_V_TEXT(r->team),
                                  STORE_V_TEXT(r->service), STORE_V_TEXT(r->rule),
                                  STORE_V_TEXT(r->severity), STORE_V_TEXT(r->mode),
                                  STORE_V_TEXT(r->outcome), STORE_V_TEXT(r->message),
                                  r->exception_id ? STORE_V_INT(r->exception_id) : STORE_V_NULL};
        rc = store_exec(pe->st,
                        "INSERT INTO policy_scan_rows (scan_id, team, service, rule, severity, "
                        "mode, outcome, message, exception_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        p, 9, NULL, err);
    }
    /* Keep the newest SCANS_KEPT scans: enough for the trend and a day of history. */
    struct store_value kp[] = {STORE_V_INT(id - SCANS_KEPT)};
    if (!rc)
        rc = store_exec(pe->st, "DELETE FROM policy_scan_rows WHERE scan_id <= ?", kp, 1, NULL,
                        err);
    if (!rc)
        rc = store_exec(pe->st, "DELETE FROM policy_scans WHERE id <= ?", kp, 1, NULL, err);
    if (rc)
        store_txn_rollback(pe->st);
    else
        rc = store_txn_commit(pe->st, err);
    if (!rc && scan_id)
        *scan_id = id;
    if (!rc)
        log_info("policy", "scan finished", LOG_INT("scan", id), LOG_INT("services", c.nnames),
                 LOG_INT("rows", c.n));
out:
    scan_ctx_release(&c);
    return rc;
}

int policy_scan(struct policy_engine *pe, int64_t *scan_id, struct core_err *err)
{
    pthread_mutex_lock(&pe->scan_lock);
    int rc = scan_locked(pe, scan_id, err);
    pthread_mutex_unlock(&pe->scan_lock);
    return rc;
}

/* ---- reports ------------------------------------------------------------------------------- */

struct newest_scan {
    int64_t id;
    char ts[40];
};

static int newest_scan_row(void *arg, const struct store_row *row)
{
    struct newest_scan *s = arg;
    s->id = store_row_int(row, "id");
    snprintf(s->ts, sizeof(s->ts), "%s", store_row_text(row, "ts"));
    return 1;
}

static int newest_scan(struct policy_engine *pe, struct newest_scan *s, struct core_err *err)
{
    memset(s, 0, sizeof(*s));
    int rc = store_query(pe->st, "SELECT id, ts FROM policy_scans ORDER BY id DESC LIMIT 1",
                         NULL, 0, newest_scan_row, s, err);
    return rc == 1 ? 0 : rc;
}

static double compliance(int64_t pass, int64_t fail, int64_t excepted)
{
    int64_t total = pass + fail + excepted;
    /* Excepted rules count as compliant: the risk was accepted by an approver. */
    return total ? (double)((pass + excepted) * 1000 / total) / 10.0 : 100.0;
}

static json_t *counts_json(int64_t pass, int64_t fail, int64_t excepted)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:f}", "pass", (json_int_t)pass, "fail",
                     (json_int_t)fail, "excepted", (json_int_t)excepted, "total",
                     (json_int_t)(pass + fail + excepted), "compliance",
                     compliance(pass, fail, excepted));
}

struct report_ctx {
    const char *group_by;
    json_t *groups; /* object: key -> {pass, fail, excepted, rows} */
    int64_t pass, fail, excepted;
};

static void count(int64_t *pass, int64_t *fail, int64_t *excepted, const char *outcome)
{
    if (!strcmp(outcome, "pass"))
        (*pass)++;
    else if (!strcmp(outcome, "fail"))
        (*fail)++;
    else if (!strcmp(outcome, "excepted"))
        (*excepted)++;
}

static json_t *row_json(const struct store_row *row)
{
    const struct store_value *ex = store_row_get(row, "exception_id");
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s?,s:o}", "team", store_row_text(row, "team"),
                     "service", store_row_text(row, "service"), "rule",
                     store_row_text(row, "rule"), "severity", store_row_text(row, "severity"),
                     "mode", store_row_text(row, "mode"), "outcome",
                     store_row_text(row, "outcome"), "message", store_row_text(row, "message"),
                     "exception",
                     ex && ex->type == STORE_INT ? json_integer(ex->i) : json_null());
}

static int report_row(void *arg, const struct store_row *row)
{
    struct report_ctx *c = arg;
    const char *key = store_row_text(row, c->group_by);
    const char *outcome = store_row_text(row, "outcome");
    if (!key || !outcome)
        return 0;
    json_t *g = json_object_get(c->groups, key);
    if (!g) {
        g = json_pack("{s:s,s:I,s:I,s:I,s:[]}", "key", key, "pass", (json_int_t)0, "fail",
                      (json_int_t)0, "excepted", (json_int_t)0, "rows");
        if (!g || json_object_set_new(c->groups, key, g))
            return CORE_E_NOMEM;
    }
    const char *field = !strcmp(outcome, "pass")       ? "pass"
                        : !strcmp(outcome, "fail")     ? "fail"
                        : !strcmp(outcome, "excepted") ? "excepted"
                                                       : NULL;
    if (field)
        json_object_set_new(g, field,
                            json_integer(json_integer_value(json_object_get(g, field)) + 1));
    count(&c->pass, &c->fail, &c->excepted, outcome);
    json_t *r = row_json(row);
    return !r || json_array_append_new(json_object_get(g, "rows"), r) ? CORE_E_NOMEM : 0;
}

struct trend_ctx {
    json_t *items; /* oldest first */
};

static int trend_row(void *arg, const struct store_row *row)
{
    struct trend_ctx *c = arg;
    int64_t pass = store_row_int(row, "pass"), fail = store_row_int(row, "fail"),
            excepted = store_row_int(row, "excepted");
    json_t *o = counts_json(pass, fail, excepted);
    if (!o)
        return CORE_E_NOMEM;
    json_object_set_new(o, "scan", json_integer(store_row_int(row, "id")));
    json_object_set_new(o, "ts", json_string(store_row_text(row, "ts")));
    return json_array_insert_new(c->items, 0, o) ? CORE_E_NOMEM : 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *policy_report(struct policy_engine *pe, const char *group_by, const char *team,
                      const char *service, struct core_err *err)
{
    if (!group_by || !*group_by)
        group_by = "team";
    if (strcmp(group_by, "team") && strcmp(group_by, "service") && strcmp(group_by, "rule")) {
        core_err_set(err, CORE_E_INVAL, "unknown grouping '%s': use team, service or rule",
                     group_by);
        return NULL;
    }
    team = team && *team ? team : NULL;
    service = service && *service ? service : NULL;
    struct newest_scan ns;
    json_t *out = NULL;
    struct report_ctx c = {.group_by = group_by, .groups = json_object()};
    struct trend_ctx t = {json_array()};
    int rc = c.groups && t.items ? newest_scan(pe, &ns, err)
                                 : core_err_set(err, CORE_E_NOMEM, "out of memory");
    if (rc)
        goto out;
    if (ns.id) {
        struct store_value p[3] = {STORE_V_INT(ns.id)};
        size_t np = 1;
        char sql[600];
        snprintf(sql, sizeof(sql),
                 "SELECT team, service, rule, severity, mode, outcome, message, exception_id "
                 "FROM policy_scan_rows WHERE scan_id = ?%s%s ORDER BY team, service, rule",
                 team ? " AND team = ?" : "", service ? " AND service = ?" : "");
        if (team)
            p[np++] = STORE_V_TEXT(team);
        if (service)
            p[np++] = STORE_V_TEXT(service);
        if ((rc = store_query(pe->st, sql, p, np, report_row, &c, err)))
            goto out;
        /* Every scan of the trend appears, also one whose filter matched no row. */
        np = 0;
        if (team)
            p[np++] = STORE_V_TEXT(team);
        if (service)
            p[np++] = STORE_V_TEXT(service);
        p[np++] = STORE_V_INT(TREND_SCANS);
        snprintf(sql, sizeof(sql),
                 "SELECT s.id AS id, s.ts AS ts, "
                 "SUM(CASE WHEN r.outcome = 'pass' THEN 1 ELSE 0 END) AS pass, "
                 "SUM(CASE WHEN r.outcome = 'fail' THEN 1 ELSE 0 END) AS fail, "
                 "SUM(CASE WHEN r.outcome = 'excepted' THEN 1 ELSE 0 END) AS excepted "
                 "FROM policy_scans s LEFT JOIN policy_scan_rows r ON r.scan_id = s.id%s%s "
                 "WHERE s.id IN (SELECT id FROM policy_scans ORDER BY id DESC LIMIT ?) "
                 "GROUP BY s.id, s.ts ORDER BY s.id DESC",
                 team ? " AND r.team = ?" : "", service ? " AND r.service = ?" : "");
        rc = store_query(pe->st, sql, p, np, trend_row, &t, err);
        if (rc)
            goto out;
    }
    /* Groups sorted by key (object iteration order is not). */
    json_t *groups = json_array();
    size_t ng = json_object_size(c.groups), k = 0;
    const char **keys = core_calloc(ng + 1, sizeof(*keys));
    const char *key;
    json_t *g;
    if (!groups || !keys) {
        json_decref(groups);
        core_free(keys);
        rc = CORE_E_NOMEM;
        goto out;
    }
    json_object_foreach (c.groups, key, g)
        keys[k++] = key;
    qsort(keys, ng, sizeof(*keys), cmp_str);
    for (k = 0; k < ng; k++) {
        key = keys[k];
        g = json_object_get(c.groups, key);
        int64_t gp = json_integer_value(json_object_get(g, "pass")),
                gf = json_integer_value(json_object_get(g, "fail")),
                ge = json_integer_value(json_object_get(g, "excepted"));
        json_object_set_new(g, "total", json_integer(gp + gf + ge));
        json_object_set_new(g, "compliance", json_real(compliance(gp, gf, ge)));
        json_array_append(groups, g);
    }
    core_free(keys);
    out = json_pack("{s:o,s:s,s:{s:s?,s:s?},s:o,s:o,s:O}", "scan",
                    ns.id ? json_pack("{s:I,s:s}", "id", (json_int_t)ns.id, "ts", ns.ts)
                          : json_null(),
                    "group", group_by, "filter", "team", team, "service", service, "totals",
                    counts_json(c.pass, c.fail, c.excepted), "groups", groups, "trend", t.items);
    if (!out)
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
out:
    if (rc == CORE_E_NOMEM)
        core_err_set(err, rc, "out of memory");
    json_decref(c.groups);
    json_decref(t.items);
    return rc ? NULL : out;
}

/* One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF; quotes doubled. A
 * field that a spreadsheet would run as a formula (=, +, -, @, tab, CR first: messages quote
 * tag values people wrote) is quoted with a leading apostrophe, as OWASP advises. */
static int csv_field(struct core_buf *b, const char *s, bool last)
{
    int rc = 0;
    s = s ? s : "";
    bool formula = s[0] && strchr("=+-@\t\r", s[0]);
    if (formula || strpbrk(s, ",\"\r\n")) {
        rc = core_buf_addc(b, '"');
        if (!rc && formula)
            rc = core_buf_addc(b, '\'');
        for (const char *p = s; !rc && *p; p++)
            rc = *p == '"' ? core_buf_add(b, "\"\"", 2) : core_buf_addc(b, *p);
        if (!rc)
            rc = core_buf_addc(b, '"');
    } else {
        rc = core_buf_adds(b, s);
    }
    if (!rc)
        rc = last ? core_buf_add(b, "\r\n", 2) : core_buf_addc(b, ',');
    return rc;
}

struct csv_ctx {
    struct core_buf *out;
    char scan[32];
    const char *ts;
};

static int csv_row(void *arg, const struct store_row *row)
{
    struct csv_ctx *c = arg;
    const char *cols[] = {"team", "service", "rule", "severity", "mode", "outcome", "message"};
    int rc = csv_field(c->out, c->scan, false);
    if (!rc)
        rc = csv_field(c->out, c->ts, false);
    for (size_t i = 0; !rc && i < 7; i++)
        rc = csv_field(c->out, store_row_text(row, cols[i]), i == 6);
    return rc;
}

int policy_report_csv(struct policy_engine *pe, const char *team, const char *service,
                      struct core_buf *out, struct core_err *err)
{
    struct newest_scan ns;
    int rc = newest_scan(pe, &ns, err);
    if (rc)
        return rc;
    if ((rc = core_buf_adds(out, "scan,time,team,service,rule,severity,mode,outcome,message\r\n")))
        return core_err_set(err, rc, "report too large");
    if (!ns.id)
        return 0;
    struct csv_ctx c = {.out = out, .ts = ns.ts};
    snprintf(c.scan, sizeof(c.scan), "%lld", (long long)ns.id);
    team = team && *team ? team : NULL;
    service = service && *service ? service : NULL;
    struct store_value p[3] = {STORE_V_INT(ns.id)};
    size_t np = 1;
    if (team)
        p[np++] = STORE_V_TEXT(team);
    if (service)
        p[np++] = STORE_V_TEXT(service);
    char sql[400];
    snprintf(sql, sizeof(sql),
             "SELECT team, service, rule, severity, mode, outcome, message FROM policy_scan_rows "
             "WHERE scan_id = ?%s%s ORDER BY team, service, rule",
             team ? " AND team = ?" : "", service ? " AND service = ?" : "");
    rc = store_query(pe->st, sql, p, np, csv_row, &c, err);
    if (rc == CORE_E_NOMEM || rc == CORE_E_TOO_BIG)
        core_err_set(err, rc, rc == CORE_E_TOO_BIG ? "report too large" : "out of memory");
    return rc;
}

/* ---- decisions ----------------------------------------------------------------------------- */

static int decision_row(void *arg, const struct store_row *row)
{
    json_error_t jerr;
    const char *f = store_row_text(row, "failed");
    json_t *failed = f ? json_loads(f, 0, &jerr) : NULL;
    json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s?,s:s?,s:b,s:o}", "id",
                          (json_int_t)store_row_int(row, "id"), "ts", store_row_text(row, "ts"),
                          "gate", store_row_text(row, "gate"), "subject",
                          store_row_text(row, "subject"), "subject_kind",
                          store_row_text(row, "subject_kind"), "team",
                          store_row_text(row, "team"), "env", store_row_text(row, "env"),
                          "blocked", store_row_int(row, "blocked") != 0, "failed",
                          failed ? failed : json_array());
    return !o || json_array_append_new(arg, o) ? CORE_E_NOMEM : 0;
}

#define DECISION_COLS "id, ts, gate, subject, subject_kind, team, env, blocked, failed"

json_t *policy_decision_list(struct policy_engine *pe, const char *subject, int limit,
                             int64_t before_id, struct core_err *err)
{
    subject = subject && *subject ? subject : NULL;
    struct store_value p[3];
    size_t np = 0;
    if (subject)
        p[np++] = STORE_V_TEXT(subject);
    if (before_id > 0)
        p[np++] = STORE_V_INT(before_id);
    p[np++] = STORE_V_INT(limit >= 1 && limit <= 500 ? limit : 50);
    char sql[300];
    snprintf(sql, sizeof(sql),
             "SELECT " DECISION_COLS " FROM policy_decisions WHERE 1 = 1%s%s ORDER BY id DESC "
             "LIMIT ?",
             subject ? " AND subject = ?" : "", before_id > 0 ? " AND id < ?" : "");
    json_t *items = json_array();
    int rc = items ? store_query(pe->st, sql, p, np, decision_row, items, err) : CORE_E_NOMEM;
    json_t *out = rc ? NULL : json_pack("{s:O,s:I}", "items", items, "total",
                                        (json_int_t)json_array_size(items));
    json_decref(items);
    if (!out && (!rc || rc == CORE_E_NOMEM))
        core_err_set(err, CORE_E_NOMEM, "out of memory");
    return out;
}

json_t *policy_decision_get(struct policy_engine *pe, int64_t id, struct core_err *err)
{
    struct store_value p[] = {STORE_V_INT(id)};
    json_t *items = json_array();
    int rc = items ? store_query(pe->st, "SELECT " DECISION_COLS " FROM policy_decisions WHERE "
                                         "id = ?",
                                 p, 1, decision_row, items, err)
                   : CORE_E_NOMEM;
    json_t *out = NULL;
    if (rc == CORE_E_NOMEM)
        core_err_set(err, rc, "out of memory");
    else if (!rc && json_array_size(items) == 0)
        core_err_set(err, CORE_E_NOTFOUND, "no decision %lld", (long long)id);
    else if (!rc)
        out = json_incref(json_array_get(items, 0));
    json_decref(items);
    return out;
}
