/* Billing import into the store (one transaction per file, replacing each
 * billing-account period it contains) and cost reports grouped by team,
 * service, env or cost center. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cloud/cloud.h"
#include "store/store.h"

#define BATCH_ROWS 256
#define NPARAMS 31

void cloud_import_stats_release(struct cloud_import_stats *s)
{
    for (size_t i = 0; i < s->nbad; i++) {
        core_free(s->bad[i].file);
        core_free(s->bad[i].reason);
    }
    core_free(s->bad);
    for (size_t i = 0; i < s->nscopes; i++)
        core_free(s->scopes[i].billing_account);
    core_free(s->scopes);
    memset(s, 0, sizeof(*s));
}

struct batch {
    struct core_arena arena;
    struct store_value vals[BATCH_ROWS * NPARAMS];
    size_t n;
};

static const char insert_head[] =
    "INSERT INTO cost_lines (import_id, billing_account, period, provider, "
    "charge_start, "
    "charge_end, billed_n, effective_n, list_n, currency, sub_account, "
    "service_name, "
    "service_category, charge_category, region, resource_id, sku, tags, "
    "tag_team, tag_service, "
    "tag_env, tag_cost_center, source, line, commitment_id, commitment_type, "
    "commitment_status, pricing_category, usage_type, usage_qty_n, unused_commitment_n) VALUES ";

static int batch_flush(struct store *st, struct batch *b, struct core_err *err)
{
    if (!b->n)
        return 0;
    struct core_buf sql;
    core_buf_init(&sql, 0);
    core_buf_adds(&sql, insert_head);
    for (size_t r = 0; r < b->n; r++) {
        core_buf_adds(&sql, r ? ",(" : "(");
        for (int i = 0; i < NPARAMS; i++)
            core_buf_adds(&sql, i ? ",?" : "?");
        core_buf_addc(&sql, ')');
    }
    int rc = store_exec(st, sql.data, b->vals, b->n * NPARAMS, NULL, err);
    core_buf_release(&sql);
    core_arena_release(&b->arena);
    core_arena_init(&b->arena, 64u << 20);
    b->n = 0;
    return rc;
}

static struct store_value arena_text(struct core_arena *a, const char *s)
{
    return store_v_text(s ? core_arena_strdup(a, s) : NULL);
}

static struct cloud_scope *scope_get(struct cloud_import_stats *s, const char *acct,
                                     const char *period, size_t first)
{
    for (size_t i = s->nscopes; i-- > first;)
        if (strcmp(s->scopes[i].period, period) == 0 &&
            strcmp(s->scopes[i].billing_account, acct) == 0)
            return &s->scopes[i];
    struct cloud_scope *ns = core_realloc(s->scopes, (s->nscopes + 1) * sizeof(*ns));
    if (!ns)
        return NULL;
    s->scopes = ns;
    struct cloud_scope *sc = &ns[s->nscopes];
    memset(sc, 0, sizeof(*sc));
    if (!(sc->billing_account = core_strdup(acct)))
        return NULL;
    snprintf(sc->period, sizeof(sc->period), "%s", period);
    s->nscopes++;
    return sc;
}

static void note_bad(struct cloud_import_stats *s, const char *path, int64_t line,
                     const char *reason)
{
    s->malformed++;
    if (s->nbad >= CLOUD_IMPORT_BAD_MAX)
        return;
    struct cloud_malformed *nb = core_realloc(s->bad, (s->nbad + 1) * sizeof(*nb));
    if (!nb)
        return;
    s->bad = nb;
    nb[s->nbad].file = core_strdup(path);
    nb[s->nbad].line = line;
    nb[s->nbad].reason = core_strdup(reason);
    s->nbad++;
}

/* Strips a "line N: " prefix the reader puts on its messages (the report names
 * the line). */
static const char *strip_line(const char *msg)
{
    if (strncmp(msg, "line ", 5) == 0) {
        const char *p = strstr(msg, ": ");
        if (p)
            return p + 2;
    }
    return msg;
}

