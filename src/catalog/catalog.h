/*
 * catalog: teams, users, memberships, environments and services — the organization the platform
 * serves — and the service manifest (`pave.yaml`) that ties every pillar together.
 *
 * Two halves. The manifest half is pure: catalog_manifest_parse() turns manifest text into a
 * validated `struct catalog_manifest`, reporting *every* problem at once as diagnostics with
 * file:line:column and a hint ("did you mean 'replicas'?"). It touches no store and is what the
 * fuzzer drives. The organization half reads and writes the store through `struct catalog`,
 * checks the caller's rights (`struct catalog_actor`), and records every mutation in the audit
 * log inside the same transaction. Applying an identical manifest changes nothing and writes no
 * audit event.
 *
 * Ownership: structs filled by catalog_* functions own their strings; release them with the
 * matching _release(). A `struct catalog` borrows its store, which must outlive it. Threading:
 * a catalog may be used from several threads; the store serializes access.
 */
#ifndef PAVE_CATALOG_H
#define PAVE_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "schema/schema.h"

struct store;

/* Diagnostics (struct schema_diags) come from the schema module. */

/* ---- the manifest ---- */

#define CATALOG_MANIFEST_MAX (256 * 1024)
#define CATALOG_API_VERSION "pave/v1"

struct catalog_manifest {
    char *file;        /* where it came from (for diagnostics) */
    char *name;        /* metadata.name, a DNS label */
    char *team;        /* metadata.team, a DNS label */
    int tier;          /* metadata.tier, 1..4 */
    char *description; /* may be NULL */
    int team_line;     /* position of metadata.team, for "unknown team" */
    int team_col;
    char *json;   /* canonical JSON of the whole manifest (keys in document order) */
    char digest[65]; /* SHA-256 hex of json */
};

void catalog_manifest_init(struct catalog_manifest *m);
void catalog_manifest_release(struct catalog_manifest *m);

/* Renders the manifest reference table (every key, type, default, constraint and doc line) as
 * Markdown, from the same schema tables the validator uses; docs/manifest.md embeds it. */
int catalog_manifest_schema_markdown(struct core_buf *out);

/*
 * Parses and validates one manifest document (YAML or JSON) named `file`. Checks: apiVersion and
 * kind, unknown keys (with "did you mean"), types, DNS-label names, tier range, ports (range,
 * duplicates by name and number, protocol), durations ("5s", "300ms"), quantities ("256Mi",
 * "0.5"), replicas and rollout bounds, env/secret names, dependencies, SLO values.
 * *m is initialized here (callers may still init it first); diags may be NULL (problems are
 * then only counted); a NULL file is named "<input>".
 * returns: 0 with *m filled; CORE_E_INVAL with every problem appended to diags (m left
 * released); CORE_E_TOO_BIG for input over CATALOG_MANIFEST_MAX; CORE_E_NOMEM.
 */
int catalog_manifest_parse(const char *file, const char *text, size_t len,
                           struct catalog_manifest *m, struct schema_diags *diags,
                           struct core_err *err);

/* ---- the organization ---- */

struct catalog;

/* Who is asking. Admins may do anything; members may change their own teams' services. */
struct catalog_actor {
    const char *user;
    bool is_admin;
    const char *const *teams; /* teams the user belongs to */
    size_t nteams;
};

extern const struct catalog_actor catalog_actor_system;

/* A guard-rail gate asked before a changed service manifest is stored (the policy module
 * installs one; docs/policy.md). returns: 0 to allow, or an error (CORE_E_PERM with the reasons
 * in err) to refuse. Called outside any transaction, so what it records stays. */
typedef int (*catalog_gate_fn)(void *arg, const struct catalog_actor *actor,
                               const struct catalog_manifest *m, struct core_err *err);
void catalog_set_gate(struct catalog *cat, catalog_gate_fn fn, void *arg);

/* returns: owned by caller, free with catalog_free(); borrows st. */
struct catalog *catalog_new(struct store *st, struct core_err *err);
void catalog_free(struct catalog *cat);

bool catalog_actor_in_team(const struct catalog_actor *a, const char *team);

/* Outcome of an idempotent write. */
enum catalog_change {
    CATALOG_UNCHANGED = 0,
    CATALOG_CREATED,
    CATALOG_UPDATED,
    CATALOG_DELETED,
};
const char *catalog_change_name(enum catalog_change c);

/* Services */
struct catalog_service {
    char *name;
    char *team;
    int tier;
    char *description;
    char *manifest; /* canonical JSON */
    char *digest;
    int64_t revision;
    char *created_at;
    char *updated_at;
};
void catalog_service_release(struct catalog_service *s);

