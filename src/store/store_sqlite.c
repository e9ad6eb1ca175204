/* SQLite backend: WAL, foreign keys, busy timeout, versioned migrations. */
#include "store/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/*
 * Migrations, in order. Migration i brings the schema to version i+1. Never edit a released
 * entry: append a new one. The audit table is made append-only with triggers.
 */
static const char *const migrations[] = {
    /* 1: catalog, auth, audit */
    "CREATE TABLE users ("
    "  name TEXT PRIMARY KEY,"
    "  display_name TEXT,"
    "  is_admin INTEGER NOT NULL DEFAULT 0,"
    "  created_at TEXT NOT NULL);"
    "CREATE TABLE teams ("
    "  name TEXT PRIMARY KEY,"
    "  display_name TEXT,"
    "  description TEXT,"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL);"
    "CREATE TABLE memberships ("
    "  team TEXT NOT NULL REFERENCES teams(name) ON DELETE CASCADE,"
    "  user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
    "  role TEXT NOT NULL DEFAULT 'member',"
    "  created_at TEXT NOT NULL,"
    "  PRIMARY KEY (team, user_name));"
    "CREATE TABLE environments ("
    "  name TEXT PRIMARY KEY,"
    "  description TEXT,"
    "  position INTEGER NOT NULL DEFAULT 0,"
    "  created_at TEXT NOT NULL);"
    "CREATE TABLE services ("
    "  name TEXT PRIMARY KEY,"
    "  team TEXT NOT NULL REFERENCES teams(name),"
    "  tier INTEGER NOT NULL,"
    "  description TEXT,"
    "  manifest TEXT NOT NULL,"
    "  source TEXT,"
    "  digest TEXT NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL);"
    "CREATE INDEX services_team ON services(team);"
    "CREATE TABLE tokens ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  created_at TEXT NOT NULL,"
    "  last_used_at TEXT,"
    "  expires_at TEXT,"
    "  revoked_at TEXT);"
    "CREATE TABLE sessions ("
    "  id_hash TEXT PRIMARY KEY,"
    "  token_id TEXT NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
    "  csrf TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  expires_ms INTEGER NOT NULL);"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ts TEXT NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  object TEXT NOT NULL,"
    "  before_digest TEXT,"
    "  after_digest TEXT,"
    "  detail TEXT);"
    "CREATE INDEX audit_object ON audit(kind, object);"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;",
    /* 2: a covering index for catalog listings, so paging reads a compact index, not rows */
    "CREATE INDEX services_listing ON services(name, team, tier, description, digest, revision,"
    "  created_at, updated_at);",
    /* 3: pipelines: secrets, runs, steps, hosted git refs */
    "CREATE TABLE secrets ("
    "  service TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  nonce TEXT NOT NULL,"
    "  ciphertext TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL,"
    "  PRIMARY KEY (service, name));"
    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  service TEXT NOT NULL,"
    "  team TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  trigger TEXT NOT NULL,"
    "  branch TEXT,"
    "  commit_sha TEXT,"
    "  actor TEXT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  changed TEXT,"
    "  retry_of INTEGER,"
    "  queued_at TEXT NOT NULL,"
    "  started_at TEXT,"
    "  finished_at TEXT,"
    "  error TEXT,"
    "  pipeline_digest TEXT,"
    "  artifact_digest TEXT,"
    "  artifact_size INTEGER,"
    "  artifact_path TEXT);"
    "CREATE INDEX runs_service ON runs(service, id);"
    "CREATE INDEX runs_state ON runs(state, id);"
    "CREATE TABLE run_steps ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  exit_code INTEGER,"
    "  started_at TEXT,"
    "  finished_at TEXT,"
    "  duration_ms INTEGER,"
    "  detail TEXT,"
    "  PRIMARY KEY (run_id, idx));"
    "CREATE TABLE git_refs ("
    "  service TEXT NOT NULL,"
    "  ref TEXT NOT NULL,"
    "  sha TEXT NOT NULL,"
    "  PRIMARY KEY (service, ref));",
    /* 4: the OCI registry: blobs (content-addressed, once), per-repository links, manifests,
     * the blobs and child manifests they reference, tags, uploads in progress */
    "CREATE TABLE registry_blobs ("
    "  digest TEXT PRIMARY KEY,"
    "  size INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE registry_repo_blobs ("
    "  repo TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  PRIMARY KEY (repo, digest));"
    "CREATE INDEX registry_repo_blobs_digest ON registry_repo_blobs(digest);"
    "CREATE TABLE registry_manifests ("
    "  repo TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  media_type TEXT NOT NULL,"
    "  artifact_type TEXT,"
    "  subject TEXT,"
    "  annotations TEXT,"
    "  size INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  PRIMARY KEY (repo, digest));"
    "CREATE INDEX registry_manifests_subject ON registry_manifests(repo, subject);"
    "CREATE INDEX registry_manifests_digest ON registry_manifests(digest);"
    "CREATE TABLE registry_manifest_refs ("
    "  repo TEXT NOT NULL,"
    "  manifest TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  PRIMARY KEY (repo, manifest, digest));"
    "CREATE INDEX registry_manifest_refs_digest ON registry_manifest_refs(digest);"
    "CREATE TABLE registry_tags ("
    "  repo TEXT NOT NULL,"
    "  tag TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL,"
    "  PRIMARY KEY (repo, tag));"
    "CREATE TABLE registry_uploads ("
    "  uuid TEXT PRIMARY KEY,"
    "  repo TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL);",
    /* 5: deployments: every deploy, rollback and scale (who, when, what, result), the desired
     * state per service and environment, and the stable service-discovery port of each */
    "CREATE TABLE deployments ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  service TEXT NOT NULL,"
    "  env TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  image TEXT NOT NULL,"
    "  digest TEXT,"
    "  rev TEXT,"
    "  replicas INTEGER NOT NULL,"
    "  max_surge INTEGER NOT NULL,"
    "  max_unavailable INTEGER NOT NULL,"
    "  health_deadline_ms INTEGER NOT NULL,"
    "  spec TEXT,"
    "  actor TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  message TEXT,"
    "  rollback_of INTEGER,"
    "  created_at TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  finished_at TEXT);"
    "CREATE INDEX deployments_target ON deployments(service, env, id);"
    "CREATE INDEX deployments_state ON deployments(state, id);"
    "CREATE TABLE deploy_targets ("
    "  service TEXT NOT NULL,"
    "  env TEXT NOT NULL,"
    "  port INTEGER NOT NULL UNIQUE,"
    "  desired_id INTEGER,"
    "  stable_id INTEGER,"
    "  replicas INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (service, env));",
    /* 6: service-to-service links: the port a declared caller reaches a dependency on (the
     * only way into a strict service) */
    "CREATE TABLE deploy_links ("
    "  caller TEXT NOT NULL,"
    "  service TEXT NOT NULL,"
    "  env TEXT NOT NULL,"
    "  port INTEGER NOT NULL UNIQUE,"
    "  PRIMARY KEY (caller, service, env));",
    /* 7: policy: versioned policy documents (the newest non-deleted version of each name is
     * active), exceptions and their decisions, gate decisions, and background scans with one
     * row per (service, rule) for compliance reports */
    "CREATE TABLE policies ("
    "  name TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  yaml TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  created_by TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  PRIMARY KEY (name, version));"
    "CREATE TABLE policy_exceptions ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  subject TEXT NOT NULL,"
    "  rule TEXT NOT NULL,"
    "  justification TEXT NOT NULL,"
    "  requester TEXT NOT NULL,"
    "  approver TEXT,"
    "  state TEXT NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  decided_at TEXT,"
    "  comment TEXT);"
    "CREATE INDEX policy_exceptions_subject ON policy_exceptions(subject, state);"
    "CREATE INDEX policy_exceptions_state ON policy_exceptions(state, id);"
    "CREATE TABLE policy_decisions ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ts TEXT NOT NULL,"
    "  gate TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  subject_kind TEXT NOT NULL,"
    "  team TEXT,"
    "  env TEXT,"
    "  blocked INTEGER NOT NULL,"
    "  failed TEXT NOT NULL);"
    "CREATE INDEX policy_decisions_subject ON policy_decisions(subject, id);"
    "CREATE INDEX policy_decisions_team ON policy_decisions(team, id);"
    "CREATE TABLE policy_scans ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ts TEXT NOT NULL);"
    "CREATE TABLE policy_scan_rows ("
    "  scan_id INTEGER NOT NULL REFERENCES policy_scans(id) ON DELETE CASCADE,"
    "  team TEXT NOT NULL,"
    "  service TEXT NOT NULL,"
    "  rule TEXT NOT NULL,"
    "  severity TEXT NOT NULL,"
    "  mode TEXT NOT NULL,"
    "  outcome TEXT NOT NULL,"
    "  message TEXT,"
    "  exception_id INTEGER);"
    "CREATE INDEX policy_scan_rows_scan ON policy_scan_rows(scan_id, team, service, rule);"
    "CREATE INDEX policy_scan_rows_service ON policy_scan_rows(scan_id, service);"
    "CREATE INDEX policy_scan_rows_rule ON policy_scan_rows(scan_id, rule);",
    /* 8: pki: the inventory of every certificate the internal CA issued (state valid or
     * revoked; "expired" is derived from not_after_ms when read) */
    "CREATE TABLE pki_certs ("
    "  serial TEXT PRIMARY KEY,"
    "  subject TEXT NOT NULL,"
    "  sans TEXT NOT NULL,"
    "  owner TEXT,"
    "  profile TEXT NOT NULL,"
    "  key_type TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  not_before_ms INTEGER NOT NULL,"
    "  not_after_ms INTEGER NOT NULL,"
    "  revoked_ms INTEGER,"
    "  reason INTEGER,"
    "  cert_pem TEXT NOT NULL,"
    "  created_at TEXT NOT NULL);"
    "CREATE INDEX pki_certs_owner ON pki_certs(owner, serial);"
    "CREATE INDEX pki_certs_expiry ON pki_certs(state, not_after_ms);",
    /* 9: acme: accounts (by JWK thumbprint), orders, authorizations, challenges, the
     * certificates issued through ACME (by leaf fingerprint, for revokeCert) and nonces */
    "CREATE TABLE acme_accounts ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  thumbprint TEXT NOT NULL UNIQUE,"
    "  jwk TEXT NOT NULL,"
    "  contact TEXT,"
    "  status TEXT NOT NULL,"
    "  created_at TEXT NOT NULL);"
    "CREATE TABLE acme_orders ("
    "  id TEXT PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES acme_accounts(id),"
    "  status TEXT NOT NULL,"
    "  identifiers TEXT NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  error TEXT,"
    "  cert_id TEXT,"
    "  created_at TEXT NOT NULL);"
    "CREATE INDEX acme_orders_account ON acme_orders(account_id);"
    "CREATE TABLE acme_authzs ("
    "  id TEXT PRIMARY KEY,"
    "  order_id TEXT NOT NULL REFERENCES acme_orders(id),"
    "  account_id INTEGER NOT NULL,"
    "  identifier TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  expires_ms INTEGER NOT NULL);"
    "CREATE INDEX acme_authzs_order ON acme_authzs(order_id);"
    "CREATE TABLE acme_challenges ("
    "  id TEXT PRIMARY KEY,"
    "  authz_id TEXT NOT NULL REFERENCES acme_authzs(id),"
    "  type TEXT NOT NULL,"
    "  token TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  validated TEXT,"
    "  error TEXT);"
    "CREATE INDEX acme_challenges_authz ON acme_challenges(authz_id);"
    "CREATE TABLE acme_certs ("
    "  id TEXT PRIMARY KEY,"
    "  order_id TEXT NOT NULL,"
    "  account_id INTEGER NOT NULL,"
    "  serial TEXT NOT NULL,"
    "  fingerprint TEXT NOT NULL UNIQUE,"
    "  chain_pem TEXT NOT NULL,"
    "  revoked INTEGER NOT NULL DEFAULT 0,"
    "  created_at TEXT NOT NULL);"
    "CREATE TABLE acme_nonces ("
    "  nonce TEXT PRIMARY KEY,"
    "  expires_ms INTEGER NOT NULL);",
    /* billing: imported cost lines (money in nano-units), one row per import (src/cloud/) */
    "CREATE TABLE cost_imports ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  source TEXT NOT NULL,"
    "  format TEXT NOT NULL,"
    "  rows INTEGER,"
    "  malformed INTEGER,"
    "  imported_at TEXT NOT NULL);"
    "CREATE TABLE cost_lines ("
    "  id INTEGER PRIMARY KEY,"
    "  import_id INTEGER NOT NULL,"
    "  billing_account TEXT NOT NULL,"
    "  period TEXT NOT NULL,"
    "  provider TEXT,"
    "  charge_start TEXT,"
    "  charge_end TEXT,"
    "  billed_n INTEGER NOT NULL,"
    "  effective_n INTEGER NOT NULL,"
    "  list_n INTEGER NOT NULL,"
    "  currency TEXT,"
    "  sub_account TEXT,"
    "  service_name TEXT,"
    "  service_category TEXT,"
    "  charge_category TEXT,"
    "  region TEXT,"
    "  resource_id TEXT,"
    "  sku TEXT,"
    "  tags TEXT NOT NULL,"
    "  tag_team TEXT,"
    "  tag_service TEXT,"
    "  tag_env TEXT,"
    "  tag_cost_center TEXT,"
    "  source TEXT NOT NULL,"
    "  line INTEGER NOT NULL);"
    "CREATE INDEX cost_lines_scope ON cost_lines(billing_account, period, import_id);"
    "CREATE INDEX cost_lines_period ON cost_lines(period);",
    /* 11: organization (accounts, OUs, SCP and tag policies), cost budgets / split rules / cost
     * alerts (src/cloud/), security alerts, file-integrity baseline and first-seen facts
     * (src/security/) */
    /* -- organization (src/cloud/org.c) -- */
    "CREATE TABLE org_nodes ("
    "  id TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  parent_id TEXT,"
    "  email TEXT,"
    "  status TEXT,"
    "  imported_at TEXT NOT NULL);"
    "CREATE INDEX org_nodes_parent ON org_nodes(parent_id);"
    "CREATE TABLE org_policies ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  document TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL);"
    "CREATE TABLE org_attachments ("
    "  policy_id TEXT NOT NULL,"
    "  target_id TEXT NOT NULL,"
    "  PRIMARY KEY (policy_id, target_id));"
    /* -- cost analysis (src/cloud/analysis.c) -- */
    "CREATE TABLE cost_budgets ("
    "  team TEXT PRIMARY KEY,"
    "  monthly_n INTEGER NOT NULL,"
    "  currency TEXT,"
    "  alert_pct INTEGER NOT NULL DEFAULT 80,"
    "  updated_at TEXT NOT NULL,"
    "  updated_by TEXT);"
    "CREATE TABLE cost_split_rules ("
    "  name TEXT PRIMARY KEY,"
    "  document TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL,"
    "  updated_by TEXT);"
    "CREATE TABLE cost_alerts ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  period TEXT NOT NULL,"
    "  message TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  UNIQUE (kind, key, period));"
    /* commitment fields per charge (docs/billing-formats.md) */
    "ALTER TABLE cost_lines ADD COLUMN commitment_id TEXT;"
    "ALTER TABLE cost_lines ADD COLUMN commitment_type TEXT;"
    "ALTER TABLE cost_lines ADD COLUMN commitment_status TEXT;"
    "ALTER TABLE cost_lines ADD COLUMN pricing_category TEXT;"
    "ALTER TABLE cost_lines ADD COLUMN usage_type TEXT;"
    "ALTER TABLE cost_lines ADD COLUMN usage_qty_n INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE cost_lines ADD COLUMN unused_commitment_n INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX cost_lines_start ON cost_lines(charge_start);"
    /* -- security alerts (src/security/alerts.c) -- */
    "CREATE TABLE security_alerts ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  rule_id TEXT NOT NULL,"
    "  rule_title TEXT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  severity TEXT NOT NULL,"
    "  dedup_key TEXT NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'open',"
    "  service TEXT,"
    "  team TEXT,"
    "  summary TEXT NOT NULL,"
    "  count INTEGER NOT NULL DEFAULT 1,"
    "  first_seen TEXT NOT NULL,"
    "  last_seen TEXT NOT NULL,"
    "  updated_by TEXT,"
    "  comment TEXT);"
    "CREATE UNIQUE INDEX security_alerts_live ON security_alerts(dedup_key) "
    "  WHERE state != 'closed';"
    "CREATE INDEX security_alerts_state ON security_alerts(state, id);"
    "CREATE TABLE security_alert_events ("
    "  alert_id INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  event TEXT NOT NULL,"
    "  PRIMARY KEY (alert_id, seq));"
    /* -- file integrity and first-seen facts (src/security/fim.c, detect.c) -- */
    "CREATE TABLE security_fim ("
    "  path TEXT PRIMARY KEY,"
    "  scope TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  sha256 TEXT,"
    "  target TEXT,"
    "  mode INTEGER NOT NULL,"
    "  uid INTEGER NOT NULL,"
    "  gid INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  mtime_ns INTEGER NOT NULL,"
    "  updated_at TEXT NOT NULL);"
    "CREATE INDEX security_fim_scope ON security_fim(scope);"
    "CREATE TABLE security_seen ("
    "  kind TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  first_seen TEXT NOT NULL,"
    "  PRIMARY KEY (kind, key, value));",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int store_schema_latest(void)
{
    return N_MIGRATIONS;
}

