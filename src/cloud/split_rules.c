/* Split rules, the pure half (no store): spreading an amount over shares
 * exactly to the nano-unit, and validating a split rule document into its
 * canonical JSON. Separate from analysis.c so the fuzzer
 * (fuzz/fuzz_split_rule.c) can drive the parser alone. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloud/cloud.h"

#define RULE_DOC_MAX (64u << 10)

/* ---- splitting an amount ---- */

int cloud_split_amount(int64_t amount, const int64_t *weights, size_t n, int64_t *out)
{
    if (n == 0)
        return CORE_E_INVAL;
    __int128 total = 0;
    for (size_t i = 0; weights && i < n; i++) {
        if (weights[i] < 0)
            return CORE_E_INVAL;
        total += weights[i];
    }
    bool even = total == 0;
    if (even)
        total = (__int128)n;
    bool neg = amount < 0;
    __int128 a = neg ? -(__int128)amount : (__int128)amount;
    __int128 given = 0;
    for (size_t i = 0; i < n; i++) {
        __int128 w = even ? 1 : weights[i];
        out[i] = (int64_t)(a * w / total);
        given += out[i];
    }
    /* The floors leave fewer than n nano-units: hand them out by largest
     * remainder so the shares sum to the amount exactly. */
    for (__int128 left = a - given; left > 0; left--) {
        size_t best = n;
        __int128 best_rem = -1;
        for (size_t i = 0; i < n; i++) {
            __int128 w = even ? 1 : weights[i];
            __int128 rem = a * w - (__int128)out[i] * total;
            if (rem > 0 && rem > best_rem) {
                best_rem = rem;
                best = i;
            }
        }
        if (best == n)
            break;
        out[best]++;
    }
    if (neg)
        for (size_t i = 0; i < n; i++)
            out[i] = -out[i];
    return 0;
}

/* ---- split rules ---- */

enum split_method { SPLIT_EVEN = 0, SPLIT_PROPORTIONAL, SPLIT_FIXED };
static const char *const method_names[] = {"even", "proportional", "fixed"};

static int node_err(struct core_err *err, const struct core_node *n, const char *msg,
                    const char *what)
{
    return core_err_set(err, CORE_E_INVAL, "split rule:%d:%d: %s%s%s%s", n ? n->line : 1,
                        n ? n->col : 1, msg, what ? " '" : "", what ? what : "", what ? "'" : "");
}

/* A scalar or a sequence of scalars as a JSON array of strings. */
static int str_list(const struct core_node *n, json_t *arr, const char *key, struct core_err *err)
{
    if (n->kind == CORE_NODE_SCALAR) {
        if (!*n->value || strlen(n->value) > 200)
            return node_err(err, n, "empty or too long value in", key);
        return json_array_append_new(arr, json_string(n->value)) ? CORE_E_NOMEM : 0;
    }
    if (n->kind != CORE_NODE_SEQ || n->n == 0 || n->n > 256)
        return node_err(err, n, "want a value or a list of 1 to 256 values for", key);
    for (size_t i = 0; i < n->n; i++) {
        int rc = str_list(n->items[i], arr, key, err);
        if (rc)
            return rc;
        if (n->items[i]->kind != CORE_NODE_SCALAR)
            return node_err(err, n->items[i], "nested list in", key);
    }
    return 0;
}