int cloud_billing_import(struct store *st, const char *path, const struct cloud_import_opts *o,
                         struct cloud_import_stats *stats, struct core_err *err)
{
    static const struct cloud_import_opts defaults = {0};
    if (!o)
        o = &defaults;
    struct cloud_map map = {0};
    struct cloud_charge ch;
    cloud_charge_init(&ch);
    struct batch *b = core_calloc(1, sizeof(*b));
    struct cloud_scan *r = NULL; /* reads and normalizes on worker threads (scan.c) */
    bool in_txn = false;
    size_t first_scope = stats->nscopes;
    int rc;
    if (!b) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    core_arena_init(&b->arena, 64u << 20);
    struct stat sb;
    int64_t total = stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
    /* header, format and the error messages are the scanner's, as they were here */
    struct cloud_scan_opts so = {.format = o->format, .threads = o->threads};
    if (!(r = cloud_scan_open(path, &so, err))) {
        rc = err ? err->code : CORE_E_IO;
        goto out;
    }
    map.fmt = cloud_scan_map(r)->fmt; /* owns nothing: only the name is used below */
    int64_t line;
    snprintf(stats->format, sizeof(stats->format), "%s", map.fmt->name);
    if ((rc = store_txn_begin(st, err)))
        goto out;
    in_txn = true;
    struct store_value ip[3] = {store_v_text(path), store_v_text(map.fmt->name), {0}};
    char now[40];
    core_time_format(core_now_ms(), now, sizeof(now));
    ip[2] = store_v_text(now);
    int64_t import_id = 0;
    if ((rc = store_exec(st,
                         "INSERT INTO cost_imports (source, format, imported_at) "
                         "VALUES (?, ?, ?)",
                         ip, 3, NULL, err)) ||
        (rc = store_query_int(st, "SELECT MAX(id) FROM cost_imports", NULL, 0, &import_id, err)))
        goto out;
    int64_t rows = 0, imported = 0, malformed = 0;
    /* Rows arrive normalized, in file order, in batches from the scanner's
     * threads; this thread only writes. Malformed rows are collected by the
     * scanner and noted after the loop (in line order). */
    struct cloud_scan_batch sbt = {0};
    size_t bi = 0;
    for (;;) {
        if (bi == sbt.n) {
            bi = 0;
            if ((rc = cloud_scan_next(r, &sbt, err)) < 0)
                goto out;
            if (rc == 0)
                break;
            continue;
        }
        line = sbt.lines[bi];
        ch = sbt.rows[bi++];
        core_buf_init(&ch.scratch, 0); /* the batch keeps owning the tags' storage */
        rows++;
        const char *acct = ch.billing_account ? ch.billing_account
                           : ch.provider      ? ch.provider
                                              : "-";
        struct cloud_scope *sc = scope_get(stats, acct, ch.period, first_scope);
        if (!sc) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
        sc->rows++;
        sc->billed_n += ch.billed_n;
        struct store_value *v = &b->vals[b->n * NPARAMS];
        struct core_arena *a = &b->arena;
        v[0] = STORE_V_INT(import_id);
        v[1] = arena_text(a, acct);
        v[2] = arena_text(a, ch.period);
        v[3] = arena_text(a, ch.provider);
        v[4] = arena_text(a, ch.charge_start[0] ? ch.charge_start : NULL);
        v[5] = arena_text(a, ch.charge_end[0] ? ch.charge_end : NULL);
        v[6] = STORE_V_INT(ch.billed_n);
        v[7] = STORE_V_INT(ch.effective_n);
        v[8] = STORE_V_INT(ch.list_n);
        v[9] = arena_text(a, ch.currency);
        v[10] = arena_text(a, ch.sub_account);
        v[11] = arena_text(a, ch.service_name);
        v[12] = arena_text(a, ch.service_category);
        v[13] = arena_text(a, ch.charge_category);
        v[14] = arena_text(a, ch.region);
        v[15] = arena_text(a, ch.resource_id);
        v[16] = arena_text(a, ch.sku);
        v[17] = arena_text(a, ch.tags_json);
        v[18] = arena_text(a, ch.tag_team);
        v[19] = arena_text(a, ch.tag_service);
        v[20] = arena_text(a, ch.tag_env);
        v[21] = arena_text(a, ch.tag_cost_center);
        v[22] = arena_text(a, path);
        v[23] = STORE_V_INT(line);
        v[24] = arena_text(a, ch.commitment_id);
        v[25] = store_v_text(ch.commitment_type); /* static strings */
        v[26] = store_v_text(ch.commitment_status);
        v[27] = store_v_text(ch.pricing_category);
        v[28] = arena_text(a, ch.usage_type);
        v[29] = STORE_V_INT(ch.usage_qty_n);
        v[30] = STORE_V_INT(ch.unused_commitment_n);
        if (!v[1].s || !v[2].s || !v[17].s || !v[22].s) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
        if (++b->n == BATCH_ROWS && (rc = batch_flush(st, b, err)))
            goto out;
        imported++;
        if (o->progress && (rows & 0xffff) == 0) {
            int64_t done, all;
            cloud_scan_progress(r, &done, &all);
            o->progress(o->progress_arg, path, done, total);
        }
    }
    struct cloud_scan_stats ss;
    cloud_scan_stats(r, &ss);
    rows += ss.malformed;
    malformed += ss.malformed;
    for (size_t k = 0; k < ss.nbad; k++)
        note_bad(stats, path, ss.bad[k].line, strip_line(ss.bad[k].reason));
    stats->malformed += ss.malformed - (int64_t)ss.nbad; /* note_bad counted those */
    if ((rc = batch_flush(st, b, err)))
        goto out;
    /* Malformed rows are charged to the scope they cannot name, so a file with
     * any malformed row keeps every one of its periods out unless the caller
     * allows them. */
    for (size_t i = first_scope; i < stats->nscopes; i++) {
        struct cloud_scope *sc = &stats->scopes[i];
        sc->malformed = malformed;
        sc->replaced = malformed == 0 || o->allow_malformed;
        struct store_value p[3] = {store_v_text(sc->billing_account), store_v_text(sc->period),
                                   STORE_V_INT(import_id)};
        const char *sql = sc->replaced ? "DELETE FROM cost_lines WHERE billing_account = ? AND "
                                         "period = ? AND import_id <> ?"
                                       : "DELETE FROM cost_lines WHERE billing_account = ? AND "
                                         "period = ? AND import_id = ?";
        if ((rc = store_exec(st, sql, p, 3, NULL, err)))
            goto out;
        if (!sc->replaced)
            imported -= sc->rows;
    }
    struct store_value up[3] = {STORE_V_INT(imported), STORE_V_INT(malformed),
                                STORE_V_INT(import_id)};
    if ((rc = store_exec(st, "UPDATE cost_imports SET rows = ?, malformed = ? WHERE id = ?", up, 3,
                         NULL, err)))
        goto out;
    char detail[200];
    snprintf(detail, sizeof(detail), "%s: %lld rows imported, %lld malformed", map.fmt->name,
             (long long)imported, (long long)malformed);
    const char *base = strrchr(path, '/');
    struct store_audit_event ev = {.actor = "system",
                                   .action = "cost.import",
                                   .kind = "billing",
                                   .object = base ? base + 1 : path,
                                   .detail = detail};
    if ((rc = store_audit_append(st, &ev, err)) || (rc = store_txn_commit(st, err)))
        goto out;
    in_txn = false;
    stats->rows += rows;
    stats->imported += imported;
    if (o->progress)
        o->progress(o->progress_arg, path, total, total);
out:
    if (in_txn) {
        store_txn_rollback(st);
        for (size_t i = first_scope; i < stats->nscopes; i++)
            core_free(stats->scopes[i].billing_account);
        stats->nscopes = first_scope;
    }
    if (b) {
        core_arena_release(&b->arena);
        core_free(b);
    }
    cloud_scan_free(r);
    cloud_map_release(&map);
    cloud_charge_release(&ch);
    return rc;
}