struct sq {
    sqlite3 *db;
};

static int sq_err(struct sq *s, struct core_err *err, int rc, const char *what)
{
    int code = CORE_E_IO;
    int ext = sqlite3_extended_errcode(s->db);
    if (rc == SQLITE_CONSTRAINT || (ext & 0xff) == SQLITE_CONSTRAINT)
        code = CORE_E_CONFLICT;
    else if (rc == SQLITE_NOMEM)
        code = CORE_E_NOMEM;
    else if (rc == SQLITE_TOOBIG)
        code = CORE_E_TOO_BIG;
    return core_err_set(err, code, "%s: %s", what, sqlite3_errmsg(s->db));
}

static int sq_schema_version(void *ctx)
{
    struct sq *s = ctx;
    sqlite3_stmt *st = NULL;
    int v = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int migrate(struct sq *s, const char *path, struct core_err *err)
{
    int have = sq_schema_version(s);
    if (have > N_MIGRATIONS)
        return core_err_set(err, CORE_E_UNSUPPORTED,
                            "database '%s' has schema version %d but this pave knows only up to "
                            "%d; upgrade pave",
                            path, have, N_MIGRATIONS);
    for (int v = have; v < N_MIGRATIONS; v++) {
        char *msg = NULL;
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d;", v + 1);
        int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, migrations[v], NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, pragma, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            core_err_set(err, CORE_E_IO, "migration %d of '%s' failed: %s", v + 1, path,
                         msg ? msg : sqlite3_errmsg(s->db));
            sqlite3_free(msg);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return CORE_E_IO;
        }
        log_info("store", "schema migrated", LOG_INT("version", v + 1), LOG_STR("path", path));
    }
    return 0;
}