int cloud_split_rule_check(const char *text, size_t len, char **json, char name[64],
                           struct core_err *err)
{
    struct core_doc doc = {0};
    json_t *o = NULL;
    int rc;
    *json = NULL;
    if (len > RULE_DOC_MAX)
        return core_err_set(err, CORE_E_TOO_BIG, "split rule over %u bytes", RULE_DOC_MAX);
    if ((rc = core_doc_parse(&doc, "split rule", text, len, err)))
        return rc;
    const struct core_node *root = doc.root;
    if (!root || root->kind != CORE_NODE_MAP) {
        rc = node_err(err, root, "a split rule is a map with name, match, method", NULL);
        goto out;
    }
    static const char *const known[] = {"name",  "match",   "method",
                                        "teams", "weights", "description"};
    for (size_t i = 0; i < root->n; i++) {
        bool ok = false;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            ok = ok || strcmp(root->keys[i], known[k]) == 0;
        if (!ok) {
            rc = node_err(
                err, root->key_nodes[i],
                "unknown key (name, match, method, teams, weights, description):", root->keys[i]);
            goto out;
        }
    }
    const struct core_node *nm = core_node_get(root, "name");
    const struct core_node *match = core_node_get(root, "match");
    const struct core_node *meth = core_node_get(root, "method");
    const struct core_node *teams = core_node_get(root, "teams");
    const struct core_node *weights = core_node_get(root, "weights");
    const struct core_node *desc = core_node_get(root, "description");
    if (!nm || nm->kind != CORE_NODE_SCALAR || !*nm->value || strlen(nm->value) > 63 ||
        strspn(nm->value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01"
                          "23456789-_.") != strlen(nm->value)) {
        rc =
            node_err(err, nm ? nm : root, "name wants 1-63 letters, digits, '-', '_' or '.'", NULL);
        goto out;
    }
    if (!(o = json_object())) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    json_object_set_new(o, "name", json_string(nm->value));
    if (desc && desc->kind == CORE_NODE_SCALAR)
        json_object_set_new(o, "description", json_string(desc->value));
    if (!match || match->kind != CORE_NODE_MAP || match->n == 0) {
        rc = node_err(err, match ? match : root, "match wants a map of team and/or service", NULL);
        goto out;
    }
    json_t *jm = json_object();
    json_object_set_new(o, "match", jm);
    for (size_t i = 0; i < match->n; i++) {
        const char *k = match->keys[i];
        if (strcmp(k, "team") != 0 && strcmp(k, "service") != 0) {
            rc = node_err(err, match->key_nodes[i], "match key must be team or service, not", k);
            goto out;
        }
        json_t *arr = json_array();
        json_object_set_new(jm, k, arr);
        if ((rc = str_list(match->items[i], arr, k, err)))
            goto out;
    }
    int method = -1;
    for (int m = 0; meth && meth->kind == CORE_NODE_SCALAR && m < 3; m++)
        if (strcmp(meth->value, method_names[m]) == 0)
            method = m;
    if (method < 0) {
        rc = node_err(err, meth ? meth : root, "method must be even, proportional or fixed", NULL);
        goto out;
    }
    json_object_set_new(o, "method", json_string(method_names[method]));
    /* a fixed split names its teams once, in weights: the canonical form has
     * no teams list, so it checks again as the same rule */
    json_t *jt = json_array(), *jw = json_object();
    if (method == SPLIT_FIXED)
        json_decref(jt);
    else
        json_object_set_new(o, "teams", jt);
    if (method == SPLIT_FIXED) {
        if (teams) {
            rc = node_err(err, teams, "a fixed split names its teams in weights, not teams", NULL);
            json_decref(jw);
            goto out;
        }
        json_object_set_new(o, "weights", jw);
        if (!weights || weights->kind != CORE_NODE_MAP || weights->n == 0 || weights->n > 256) {
            rc = node_err(err, weights ? weights : root,
                          "a fixed split wants weights: {team: number, ...}", NULL);
            goto out;
        }
        for (size_t i = 0; i < weights->n; i++) {
            int64_t w;
            if (!core_scalar_is_int(weights->items[i], &w) || w < 0 || w > 1000000) {
                rc = node_err(err, weights->items[i], "weight must be an integer 0-1000000 for",
                              weights->keys[i]);
                goto out;
            }
            if (!*weights->keys[i] || strlen(weights->keys[i]) > 200) {
                rc = node_err(err, weights->key_nodes[i], "bad team name in weights", NULL);
                goto out;
            }
            json_object_set_new(jw, weights->keys[i], json_integer(w));
        }
    } else {
        json_decref(jw);
        if (weights) {
            rc = node_err(err, weights, "weights only go with method fixed", NULL);
            goto out;
        }
        if (!teams) {
            rc = node_err(err, root, "the rule needs teams: [team, ...] to spread over", NULL);
            goto out;
        }
        if ((rc = str_list(teams, jt, "teams", err)))
            goto out;
    }
    if (!(*json = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS))) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    snprintf(name, 64, "%s", nm->value);
out:
    json_decref(o);
    core_doc_release(&doc);
    return rc;
}