struct catalog_service_list {
    struct catalog_service *items;
    size_t n;
    int64_t total; /* matching rows before paging */
};
void catalog_service_list_release(struct catalog_service_list *l);

struct catalog_service_query {
    const char *team;   /* exact team, NULL = any */
    const char *search; /* substring of name or description, NULL = any */
    const char *after;  /* keyset cursor: only names sorting after this one, NULL = from start */
    int limit;          /* 1..500, default 50 */
    int offset;
};

/*
 * Applies a validated manifest. Unknown team -> CORE_E_INVAL with a diagnostic at metadata.team.
 * The actor must be admin or a member of the manifest's team *and*, for an existing service, of
 * its current team (CORE_E_PERM otherwise). Identical content -> CATALOG_UNCHANGED, no write.
 */
int catalog_service_apply(struct catalog *cat, const struct catalog_actor *actor,
                          const struct catalog_manifest *m, const char *source,
                          enum catalog_change *change, struct schema_diags *diags,
                          struct core_err *err);
int catalog_service_get(struct catalog *cat, const char *name, struct catalog_service *out,
                        struct core_err *err);
/* Copies one page of services (manifest left empty) into out; release it after. */
int catalog_service_list(struct catalog *cat, const struct catalog_service_query *q,
                         struct catalog_service_list *out, struct core_err *err);
/* Calls fn for each service of the page without copying: the struct and its strings are
 * borrowed for the duration of the call (manifest is NULL). *total receives the count of
 * matching services before paging. A non-zero return from fn stops and is returned. */
typedef int (*catalog_service_fn)(void *arg, const struct catalog_service *s);
int catalog_service_each(struct catalog *cat, const struct catalog_service_query *q,
                         int64_t *total, catalog_service_fn fn, void *arg, struct core_err *err);
int catalog_service_delete(struct catalog *cat, const struct catalog_actor *actor,
                           const char *name, struct core_err *err);

/* Teams */
struct catalog_team {
    char *name;
    char *display_name;
    char *description;
    int64_t services;
    int64_t members;
    char *created_at;
};
void catalog_team_release(struct catalog_team *t);
typedef int (*catalog_team_fn)(void *arg, const struct catalog_team *t);
int catalog_team_create(struct catalog *cat, const struct catalog_actor *actor, const char *name,
                        const char *display_name, const char *description,
                        enum catalog_change *change, struct core_err *err);
int catalog_team_get(struct catalog *cat, const char *name, struct catalog_team *out,
                     struct core_err *err);
int catalog_team_list(struct catalog *cat, catalog_team_fn fn, void *arg, struct core_err *err);
/* Refuses (CORE_E_CONFLICT) while the team still owns services. */
int catalog_team_delete(struct catalog *cat, const struct catalog_actor *actor, const char *name,
                        struct core_err *err);

/* Users and memberships */
struct catalog_user {
    char *name;
    char *display_name;
    bool is_admin;
    char **teams; /* NULL-terminated */
    size_t nteams;
    char *created_at;
};
void catalog_user_release(struct catalog_user *u);
typedef int (*catalog_user_fn)(void *arg, const struct catalog_user *u);
int catalog_user_create(struct catalog *cat, const struct catalog_actor *actor, const char *name,
                        const char *display_name, bool is_admin, enum catalog_change *change,
                        struct core_err *err);
/* Loads a user with their team list (used by auth to build an actor). */
int catalog_user_get(struct catalog *cat, const char *name, struct catalog_user *out,
                     struct core_err *err);
int catalog_user_list(struct catalog *cat, catalog_user_fn fn, void *arg, struct core_err *err);
int catalog_member_add(struct catalog *cat, const struct catalog_actor *actor, const char *team,
                       const char *user, enum catalog_change *change, struct core_err *err);
int catalog_member_remove(struct catalog *cat, const struct catalog_actor *actor,
                          const char *team, const char *user, struct core_err *err);

/* Environments */
struct catalog_env {
    const char *name;
    const char *description;
    int64_t position;
};
typedef int (*catalog_env_fn)(void *arg, const struct catalog_env *e);
int catalog_env_create(struct catalog *cat, const struct catalog_actor *actor, const char *name,
                       const char *description, enum catalog_change *change,
                       struct core_err *err);
int catalog_env_list(struct catalog *cat, catalog_env_fn fn, void *arg, struct core_err *err);

/* Ensures dev/staging/prod exist (no audit events when they already do). */
int catalog_env_defaults(struct catalog *cat, struct core_err *err);

/* Loads the demo organization: 2 teams, 3 services, users alice/bob, default environments.
 * Idempotent. */
int catalog_demo_load(struct catalog *cat, struct core_err *err);

#endif
