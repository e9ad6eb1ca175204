/* The organization tree: import files (Paved's own YAML/JSON shape and AWS
 * Organizations CLI outputs) parsed into `struct org_data`, stored in
 * org_nodes / org_policies / org_attachments, the tree as JSON and the SCP
 * question "can this account do this" answered with its deciding statement
 * (docs/org.md). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cloud/cloud.h"
#include "store/store.h"

#define DEFAULT_ROOT_ID "r-root"

void org_data_release(struct org_data *d)
{
    for (size_t i = 0; i < d->nnodes; i++) {
        core_free(d->nodes[i].id);
        core_free(d->nodes[i].kind);
        core_free(d->nodes[i].name);
        core_free(d->nodes[i].parent_id);
        core_free(d->nodes[i].email);
        core_free(d->nodes[i].status);
    }
    for (size_t i = 0; i < d->npolicies; i++) {
        core_free(d->policies[i].id);
        core_free(d->policies[i].name);
        core_free(d->policies[i].type);
        core_free(d->policies[i].document);
    }
    for (size_t i = 0; i < d->natt; i++) {
        core_free(d->att[i].policy_id);
        core_free(d->att[i].target_id);
    }
    core_free(d->nodes);
    core_free(d->policies);
    core_free(d->att);
    core_free(d->targets_of);
    memset(d, 0, sizeof(*d));
}

static int add_node(struct org_data *d, const char *id, const char *kind, const char *name,
                    const char *parent, const char *email, const char *status, struct core_err *err)
{
    struct org_node *nn = core_realloc(d->nodes, (d->nnodes + 1) * sizeof(*nn));
    if (!nn)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    d->nodes = nn;
    struct org_node *n = &nn[d->nnodes];
    memset(n, 0, sizeof(*n));
    n->id = core_strdup(id);
    n->kind = core_strdup(kind);
    n->name = core_strdup(name ? name : id);
    n->parent_id = parent ? core_strdup(parent) : NULL;
    n->email = email ? core_strdup(email) : NULL;
    n->status = status ? core_strdup(status) : NULL;
    d->nnodes++;
    if (!n->id || !n->kind || !n->name || (parent && !n->parent_id) || (email && !n->email) ||
        (status && !n->status))
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    return 0;
}

static int add_policy(struct org_data *d, const char *id, const char *name, const char *type,
                      const char *doc, struct core_err *err)
{
    struct org_policy_rec *np = core_realloc(d->policies, (d->npolicies + 1) * sizeof(*np));
    if (!np)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    d->policies = np;
    struct org_policy_rec *p = &np[d->npolicies++];
    p->id = core_strdup(id);
    p->name = core_strdup(name);
    p->type = core_strdup(type);
    p->document = core_strdup(doc);
    if (!p->id || !p->name || !p->type || !p->document)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    return 0;
}

static int add_att(struct org_data *d, const char *policy, const char *target,
                   struct core_err *err)
{
    for (size_t i = 0; i < d->natt; i++)
        if (strcmp(d->att[i].policy_id, policy) == 0 && strcmp(d->att[i].target_id, target) == 0)
            return 0;
    struct org_attachment *na = core_realloc(d->att, (d->natt + 1) * sizeof(*na));
    if (!na)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    d->att = na;
    struct org_attachment *a = &na[d->natt++];
    a->policy_id = core_strdup(policy);
    a->target_id = core_strdup(target);
    if (!a->policy_id || !a->target_id)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    return 0;
}

/* ---- import: shared helpers ---- */

struct imp {
    struct org_data *d;
    const char *name; /* file name for messages */
    struct core_err *err;
};

#define FAIL(im, node, ...) fail_at((im), (node), __VA_ARGS__)

static int fail_at(struct imp *im, const struct core_node *n, const char *fmt, ...)
    CORE_PRINTF(3, 4);
static int fail_at(struct imp *im, const struct core_node *n, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n)
        return core_err_set(im->err, CORE_E_INVAL, "%s:%d:%d: %s", im->name, n->line, n->col,
                            msg);
    return core_err_set(im->err, CORE_E_INVAL, "%s: %s", im->name, msg);
}

/* A scalar child's text, or NULL (absent). Non-scalars are an error (*rc). */
static const char *get_str(struct imp *im, const struct core_node *map, const char *key, int *rc)
{
    const struct core_node *v = core_node_get(map, key);
    if (!v || core_scalar_is_null(v))
        return NULL;
    if (v->kind != CORE_NODE_SCALAR) {
        *rc = FAIL(im, v, "'%s' must be a string", key);
        return NULL;
    }
    return v->value;
}