/* ---- reports ---- */

void cloud_report_release(struct cloud_report *r)
{
    for (size_t i = 0; i < r->n; i++)
        core_free(r->items[i].key);
    core_free(r->items);
    core_free(r->currency);
    memset(r, 0, sizeof(*r));
}

struct names {
    char **a; /* pairs for services (name, team); singles for teams */
    size_t n;
    int per;
};

static int names_row(void *arg, const struct store_row *row)
{
    struct names *nm = arg;
    char **na = core_realloc(nm->a, (nm->n + 1) * (size_t)nm->per * sizeof(*na));
    if (!na)
        return CORE_E_NOMEM;
    nm->a = na;
    for (int i = 0; i < nm->per; i++) {
        const char *s = row->vals[i].type == STORE_TEXT ? row->vals[i].s : "";
        if (!(na[nm->n * (size_t)nm->per + (size_t)i] = core_strdup(s)))
            return CORE_E_NOMEM;
    }
    nm->n++;
    return 0;
}

static void names_release(struct names *nm)
{
    for (size_t i = 0; i < nm->n * (size_t)nm->per; i++)
        core_free(nm->a[i]);
    core_free(nm->a);
}

static const char *names_find(const struct names *nm, const char *key)
{
    for (size_t i = 0; key && i < nm->n; i++)
        if (strcmp(nm->a[i * (size_t)nm->per], key) == 0)
            return nm->a[i * (size_t)nm->per + (size_t)(nm->per - 1)];
    return NULL;
}