static void sq_close(void *ctx)
{
    struct sq *s = ctx;
    if (!s)
        return;
    sqlite3_close_v2(s->db);
    core_free(s);
}

static int sq_open(void **ctx, const char *path, struct core_err *err)
{
    struct sq *s = core_calloc(1, sizeof(*s));
    if (!s)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        core_err_set(err, CORE_E_IO, "cannot open database '%s': %s", path,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sq_close(s);
        return CORE_E_IO;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char *msg = NULL;
    rc = sqlite3_exec(s->db,
                      "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL; "
                      "PRAGMA cache_size=-16384;",
                      NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        core_err_set(err, CORE_E_IO, "cannot configure database '%s': %s", path,
                     msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        sq_close(s);
        return CORE_E_IO;
    }
    rc = migrate(s, path, err);
    if (rc) {
        sq_close(s);
        return rc;
    }
    *ctx = s;
    return 0;
}

static int sq_open_reader(void **ctx, const char *path, struct core_err *err)
{
    struct sq *s = core_calloc(1, sizeof(*s));
    if (!s)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(s->db, 5000);
        /* A larger page cache keeps hot pages per reader. (mmap was measured slower here: every
         * read transaction refaulted the mapping.) */
        rc = sqlite3_exec(s->db,
                          "PRAGMA query_only=1; PRAGMA foreign_keys=ON; PRAGMA cache_size=-16384;",
                          NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        core_err_set(err, CORE_E_IO, "cannot open a reader on '%s': %s", path,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sq_close(s);
        return CORE_E_IO;
    }
    *ctx = s;
    return 0;
}

static int bind_all(struct sq *s, sqlite3_stmt *st, const struct store_value *params, size_t n,
                    struct core_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc;
        switch (params[i].type) {
        case STORE_INT: rc = sqlite3_bind_int64(st, (int)i + 1, params[i].i); break;
        case STORE_TEXT:
            rc = sqlite3_bind_text(st, (int)i + 1, params[i].s, -1, SQLITE_STATIC);
            break;
        default: rc = sqlite3_bind_null(st, (int)i + 1);
        }
        if (rc != SQLITE_OK)
            return sq_err(s, err, rc, "bind");
    }
    return 0;
}

static int sq_exec(void *ctx, const char *sql, const struct store_value *params, size_t n,
                   int64_t *changes, struct core_err *err)
{
    struct sq *s = ctx;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_err(s, err, rc, "prepare");
    int out = bind_all(s, st, params, n, err);
    if (!out) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
            out = sq_err(s, err, rc, "statement failed");
        else if (changes)
            *changes = sqlite3_changes64(s->db);
    }
    sqlite3_finalize(st);
    return out;
}

static int sq_query(void *ctx, const char *sql, const struct store_value *params, size_t n,
                    store_row_fn fn, void *arg, struct core_err *err)
{
    struct sq *s = ctx;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_err(s, err, rc, "prepare");
    int out = bind_all(s, st, params, n, err);
    int ncols = sqlite3_column_count(st);
    const char *names[64];
    struct store_value vals[64];
    if (ncols > 64) {
        sqlite3_finalize(st);
        return core_err_set(err, CORE_E_INVAL, "query returns too many columns");
    }
    bool have_names = false;
    while (!out) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            out = sq_err(s, err, rc, "query failed");
            break;
        }
        /* Names are fetched after the first step: a step may re-prepare the statement, which
         * invalidates names fetched before it. */
        if (!have_names) {
            for (int i = 0; i < ncols; i++)
                names[i] = sqlite3_column_name(st, i);
            have_names = true;
        }
        for (int i = 0; i < ncols; i++) {
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_INTEGER:
                vals[i] = STORE_V_INT(sqlite3_column_int64(st, i));
                break;
            case SQLITE_NULL: vals[i] = STORE_V_NULL; break;
            default:
                vals[i] = (struct store_value){STORE_TEXT, 0,
                                               (const char *)sqlite3_column_text(st, i)};
                if (!vals[i].s)
                    vals[i] = STORE_V_NULL;
            }
        }
        struct store_row row = {(size_t)ncols, names, vals};
        out = fn(arg, &row);
    }
    sqlite3_finalize(st);
    return out;
}

static int simple(struct sq *s, const char *sql, struct core_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        core_err_set(err, CORE_E_IO, "%s: %s", sql, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return CORE_E_IO;
    }
    return 0;
}

static int sq_begin(void *ctx, struct core_err *err)
{
    return simple(ctx, "BEGIN IMMEDIATE", err);
}

static int sq_commit(void *ctx, struct core_err *err)
{
    return simple(ctx, "COMMIT", err);
}

static int sq_rollback(void *ctx)
{
    struct sq *s = ctx;
    if (sqlite3_get_autocommit(s->db))
        return 0;
    return simple(ctx, "ROLLBACK", NULL);
}

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .open_reader = sq_open_reader,
    .close = sq_close,
    .exec = sq_exec,
    .query = sq_query,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .schema_version = sq_schema_version,
};