static int check_keys(struct imp *im, const struct core_node *map, const char *what,
                      const char *const *keys)
{
    for (size_t i = 0; i < map->n; i++) {
        bool ok = false;
        for (size_t k = 0; keys[k] && !ok; k++)
            ok = strcmp(keys[k], map->keys[i]) == 0;
        if (!ok) {
            const char *dym = core_did_you_mean(map->keys[i], keys);
            return FAIL(im, map->key_nodes[i], "unknown key '%s' in %s%s%s%s", map->keys[i], what,
                        dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
        }
    }
    return 0;
}

/* "scp" or "tag" from the Paved or AWS spelling; NULL if unknown. */
static const char *policy_type(const char *t)
{
    if (!t || strcasecmp(t, "scp") == 0 || strcmp(t, "SERVICE_CONTROL_POLICY") == 0)
        return "scp";
    if (strcasecmp(t, "tag") == 0 || strcmp(t, "TAG_POLICY") == 0)
        return "tag";
    return NULL;
}

/* Compiles a document of the given type to refuse a bad one at import. */
static int check_document(struct imp *im, const struct core_node *at, const char *pname,
                          const char *type, const char *text)
{
    struct core_err e = {0};
    int rc = 0;
    if (strcmp(type, "scp") == 0) {
        struct org_policy *p = org_policy_parse(text, strlen(text), &e);
        rc = p ? 0 : e.code;
        org_policy_free(p);
    } else {
        rc = org_tag_policy_check(text, strlen(text), &e);
    }
    if (rc == CORE_E_NOMEM)
        return core_err_set(im->err, rc, "out of memory");
    if (rc)
        return FAIL(im, at, "policy '%s': %s", pname, e.msg);
    return 0;
}

/* ---- import: AWS CLI shapes ---- */

static int aws_items(struct imp *im, const struct core_node *list, const char *what)
{
    if (list->kind != CORE_NODE_SEQ)
        return FAIL(im, list, "'%s' must be a list", what);
    for (size_t i = 0; i < list->n; i++)
        if (list->items[i]->kind != CORE_NODE_MAP)
            return FAIL(im, list->items[i], "%s[%zu] must be an object", what, i);
    return 0;
}

static int aws_policy(struct imp *im, const struct core_node *item, const char *path)
{
    int rc = 0;
    const struct core_node *sum = core_node_get(item, "PolicySummary");
    if (!sum)
        sum = item; /* a summary with its Content beside it */
    if (sum->kind != CORE_NODE_MAP)
        return FAIL(im, sum, "%s.PolicySummary must be an object", path);
    const char *id = get_str(im, sum, "Id", &rc), *name = get_str(im, sum, "Name", &rc);
    const char *type = get_str(im, sum, "Type", &rc);
    const char *content = get_str(im, item, "Content", &rc);
    if (rc)
        return rc;
    if (!id)
        return FAIL(im, sum, "%s: missing 'Id'", path);
    if (!content)
        return FAIL(im, item,
                    "%s: policy '%s' has no 'Content'; list-policies carries only summaries, "
                    "import 'aws organizations describe-policy --policy-id %s' instead",
                    path, id, id);
    const char *t = policy_type(type);
    if (!t)
        return FAIL(im, sum,
                    "%s: policy type '%s' is not supported (SERVICE_CONTROL_POLICY or "
                    "TAG_POLICY)",
                    path, type);
    if ((rc = check_document(im, core_node_get(item, "Content"), name ? name : id, t, content)))
        return rc;
    return add_policy(im->d, id, name ? name : id, t, content, im->err);
}

static int aws_parse(struct imp *im, const struct core_node *root, const struct org_import_opts *o)
{
    static const char *const keys[] = {"Roots",    "Accounts", "OrganizationalUnits",
                                       "Policy",   "Policies", "Targets",
                                       "ParentId", "PolicyId", "NextToken",
                                       NULL};
    int rc = check_keys(im, root, "an AWS Organizations output", keys);
    if (rc)
        return rc;
    const char *parent = get_str(im, root, "ParentId", &rc);
    const char *policy = get_str(im, root, "PolicyId", &rc);
    if (rc)
        return rc;
    if (!parent && o)
        parent = o->parent;
    if (!policy && o)
        policy = o->policy;
    if (parent && !*parent)
        parent = NULL;
    if (policy && !*policy)
        policy = NULL;
    const struct core_node *l;
    if ((l = core_node_get(root, "Roots"))) {
        if ((rc = aws_items(im, l, "Roots")))
            return rc;
        for (size_t i = 0; i < l->n; i++) {
            const char *id = get_str(im, l->items[i], "Id", &rc);
            const char *name = get_str(im, l->items[i], "Name", &rc);
            if (rc)
                return rc;
            if (!id)
                return FAIL(im, l->items[i], "Roots[%zu]: missing 'Id'", i);
            if ((rc = add_node(im->d, id, "root", name, NULL, NULL, NULL, im->err)))
                return rc;
        }
    }
    const char *lists[] = {"OrganizationalUnits", "Accounts"};
    for (int k = 0; k < 2; k++) {
        if (!(l = core_node_get(root, lists[k])))
            continue;
        if ((rc = aws_items(im, l, lists[k])))
            return rc;
        for (size_t i = 0; i < l->n; i++) {
            const struct core_node *it = l->items[i];
            const char *id = get_str(im, it, "Id", &rc), *name = get_str(im, it, "Name", &rc);
            const char *email = get_str(im, it, "Email", &rc);
            const char *status = get_str(im, it, "Status", &rc);
            if (rc)
                return rc;
            if (!id)
                return FAIL(im, it, "%s[%zu]: missing 'Id'", lists[k], i);
            if ((rc = add_node(im->d, id, k == 0 ? "ou" : "account", name, parent, email, status,
                               im->err)))
                return rc;
        }
    }
    if ((l = core_node_get(root, "Policy"))) {
        if (l->kind != CORE_NODE_MAP)
            return FAIL(im, l, "'Policy' must be an object");
        if ((rc = aws_policy(im, l, "Policy")))
            return rc;
    }
    if ((l = core_node_get(root, "Policies"))) {
        if ((rc = aws_items(im, l, "Policies")))
            return rc;
        for (size_t i = 0; i < l->n; i++) {
            char path[48];
            snprintf(path, sizeof(path), "Policies[%zu]", i);
            if ((rc = aws_policy(im, l->items[i], path)))
                return rc;
        }
    }
    if ((l = core_node_get(root, "Targets"))) {
        if (!policy)
            return FAIL(im, l,
                        "list-targets-for-policy output does not name its policy: add "
                        "\"PolicyId\": \"p-...\" at the top of the file or use --policy ID");
        if ((rc = aws_items(im, l, "Targets")))
            return rc;
        if (!(im->d->targets_of = core_strdup(policy)))
            return core_err_set(im->err, CORE_E_NOMEM, "out of memory");
        for (size_t i = 0; i < l->n; i++) {
            const char *id = get_str(im, l->items[i], "TargetId", &rc);
            if (rc)
                return rc;
            if (!id)
                return FAIL(im, l->items[i], "Targets[%zu]: missing 'TargetId'", i);
            if ((rc = add_att(im->d, policy, id, im->err)))
                return rc;
        }
    }
    return 0;
}

/* ---- import: Paved's own shape ---- */

/* Names and ids met in the file, to resolve parent and targets. */
static const struct org_node *resolve(struct imp *im, const char *ref, int *ambiguous)
{
    const struct org_node *hit = NULL;
    *ambiguous = 0;
    for (size_t i = 0; i < im->d->nnodes; i++)
        if (strcmp(im->d->nodes[i].id, ref) == 0)
            return &im->d->nodes[i];
    for (size_t i = 0; i < im->d->nnodes; i++)
        if (strcmp(im->d->nodes[i].name, ref) == 0) {
            if (hit)
                *ambiguous = 1;
            hit = &im->d->nodes[i];
        }
    return hit;
}

struct pending {
    const struct core_node *at; /* the reference's node, for messages */
    size_t node;                /* index of the node whose parent it is */
};

static int paved_accounts(struct imp *im, const struct core_node *list, const char *parent,
                          struct pending **pend, size_t *npend);

static int paved_ous(struct imp *im, const struct core_node *list, const char *parent,
                     struct pending **pend, size_t *npend, int depth)
{
    static const char *const keys[] = {"id", "name", "parent", "ous", "accounts", NULL};
    if (list->kind != CORE_NODE_SEQ)
        return FAIL(im, list, "'ous' must be a list");
    if (depth > ORG_DEPTH_MAX)
        return FAIL(im, list, "OUs nested more than %d levels deep", ORG_DEPTH_MAX);
    for (size_t i = 0; i < list->n; i++) {
        const struct core_node *it = list->items[i];
        int rc = 0;
        if (it->kind != CORE_NODE_MAP)
            return FAIL(im, it, "an OU must be a map {name, id, parent, ous, accounts}");
        if ((rc = check_keys(im, it, "an OU", keys)))
            return rc;
        const char *name = get_str(im, it, "name", &rc), *id = get_str(im, it, "id", &rc);
        const char *p = get_str(im, it, "parent", &rc);
        if (rc)
            return rc;
        if (!name)
            return FAIL(im, it, "an OU needs a 'name'");
        if (p && parent)
            return FAIL(im, core_node_get(it, "parent"),
                        "OU '%s' is nested and names a parent; keep one of the two", name);
        char idbuf[300];
        if (!id) {
            snprintf(idbuf, sizeof(idbuf), "ou-%s", name);
            id = idbuf;
        }
        if ((rc = add_node(im->d, id, "ou", name, parent ? parent : p, NULL, NULL, im->err)))
            return rc;
        if (p) {
            struct pending *np = core_realloc(*pend, (*npend + 1) * sizeof(*np));
            if (!np)
                return core_err_set(im->err, CORE_E_NOMEM, "out of memory");
            *pend = np;
            np[(*npend)++] = (struct pending){core_node_get(it, "parent"), im->d->nnodes - 1};
        }
        char *self = core_strdup(id);
        if (!self)
            return core_err_set(im->err, CORE_E_NOMEM, "out of memory");
        const struct core_node *sub;
        if ((sub = core_node_get(it, "ous")))
            rc = paved_ous(im, sub, self, pend, npend, depth + 1);
        if (!rc && (sub = core_node_get(it, "accounts")))
            rc = paved_accounts(im, sub, self, pend, npend);
        core_free(self);
        if (rc)
            return rc;
    }
    return 0;
}

static int paved_accounts(struct imp *im, const struct core_node *list, const char *parent,
                          struct pending **pend, size_t *npend)
{
    static const char *const keys[] = {"id", "name", "email", "parent", "status", NULL};
    if (list->kind != CORE_NODE_SEQ)
        return FAIL(im, list, "'accounts' must be a list");
    for (size_t i = 0; i < list->n; i++) {
        const struct core_node *it = list->items[i];
        int rc = 0;
        if (it->kind != CORE_NODE_MAP)
            return FAIL(im, it, "an account must be a map {id, name, email, parent}");
        if ((rc = check_keys(im, it, "an account", keys)))
            return rc;
        const char *name = get_str(im, it, "name", &rc), *id = get_str(im, it, "id", &rc);
        const char *p = get_str(im, it, "parent", &rc), *email = get_str(im, it, "email", &rc);
        const char *status = get_str(im, it, "status", &rc);
        if (rc)
            return rc;
        if (!id)
            return FAIL(im, it, "an account needs an 'id' (quote it: id: \"111122223333\")");
        if (p && parent)
            return FAIL(im, core_node_get(it, "parent"),
                        "account '%s' is nested in an OU and names a parent; keep one of the two",
                        id);
        if ((rc = add_node(im->d, id, "account", name, parent ? parent : p, email,
                           status ? status : "ACTIVE", im->err)))
            return rc;
        if (p) {
            struct pending *np = core_realloc(*pend, (*npend + 1) * sizeof(*np));
            if (!np)
                return core_err_set(im->err, CORE_E_NOMEM, "out of memory");
            *pend = np;
            np[(*npend)++] = (struct pending){core_node_get(it, "parent"), im->d->nnodes - 1};
        }
    }
    return 0;
}

static int paved_policies(struct imp *im, const struct core_node *list)
{
    static const char *const keys[] = {"id",       "name",    "type", "description",
                                       "document", "targets", NULL};
    if (list->kind != CORE_NODE_SEQ)
        return FAIL(im, list, "'policies' must be a list");
    for (size_t i = 0; i < list->n; i++) {
        const struct core_node *it = list->items[i];
        int rc = 0;
        if (it->kind != CORE_NODE_MAP)
            return FAIL(im, it, "a policy must be a map {name, type, document, targets}");
        if ((rc = check_keys(im, it, "a policy", keys)))
            return rc;
        const char *name = get_str(im, it, "name", &rc), *id = get_str(im, it, "id", &rc);
        const char *type = get_str(im, it, "type", &rc);
        if (rc)
            return rc;
        if (!name)
            return FAIL(im, it, "a policy needs a 'name'");
        const char *t = policy_type(type);
        if (!t)
            return FAIL(im, core_node_get(it, "type"),
                        "policy '%s': unknown type '%s' (use scp or tag)", name, type);
        const struct core_node *doc = core_node_get(it, "document");
        if (!doc)
            return FAIL(im, it, "policy '%s' needs a 'document'", name);
        struct core_buf b;
        core_buf_init(&b, ORG_POLICY_MAX);
        if (doc->kind == CORE_NODE_SCALAR)
            rc = core_buf_adds(&b, doc->value);
        else
            rc = core_node_to_json(doc, &b);
        if (rc) {
            core_buf_release(&b);
            return FAIL(im, doc, "policy '%s': document over %u bytes", name, ORG_POLICY_MAX);
        }
        char idbuf[300];
        if (!id) {
            snprintf(idbuf, sizeof(idbuf), "p-%s", name);
            id = idbuf;
        }
        if (!(rc = check_document(im, doc, name, t, b.data)))
            rc = add_policy(im->d, id, name, t, b.data, im->err);
        core_buf_release(&b);
        if (rc)
            return rc;
        const struct core_node *tg = core_node_get(it, "targets");
        if (!tg)
            continue;
        if (tg->kind != CORE_NODE_SEQ)
            return FAIL(im, tg, "policy '%s': 'targets' must be a list of names or ids", name);
        for (size_t k = 0; k < tg->n; k++) {
            int amb;
            if (tg->items[k]->kind != CORE_NODE_SCALAR)
                return FAIL(im, tg->items[k], "a target must be a name or an id");
            const struct org_node *n = resolve(im, tg->items[k]->value, &amb);
            if (!n)
                return FAIL(im, tg->items[k],
                            "policy '%s': target '%s' is not the root, an OU or an account of "
                            "this file",
                            name, tg->items[k]->value);
            if (amb)
                return FAIL(im, tg->items[k],
                            "policy '%s': target name '%s' is ambiguous; use the id", name,
                            tg->items[k]->value);
            if ((rc = add_att(im->d, id, n->id, im->err)))
                return rc;
        }
    }
    return 0;
}

static int paved_parse(struct imp *im, const struct core_node *root)
{
    static const char *const keys[] = {"apiVersion", "kind", "root", "ous", "accounts",
                                       "policies", NULL};
    static const char *const root_keys[] = {"id", "name", NULL};
    struct pending *pend = NULL;
    size_t npend = 0;
    int rc = check_keys(im, root, "an organization file (root, ous, accounts, policies)", keys);
    if (rc)
        return rc;
    const char *kind = get_str(im, root, "kind", &rc);
    if (rc)
        return rc;
    if (kind && strcmp(kind, "Organization"))
        return FAIL(im, core_node_get(root, "kind"), "kind '%s' is not 'Organization'", kind);
    im->d->whole = true;
    const char *rid = DEFAULT_ROOT_ID, *rname = "Root";
    const struct core_node *r = core_node_get(root, "root");
    if (r) {
        if (r->kind != CORE_NODE_MAP)
            return FAIL(im, r, "'root' must be a map {id, name}");
        if ((rc = check_keys(im, r, "the root", root_keys)))
            return rc;
        const char *v;
        if ((v = get_str(im, r, "id", &rc)))
            rid = v;
        if ((v = get_str(im, r, "name", &rc)))
            rname = v;
        if (rc)
            return rc;
    }
    if ((rc = add_node(im->d, rid, "root", rname, NULL, NULL, NULL, im->err)))
        return rc;
    const struct core_node *l;
    if ((l = core_node_get(root, "ous")) && (rc = paved_ous(im, l, NULL, &pend, &npend, 1)))
        goto out;
    if ((l = core_node_get(root, "accounts")) && (rc = paved_accounts(im, l, NULL, &pend, &npend)))
        goto out;
    /* ids unique; explicit parents resolved by id or name; the rest hang off the root */
    for (size_t i = 0; i < im->d->nnodes; i++)
        for (size_t k = i + 1; k < im->d->nnodes; k++)
            if (strcmp(im->d->nodes[i].id, im->d->nodes[k].id) == 0) {
                rc = FAIL(im, NULL, "id '%s' is used twice; ids must be unique",
                          im->d->nodes[i].id);
                goto out;
            }
    for (size_t i = 0; i < npend; i++) {
        struct org_node *n = &im->d->nodes[pend[i].node];
        int amb;
        const struct org_node *p = resolve(im, n->parent_id, &amb);
        if (!p || amb || strcmp(p->kind, "account") == 0 || p == n) {
            rc = FAIL(im, pend[i].at,
                      !p    ? "parent '%s' is neither the root nor an OU of this file"
                      : amb ? "parent name '%s' is ambiguous; use the id"
                            : "parent '%s' must be the root or an OU",
                      n->parent_id);
            goto out;
        }
        char *pid = core_strdup(p->id);
        if (!pid) {
            rc = core_err_set(im->err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
        core_free(n->parent_id);
        n->parent_id = pid;
    }
    for (size_t i = 1; i < im->d->nnodes; i++) {
        struct org_node *n = &im->d->nodes[i];
        if (!n->parent_id && !(n->parent_id = core_strdup(rid))) {
            rc = core_err_set(im->err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
    }
    for (size_t i = 1; i < im->d->nnodes; i++) {
        const struct org_node *path[ORG_DEPTH_MAX];
        size_t np;
        struct core_err e = {0};
        if (org_node_path(im->d, &im->d->nodes[i], path, &np, &e)) {
            rc = FAIL(im, NULL, "%s", e.msg);
            goto out;
        }
    }
    if ((l = core_node_get(root, "policies")))
        rc = paved_policies(im, l);
out:
    core_free(pend);
    return rc;
}

int org_import_parse(struct org_data *d, const char *name, const char *text, size_t len,
                     const struct org_import_opts *o, struct core_err *err)
{
    if (len > ORG_FILE_MAX)
        return core_err_set(err, CORE_E_TOO_BIG, "%s: file over %u bytes", name, ORG_FILE_MAX);
    struct core_doc doc;
    int rc = core_doc_parse(&doc, name, text, len, err);
    if (rc)
        return rc;
    struct imp im = {d, name, err};
    const struct core_node *root = doc.root;
    if (!root || root->kind != CORE_NODE_MAP) {
        rc = FAIL(&im, root,
                  "expected an organization file (root, ous, accounts, policies) or an AWS "
                  "Organizations CLI output ({\"Accounts\": [...]}, ...)");
        goto out;
    }
    bool aws = false;
    for (size_t i = 0; i < root->n; i++)
        aws = aws || (root->keys[i][0] >= 'A' && root->keys[i][0] <= 'Z' &&
                      strcmp(root->keys[i], "apiVersion"));
    rc = aws ? aws_parse(&im, root, o) : paved_parse(&im, root);
out:
    core_doc_release(&doc);
    return rc;
}

/* ---- store ---- */

static int exec1(struct store *st, const char *sql, const char *a, struct core_err *err)
{
    struct store_value v[1] = {STORE_V_TEXT(a)};
    return store_exec(st, sql, v, a ? 1 : 0, NULL, err);
}

struct parent_q {
    char *parent;
};

static int parent_row(void *arg, const struct store_row *row)
{
    struct parent_q *q = arg;
    const char *p = store_row_text(row, "parent_id");
    if (p && !q->parent && !(q->parent = core_strdup(p)))
        return CORE_E_NOMEM;
    return 0;
}

/* The parent of a node that an AWS list file names without one: the parent it
 * already has in the store, else the only root. */
static int default_parent(struct store *st, const struct org_data *d, const struct org_node *n,
                          char **out, struct core_err *err)
{
    struct parent_q q = {NULL};
    struct store_value v[1] = {STORE_V_TEXT(n->id)};
    int rc = store_query(st, "SELECT parent_id FROM org_nodes WHERE id = ?", v, 1, parent_row, &q,
                         err);
    if (rc)
        return rc;
    if (q.parent) {
        *out = q.parent;
        return 0;
    }
    const char *root = NULL;
    int nroots = 0;
    for (size_t i = 0; i < d->nnodes; i++)
        if (strcmp(d->nodes[i].kind, "root") == 0) {
            root = d->nodes[i].id;
            nroots++;
        }
    if (!nroots) {
        struct parent_q rq = {NULL};
        int64_t cnt = 0;
        if ((rc = store_query_int(st, "SELECT COUNT(*) FROM org_nodes WHERE kind = 'root'", NULL,
                                  0, &cnt, err)))
            return rc;
        if (cnt == 1 &&
            (rc = store_query(st, "SELECT id AS parent_id FROM org_nodes WHERE kind = 'root'",
                              NULL, 0, parent_row, &rq, err)))
            return rc;
        if (cnt == 1) {
            *out = rq.parent;
            return 0;
        }
        core_free(rq.parent);
    } else if (nroots == 1) {
        return (*out = core_strdup(root)) ? 0 : CORE_E_NOMEM;
    }
    return core_err_set(err, CORE_E_INVAL,
                        "%s '%s' has no parent: add \"ParentId\": \"ou-...\" at the top of the "
                        "file, use --parent ID, or import list-roots first",
                        n->kind, n->id);
}

int org_store_save(struct store *st, const struct org_data *d, struct core_err *err)
{
    char now[32];
    core_time_format(core_now_ms(), now, sizeof(now));
    int rc = store_txn_begin(st, err);
    if (rc)
        return rc;
    if (d->whole && ((rc = exec1(st, "DELETE FROM org_attachments", NULL, err)) ||
                     (rc = exec1(st, "DELETE FROM org_policies", NULL, err)) ||
                     (rc = exec1(st, "DELETE FROM org_nodes", NULL, err))))
        goto out;
    for (size_t i = 0; i < d->nnodes; i++) {
        const struct org_node *n = &d->nodes[i];
        char *parent = NULL;
        if (!n->parent_id && strcmp(n->kind, "root") &&
            (rc = default_parent(st, d, n, &parent, err)))
            goto out;
        struct store_value v[7] = {
            STORE_V_TEXT(n->id),    STORE_V_TEXT(n->kind),
            STORE_V_TEXT(n->name),  STORE_V_TEXT(parent ? parent : n->parent_id),
            STORE_V_TEXT(n->email), STORE_V_TEXT(n->status),
            STORE_V_TEXT(now)};
        if (!(rc = exec1(st, "DELETE FROM org_nodes WHERE id = ?", n->id, err)))
            rc = store_exec(st,
                            "INSERT INTO org_nodes (id, kind, name, parent_id, email, status, "
                            "imported_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            v, 7, NULL, err);
        core_free(parent);
        if (rc)
            goto out;
    }
    for (size_t i = 0; i < d->npolicies; i++) {
        const struct org_policy_rec *p = &d->policies[i];
        struct store_value v[5] = {STORE_V_TEXT(p->id), STORE_V_TEXT(p->name),
                                   STORE_V_TEXT(p->type), STORE_V_TEXT(p->document),
                                   STORE_V_TEXT(now)};
        if ((rc = exec1(st, "DELETE FROM org_policies WHERE id = ?", p->id, err)) ||
            (rc = store_exec(st,
                             "INSERT INTO org_policies (id, name, type, document, updated_at) "
                             "VALUES (?, ?, ?, ?, ?)",
                             v, 5, NULL, err)))
            goto out;
    }
    if (d->targets_of &&
        (rc = exec1(st, "DELETE FROM org_attachments WHERE policy_id = ?", d->targets_of, err)))
        goto out;
    for (size_t i = 0; i < d->natt; i++) {
        struct store_value v[2] = {STORE_V_TEXT(d->att[i].policy_id),
                                   STORE_V_TEXT(d->att[i].target_id)};
        if ((rc = store_exec(st,
                             "DELETE FROM org_attachments WHERE policy_id = ? AND target_id = ?",
                             v, 2, NULL, err)) ||
            (rc = store_exec(st,
                             "INSERT INTO org_attachments (policy_id, target_id) VALUES (?, ?)",
                             v, 2, NULL, err)))
            goto out;
    }
    rc = store_txn_commit(st, err);
    return rc;
out:
    store_txn_rollback(st);
    return rc;
}

static int node_row(void *arg, const struct store_row *row)
{
    struct org_data *d = arg;
    return add_node(d, store_row_text(row, "id"), store_row_text(row, "kind"),
                    store_row_text(row, "name"), store_row_text(row, "parent_id"),
                    store_row_text(row, "email"), store_row_text(row, "status"), NULL);
}

static int policy_row(void *arg, const struct store_row *row)
{
    struct org_data *d = arg;
    return add_policy(d, store_row_text(row, "id"), store_row_text(row, "name"),
                      store_row_text(row, "type"), store_row_text(row, "document"), NULL);
}

static int att_row(void *arg, const struct store_row *row)
{
    struct org_data *d = arg;
    return add_att(d, store_row_text(row, "policy_id"), store_row_text(row, "target_id"), NULL);
}

int org_store_load(struct store *st, struct org_data *d, struct core_err *err)
{
    memset(d, 0, sizeof(*d));
    int rc;
    if ((rc = store_query(st,
                          "SELECT id, kind, name, parent_id, email, status FROM org_nodes "
                          "ORDER BY kind DESC, name, id",
                          NULL, 0, node_row, d, err)) ||
        (rc = store_query(st, "SELECT id, name, type, document FROM org_policies ORDER BY name, id",
                          NULL, 0, policy_row, d, err)) ||
        (rc = store_query(st,
                          "SELECT policy_id, target_id FROM org_attachments "
                          "ORDER BY target_id, policy_id",
                          NULL, 0, att_row, d, err))) {
        if (rc == CORE_E_NOMEM)
            core_err_set(err, rc, "out of memory loading the organization");
        org_data_release(d);
        return rc;
    }
    return 0;
}

/* ---- queries ---- */

const struct org_node *org_node_find(const struct org_data *d, const char *id_or_name)
{
    for (size_t i = 0; i < d->nnodes; i++)
        if (strcmp(d->nodes[i].id, id_or_name) == 0)
            return &d->nodes[i];
    for (size_t i = 0; i < d->nnodes; i++)
        if (strcmp(d->nodes[i].name, id_or_name) == 0)
            return &d->nodes[i];
    return NULL;
}

static const struct org_node *by_id(const struct org_data *d, const char *id)
{
    for (size_t i = 0; id && i < d->nnodes; i++)
        if (strcmp(d->nodes[i].id, id) == 0)
            return &d->nodes[i];
    return NULL;
}

int org_node_path(const struct org_data *d, const struct org_node *n,
                  const struct org_node *path[ORG_DEPTH_MAX], size_t *npath, struct core_err *err)
{
    const struct org_node *up[ORG_DEPTH_MAX];
    size_t k = 0;
    const struct org_node *cur = n;
    while (cur) {
        if (k == ORG_DEPTH_MAX)
            return core_err_set(err, CORE_E_INVAL,
                                "'%s' is more than %d levels below a root (or its parents form "
                                "a cycle)",
                                n->id, ORG_DEPTH_MAX);
        up[k++] = cur;
        if (!cur->parent_id)
            break;
        const struct org_node *p = by_id(d, cur->parent_id);
        if (!p)
            return core_err_set(err, CORE_E_INVAL,
                                "the parent '%s' of '%s' is not in the organization; import it "
                                "(list-roots, list-organizational-units-for-parent)",
                                cur->parent_id, cur->id);
        cur = p;
    }
    if (strcmp(up[k - 1]->kind, "root"))
        return core_err_set(err, CORE_E_INVAL, "'%s' does not lead up to a root", n->id);
    for (size_t i = 0; i < k; i++)
        path[i] = up[k - 1 - i];
    *npath = k;
    return 0;
}

static json_t *node_ref(const struct org_node *n)
{
    return json_pack("{s:s, s:s, s:s}", "kind", n->kind, "id", n->id, "name", n->name);
}

static json_t *attached_json(const struct org_data *d, const char *target)
{
    json_t *a = json_array();
    for (size_t i = 0; i < d->natt; i++) {
        if (strcmp(d->att[i].target_id, target))
            continue;
        const struct org_policy_rec *p = NULL;
        for (size_t k = 0; k < d->npolicies && !p; k++)
            if (strcmp(d->policies[k].id, d->att[i].policy_id) == 0)
                p = &d->policies[k];
        json_array_append_new(a, p ? json_pack("{s:s, s:s, s:s}", "id", p->id, "name", p->name,
                                               "type", p->type)
                                   : json_pack("{s:s, s:n, s:n}", "id", d->att[i].policy_id,
                                               "name", "type"));
    }
    return a;
}

static json_t *tree_node(const struct org_data *d, const struct org_node *n, int depth)
{
    json_t *o = node_ref(n);
    if (n->email)
        json_object_set_new(o, "email", json_string(n->email));
    if (n->status)
        json_object_set_new(o, "status", json_string(n->status));
    json_object_set_new(o, "policies", attached_json(d, n->id));
    json_t *kids = json_array();
    for (int pass = 0; pass < 2 && depth < ORG_DEPTH_MAX; pass++)
        for (size_t i = 0; i < d->nnodes; i++) {
            const struct org_node *c = &d->nodes[i];
            /* OUs first, then accounts, each in name order (the load order) */
            if (c == n || !c->parent_id || strcmp(c->parent_id, n->id) ||
                (strcmp(c->kind, "ou") == 0) != (pass == 0))
                continue;
            json_array_append_new(kids, tree_node(d, c, depth + 1));
        }
    json_object_set_new(o, "children", kids);
    return o;
}

json_t *org_tree_json(const struct org_data *d)
{
    json_t *roots = json_array(), *orphans = json_array();
    for (size_t i = 0; i < d->nnodes; i++) {
        const struct org_node *n = &d->nodes[i];
        if (strcmp(n->kind, "root") == 0)
            json_array_append_new(roots, tree_node(d, n, 1));
        else if (!by_id(d, n->parent_id))
            json_array_append_new(orphans, node_ref(n));
    }
    return json_pack("{s:o, s:o}", "roots", roots, "orphans", orphans);
}

/* ---- can ---- */

static json_t *statement_json(const struct org_level *lv, const struct org_hit *h)
{
    const struct org_attached *a = &lv->policies[h->policy];
    const char *sid = org_policy_sid(a->policy, h->statement);
    return json_pack("{s:s, s:s, s:s?, s:I, s:s, s:{s:s, s:s, s:s}}", "policy", a->name,
                     "policy_id", a->id, "sid", sid, "index", (json_int_t)h->statement, "effect",
                     org_policy_effect(a->policy, h->statement) == ORG_ALLOW ? "Allow" : "Deny",
                     "level", "kind", lv->kind, "id", lv->id, "name", lv->name);
}

static void stmt_name(const struct org_level *lv, const struct org_hit *h, char *out, size_t sz)
{
    const struct org_attached *a = &lv->policies[h->policy];
    const char *sid = org_policy_sid(a->policy, h->statement);
    if (sid && *sid)
        snprintf(out, sz, "statement '%s' (#%zu) of policy '%s' (%s) attached to %s '%s' (%s)",
                 sid, h->statement, a->name, a->id, lv->kind, lv->name, lv->id);
    else
        snprintf(out, sz, "statement #%zu of policy '%s' (%s) attached to %s '%s' (%s)",
                 h->statement, a->name, a->id, lv->kind, lv->name, lv->id);
}

int org_can(const struct org_data *d, const char *account, const struct org_request *req,
            json_t **out, struct core_err *err)
{
    *out = NULL;
    const struct org_node *acct = org_node_find(d, account);
    if (!acct || strcmp(acct->kind, "account"))
        return core_err_set(err, CORE_E_NOTFOUND,
                            "no account '%s' in the organization (see 'pave org tree')", account);
    const struct org_node *path[ORG_DEPTH_MAX];
    size_t np = 0;
    int rc = org_node_path(d, acct, path, &np, err);
    if (rc)
        return rc;
    struct org_policy **compiled = core_calloc(d->npolicies + 1, sizeof(*compiled));
    struct org_attached *att = core_calloc(d->natt + 1, sizeof(*att));
    struct org_level levels[ORG_DEPTH_MAX];
    if (!compiled || !att) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    size_t used = 0;
    for (size_t l = 0; l < np; l++) {
        levels[l] = (struct org_level){path[l]->kind, path[l]->id, path[l]->name, att + used, 0};
        /* policies in name order: d->policies is loaded sorted */
        for (size_t p = 0; p < d->npolicies; p++) {
            const struct org_policy_rec *pr = &d->policies[p];
            if (strcmp(pr->type, "scp"))
                continue;
            bool attached = false;
            for (size_t a = 0; a < d->natt && !attached; a++)
                attached = strcmp(d->att[a].policy_id, pr->id) == 0 &&
                           strcmp(d->att[a].target_id, path[l]->id) == 0;
            if (!attached)
                continue;
            if (!compiled[p]) {
                struct core_err e = {0};
                if (!(compiled[p] = org_policy_parse(pr->document, strlen(pr->document), &e))) {
                    rc = core_err_set(err, e.code ? e.code : CORE_E_INVAL,
                                      "stored policy '%s' (%s) does not compile: %s; import it "
                                      "again",
                                      pr->name, pr->id, e.msg);
                    goto out;
                }
            }
            att[used++] = (struct org_attached){pr->id, pr->name, compiled[p]};
            levels[l].npolicies++;
        }
    }
    struct org_decision dec;
    org_scp_decide(levels, np, req, &dec);
    json_t *o = json_object(), *lvs = json_array();
    char why[900], sname[600];
    json_object_set_new(o, "decision", json_string(dec.allowed ? "allow" : "deny"));
    json_object_set_new(o, "account", json_pack("{s:s, s:s}", "id", acct->id, "name", acct->name));
    json_object_set_new(o, "action", json_string(req->action));
    json_object_set_new(o, "resource", json_string(req->resource ? req->resource : "*"));
    if (dec.deny.level >= 0) {
        stmt_name(&levels[dec.deny.level], &dec.deny, sname, sizeof(sname));
        snprintf(why, sizeof(why), "explicitly denied by %s", sname);
        json_object_set_new(o, "statement", statement_json(&levels[dec.deny.level], &dec.deny));
    } else if (dec.missing_level >= 0) {
        const struct org_level *lv = &levels[dec.missing_level];
        if (lv->npolicies == 0)
            snprintf(why, sizeof(why),
                     "implicitly denied: no service control policy is attached to %s '%s' (%s), "
                     "so nothing is allowed there",
                     lv->kind, lv->name, lv->id);
        else
            snprintf(why, sizeof(why),
                     "implicitly denied: no policy attached to %s '%s' (%s) allows '%s'",
                     lv->kind, lv->name, lv->id, req->action);
        json_object_set_new(o, "statement", json_null());
        json_object_set_new(o, "missing_level", json_pack("{s:s, s:s, s:s}", "kind", lv->kind,
                                                          "id", lv->id, "name", lv->name));
    } else {
        stmt_name(&levels[np - 1], &dec.allow[np - 1], sname, sizeof(sname));
        snprintf(why, sizeof(why), "allowed at every level from the root down; at the account by %s",
                 sname);
        json_object_set_new(o, "statement", statement_json(&levels[np - 1], &dec.allow[np - 1]));
    }
    json_object_set_new(o, "reason", json_string(why));
    for (size_t l = 0; l < np; l++) {
        json_t *lj = json_pack("{s:s, s:s, s:s}", "kind", levels[l].kind, "id", levels[l].id,
                               "name", levels[l].name);
        json_t *pl = json_array();
        for (size_t p = 0; p < levels[l].npolicies; p++)
            json_array_append_new(pl, json_pack("{s:s, s:s}", "id", levels[l].policies[p].id,
                                                "name", levels[l].policies[p].name));
        json_object_set_new(lj, "policies", pl);
        json_object_set_new(lj, "allowed_by",
                            dec.allow[l].level >= 0 ? statement_json(&levels[l], &dec.allow[l])
                                                    : json_null());
        json_array_append_new(lvs, lj);
    }
    json_object_set_new(o, "levels", lvs);
    *out = o;
out:
    for (size_t p = 0; compiled && p < d->npolicies; p++)
        org_policy_free(compiled[p]);
    core_free(compiled);
    core_free(att);
    return rc;
}

extern const char cloud_demo_org_yaml[];

int cloud_org_demo_load(struct store *st, struct core_err *err)
{
    int64_t have = 0;
    int rc = store_query_int(st, "SELECT COUNT(*) FROM org_nodes", NULL, 0, &have, err);
    if (rc || have)
        return rc; /* only into an empty store: never over a real organization */
    struct org_data d = {0};
    rc = org_import_parse(&d, "demo/org.yaml", cloud_demo_org_yaml, strlen(cloud_demo_org_yaml),
                          NULL, err);
    if (!rc)
        rc = org_store_save(st, &d, err);
    if (!rc)
        log_info("cloud", "demo organization loaded", LOG_INT("nodes", (int64_t)d.nnodes));
    org_data_release(&d);
    return rc;
}