struct report_ctx {
    struct cloud_report *out;
    enum cloud_group by;
    struct names teams, services;
    bool mixed;
};

static int report_row(void *arg, const struct store_row *row)
{
    struct report_ctx *rc = arg;
    const char *team = store_row_text(row, "tag_team");
    const char *svc = store_row_text(row, "tag_service");
    const char *key = NULL;
    bool in_cat = false;
    switch (rc->by) {
    case CLOUD_BY_TEAM:
        if (team && names_find(&rc->teams, team)) {
            key = team;
            in_cat = true;
        } else if (svc && (key = names_find(&rc->services, svc))) {
            in_cat = true;
        } else {
            key = team;
        }
        break;
    case CLOUD_BY_SERVICE:
        key = svc;
        in_cat = svc && names_find(&rc->services, svc);
        break;
    case CLOUD_BY_ENV:
        key = store_row_text(row, "tag_env");
        break;
    case CLOUD_BY_COST_CENTER:
        key = store_row_text(row, "tag_cost_center");
        break;
    }
    if (!key || !*key)
        key = CLOUD_UNALLOCATED;
    const char *cur = store_row_text(row, "currency");
    if (cur) {
        if (!rc->out->currency)
            rc->out->currency = core_strdup(cur);
        else if (strcmp(rc->out->currency, cur) != 0)
            rc->mixed = true;
    }
    struct cloud_report *o = rc->out;
    struct cloud_report_row *it = NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->items[i].key, key) == 0)
            it = &o->items[i];
    if (!it) {
        struct cloud_report_row *ni = core_realloc(o->items, (o->n + 1) * sizeof(*ni));
        if (!ni)
            return CORE_E_NOMEM;
        o->items = ni;
        it = &ni[o->n];
        memset(it, 0, sizeof(*it));
        if (!(it->key = core_strdup(key)))
            return CORE_E_NOMEM;
        it->in_catalog = in_cat;
        o->n++;
    }
    int64_t b = store_row_int(row, "b"), e = store_row_int(row, "e");
    it->rows += store_row_int(row, "n");
    it->billed_n += b;
    it->effective_n += e;
    o->total_billed_n += b;
    o->total_effective_n += e;
    return 0;
}

static int cmp_rows(const void *pa, const void *pb)
{
    const struct cloud_report_row *a = pa, *b = pb;
    bool ua = strcmp(a->key, CLOUD_UNALLOCATED) == 0, ub = strcmp(b->key, CLOUD_UNALLOCATED) == 0;
    if (ua != ub)
        return ua ? 1 : -1;
    if (a->billed_n != b->billed_n)
        return a->billed_n > b->billed_n ? -1 : 1;
    return strcmp(a->key, b->key);
}

int cloud_cost_report(struct store *st, enum cloud_group by, const char *period,
                      struct cloud_report *out, struct core_err *err)
{
    memset(out, 0, sizeof(*out));
    struct report_ctx rc = {.out = out, .by = by, .teams = {.per = 1}, .services = {.per = 2}};
    int r;
    if ((r = store_query(st, "SELECT name FROM teams", NULL, 0, names_row, &rc.teams, err)) ||
        (r = store_query(st, "SELECT name, team FROM services", NULL, 0, names_row, &rc.services,
                         err)))
        goto out;
    struct store_value p[1] = {store_v_text(period)};
    const char *sql = period ? "SELECT tag_team, tag_service, tag_env, tag_cost_center, currency, "
                               "COUNT(*) AS n, "
                               "SUM(billed_n) AS b, SUM(effective_n) AS e FROM cost_lines WHERE "
                               "period = ? "
                               "GROUP BY tag_team, tag_service, tag_env, tag_cost_center, currency"
                             : "SELECT tag_team, tag_service, tag_env, tag_cost_center, currency, "
                               "COUNT(*) AS n, "
                               "SUM(billed_n) AS b, SUM(effective_n) AS e FROM cost_lines "
                               "GROUP BY tag_team, tag_service, tag_env, tag_cost_center, "
                               "currency";
    if ((r = store_query(st, sql, p, period ? 1 : 0, report_row, &rc, err))) {
        if (r == CORE_E_NOMEM)
            core_err_set(err, r, "out of memory");
        goto out;
    }
    if (rc.mixed) {
        core_free(out->currency);
        out->currency = core_strdup("mixed");
    }
    if (out->n)
        qsort(out->items, out->n, sizeof(*out->items), cmp_rows);
out:
    names_release(&rc.teams);
    names_release(&rc.services);
    if (r)
        cloud_report_release(out);
    return r;
}
