/*
 * The ACME server (RFC 8555) under /acme/ on the platform's HTTP server. See pki.h for the
 * contract and docs/pki.md ("ACME") for the behaviour.
 *
 * State lives in the store (acme_accounts, acme_orders, acme_authzs, acme_challenges,
 * acme_certs, acme_nonces), so requests may land on any event-loop thread. http-01 validations
 * run on a small pool of worker threads fed by a bounded queue; a challenge POST only marks the
 * challenge "processing" and queues it. Finalize issues synchronously through pki_issue_csr().
 */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pki/acme_int.h"
#include "pki/pki.h"
#include "store/store.h"

#define ACME_QUEUE_MAX 1024
#define ACME_WORKERS_MAX 16
#define ACME_NONCE_TTL_MS (30 * 60 * 1000)
#define ACME_NONCES_MAX 10000
#define ACME_ORDER_TTL_MS ((int64_t)7 * 24 * 3600 * 1000)
#define ACME_CHALLENGE_BODY_MAX 8192
#define ACME_ERR "urn:ietf:params:acme:error:"

struct acme {
    struct pki *pki;
    struct store *st;
    int http_port;
    char *platform_domain;
    char **loopback;
    size_t nloopback;
    acme_name_allowed_fn name_allowed;
    void *name_allowed_arg;
    int64_t lifetime_ms;
    char *base_url;
    /* validation queue: challenge ids, guarded by lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *queue[ACME_QUEUE_MAX];
    size_t qhead, qlen;
    bool stopping;
    pthread_t workers[ACME_WORKERS_MAX];
    int nworkers;
    unsigned nonce_count; /* nonces issued, to clean up every so often (under lock) */
};

/* One request's working state. */
struct ctx {
    struct acme *a;
    const struct acme_request *req;
    struct acme_response *resp;
    char base[600]; /* "http://host:port/acme" */
    struct jws jws;
    json_t *payload;    /* parsed payload (NULL for POST-as-GET) */
    int64_t acct_id;    /* authenticated account (kid), 0 with jwk */
    EVP_PKEY *key;      /* the key the request was verified with */
    char acct_name[64]; /* "acme:account/<id>" */
};

/* ---- responses ---- */

static void add_header(struct acme_response *r, const char *name, const char *fmt, ...)
    CORE_PRINTF(3, 4);
static void add_header(struct acme_response *r, const char *name, const char *fmt, ...)
{
    if (r->nheaders >= ACME_MAX_HEADERS)
        return;
    snprintf(r->headers[r->nheaders].name, sizeof(r->headers[0].name), "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->headers[r->nheaders].value, sizeof(r->headers[0].value), fmt, ap);
    va_end(ap);
    r->nheaders++;
}

static void reply_json(struct ctx *c, int status, json_t *body)
{
    c->resp->status = status;
    core_buf_clear(&c->resp->body);
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s) {
        c->resp->status = 500;
        return;
    }
    core_buf_adds(&c->resp->body, s);
    free(s);
    add_header(c->resp, "Content-Type", "application/json");
}

/* An RFC 7807 problem document with an ACME error type. returns: CORE_E_INVAL (to chain). */
static int problem(struct ctx *c, int status, const char *type, const char *detail)
{
    json_t *o = json_pack("{s:s+, s:s, s:i}", "type", ACME_ERR, type, "detail",
                          detail ? detail : type, "status", status);
    if (o && strcmp(type, "badSignatureAlgorithm") == 0)
        json_object_set_new(o, "algorithms", json_pack("[s,s]", "ES256", "RS256"));
    c->resp->status = status;
    core_buf_clear(&c->resp->body);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s)
        core_buf_adds(&c->resp->body, s);
    free(s);
    add_header(c->resp, "Content-Type", "application/problem+json");
    return CORE_E_INVAL;
}

/* Status for a problem type raised by the JWS layer. */
static int problem_status(const char *type)
{
    if (strcmp(type, "unauthorized") == 0 || strcmp(type, "orderNotReady") == 0)
        return 403;
    if (strcmp(type, "serverInternal") == 0)
        return 500;
    return 400;
}

static void ts(int64_t ms, char out[40])
{
    core_time_format(ms, out, 40);
}

/* ---- store helpers ---- */

struct rows {
    json_t *arr;
    int max;
};

static int collect_row(void *arg, const struct store_row *row)
{
    struct rows *rs = arg;
    json_t *o = json_object();
    if (!o)
        return CORE_E_NOMEM;
    for (size_t i = 0; i < row->ncols; i++) {
        const struct store_value *v = &row->vals[i];
        json_t *x = v->type == STORE_INT    ? json_integer(v->i)
                    : v->type == STORE_TEXT ? json_string(v->s ? v->s : "")
                                            : json_null();
        json_object_set_new(o, row->names[i], x);
    }
    json_array_append_new(rs->arr, o);
    return rs->max && (int)json_array_size(rs->arr) >= rs->max ? 1 : 0;
}

/* Rows as an array of objects (max 0: all). returns: owned by caller, or NULL on error. */
static json_t *q_rows(struct acme *a, const char *sql, const struct store_value *p, size_t np,
                      int max)
{
    struct rows rs = {json_array(), max};
    struct core_err err = {0};
    if (!rs.arr)
        return NULL;
    int rc = store_query(a->st, sql, p, np, collect_row, &rs, &err);
    if (rc < 0) {
        log_warn("acme", "store query failed", LOG_STR("error", err.msg));
        json_decref(rs.arr);
        return NULL;
    }
    return rs.arr;
}

/* First row as an object; *found says whether there was one. returns: 0 or an error. */
static int q_one(struct acme *a, const char *sql, const struct store_value *p, size_t np,
                 json_t **row)
{
    json_t *arr = q_rows(a, sql, p, np, 1);
    if (!arr)
        return CORE_E_IO;
    *row = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return 0;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int64_t jint(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static int exec(struct acme *a, const char *sql, const struct store_value *p, size_t np,
                int64_t *changes)
{
    struct core_err err = {0};
    int rc = store_exec(a->st, sql, p, np, changes, &err);
    if (rc)
        log_warn("acme", "store write failed", LOG_STR("error", err.msg));
    return rc;
}

static int random_id(char *out, size_t bytes)
{
    return core_random_hex(out, bytes);
}

/* A base64url random token of 32 bytes (43 characters). */
static int random_token(char out[48])
{
    unsigned char raw[32];
    struct core_buf b;
    if (core_random_bytes(raw, sizeof(raw)))
        return CORE_E_IO;
    core_buf_init(&b, 64);
    int rc = jws_b64url_encode(raw, sizeof(raw), &b);
    if (!rc)
        snprintf(out, 48, "%s", b.data);
    core_buf_release(&b);
    return rc;
}

/* ---- nonces ---- */

static void issue_nonce(struct ctx *c)
{
    struct acme *a = c->a;
    /* 128 random bits, canonical base64url: clients such as certbot decode and re-encode it */
    unsigned char raw[16];
    char nonce[48];
    struct core_buf nb;
    if (core_random_bytes(raw, sizeof(raw)))
        return;
    core_buf_init(&nb, 32);
    int erc = jws_b64url_encode(raw, sizeof(raw), &nb);
    snprintf(nonce, sizeof(nonce), "%s", nb.data);
    core_buf_release(&nb);
    if (erc)
        return;
    int64_t now = core_now_ms();
    struct store_value p[] = {STORE_V_TEXT(nonce), STORE_V_INT(now + ACME_NONCE_TTL_MS)};
    if (exec(a, "INSERT INTO acme_nonces (nonce, expires_ms) VALUES (?, ?)", p, 2, NULL))
        return;
    add_header(c->resp, "Replay-Nonce", "%s", nonce);
    pthread_mutex_lock(&a->lock);
    bool sweep = (++a->nonce_count % 256) == 0;
    pthread_mutex_unlock(&a->lock);
    if (sweep) {
        /* bounded: expired nonces go, and beyond ACME_NONCES_MAX the oldest go */
        struct store_value q[] = {STORE_V_INT(now)};
        exec(a, "DELETE FROM acme_nonces WHERE expires_ms < ?", q, 1, NULL);
        struct store_value m[] = {STORE_V_INT(ACME_NONCES_MAX)};
        exec(a, "DELETE FROM acme_nonces WHERE rowid <= (SELECT MAX(rowid) FROM acme_nonces) - ?",
             m, 1, NULL);
    }
}

/* Consumes a nonce. returns: true when it was issued here, unused and not expired. */
static bool use_nonce(struct acme *a, const char *nonce)
{
    int64_t changes = 0;
    struct store_value p[] = {STORE_V_TEXT(nonce), STORE_V_INT(core_now_ms())};
    if (strlen(nonce) > 64 ||
        exec(a, "DELETE FROM acme_nonces WHERE nonce = ? AND expires_ms >= ?", p, 2, &changes))
        return false;
    return changes == 1;
}

/* ---- policy ---- */

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n > s + 1 && name[n - s - 1] == '.' && strcmp(name + n - s, suffix) == 0;
}

bool acme_default_name_allowed(void *arg, const char *account, const char *name)
{
    const char *domain = arg;
    if (has_suffix(name, "localhost") || has_suffix(name, "internal"))
        return true;
    return domain && *domain && has_suffix(name, domain);
}

static bool is_loopback_name(const struct acme *a, const char *name)
{
    if (has_suffix(name, "localhost") || strcmp(name, "localhost") == 0)
        return true;
    for (size_t i = 0; i < a->nloopback; i++)
        if (strcmp(a->loopback[i], name) == 0)
            return true;
    return false;
}

/* ---- objects ---- */

static json_t *challenge_json(struct ctx *c, const json_t *ch)
{
    json_t *o =
        json_pack("{s:s, s:s++, s:s, s:s}", "type", jstr(ch, "type"), "url", c->base, "/chall/",
                  jstr(ch, "id"), "token", jstr(ch, "token"), "status", jstr(ch, "status"));
    if (o && jstr(ch, "validated"))
        json_object_set_new(o, "validated", json_string(jstr(ch, "validated")));
    if (o && jstr(ch, "error")) {
        json_t *e = json_loads(jstr(ch, "error"), 0, NULL);
        if (e)
            json_object_set_new(o, "error", e);
    }
    return o;
}

static json_t *authz_json(struct ctx *c, const json_t *az)
{
    char exp[40];
    ts(jint(az, "expires_ms"), exp);
    struct store_value p[] = {STORE_V_TEXT(jstr(az, "id"))};
    json_t *chs = q_rows(c->a,
                         "SELECT id, type, token, status, validated, error FROM acme_challenges "
                         "WHERE authz_id = ? ORDER BY rowid",
                         p, 1, 0);
    json_t *arr = json_array();
    size_t i;
    json_t *ch;
    json_array_foreach(chs, i, ch) json_array_append_new(arr, challenge_json(c, ch));
    json_decref(chs);
    return json_pack("{s:{s:s, s:s}, s:s, s:s, s:o}", "identifier", "type", "dns", "value",
                     jstr(az, "identifier"), "status", jstr(az, "status"), "expires", exp,
                     "challenges", arr);
}

static json_t *order_json(struct ctx *c, const json_t *od)
{
    char exp[40];
    ts(jint(od, "expires_ms"), exp);
    json_t *ids = json_loads(jstr(od, "identifiers"), 0, NULL);
    json_t *idents = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
        json_array_append_new(idents, json_pack("{s:s, s:O}", "type", "dns", "value", v));
    json_decref(ids);
    struct store_value p[] = {STORE_V_TEXT(jstr(od, "id"))};
    json_t *azs =
        q_rows(c->a, "SELECT id FROM acme_authzs WHERE order_id = ? ORDER BY rowid", p, 1, 0);
    json_t *urls = json_array();
    json_array_foreach(azs, i, v)
        json_array_append_new(urls, json_pack("s++", c->base, "/authz/", jstr(v, "id")));
    json_decref(azs);
    json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:s+++}", "status", jstr(od, "status"), "expires",
                          exp, "identifiers", idents, "authorizations", urls, "finalize", c->base,
                          "/order/", jstr(od, "id"), "/finalize");
    if (o && jstr(od, "cert_id"))
        json_object_set_new(o, "certificate",
                            json_pack("s++", c->base, "/cert/", jstr(od, "cert_id")));
    if (o && jstr(od, "error")) {
        json_t *e = json_loads(jstr(od, "error"), 0, NULL);
        if (e)
            json_object_set_new(o, "error", e);
    }
    return o;
}

static json_t *load_order(struct ctx *c, const char *id)
{
    json_t *od = NULL;
    struct store_value p[] = {STORE_V_TEXT(id)};
    q_one(c->a,
          "SELECT id, account_id, status, identifiers, expires_ms, error, cert_id FROM "
          "acme_orders WHERE id = ?",
          p, 1, &od);
    /* an order whose authorizations were never completed expires */
    if (od && jint(od, "expires_ms") < core_now_ms()) {
        const char *s = jstr(od, "status");
        if (strcmp(s, "pending") == 0 || strcmp(s, "ready") == 0)
            json_object_set_new(od, "status", json_string("invalid"));
    }
    return od;
}

/* Recomputes a pending order's status from its authorizations (after a validation). */
static void order_refresh(struct acme *a, const char *order_id)
{
    struct store_value p[] = {STORE_V_TEXT(order_id)};
    int64_t total = 0, valid = 0, invalid = 0;
    struct core_err err = {0};
    store_query_int(a->st, "SELECT COUNT(*) FROM acme_authzs WHERE order_id = ?", p, 1, &total,
                    &err);
    store_query_int(a->st,
                    "SELECT COUNT(*) FROM acme_authzs WHERE order_id = ? AND status = 'valid'", p,
                    1, &valid, &err);
    store_query_int(a->st,
                    "SELECT COUNT(*) FROM acme_authzs WHERE order_id = ? AND status = 'invalid'", p,
                    1, &invalid, &err);
    const char *to = invalid ? "invalid" : (total && valid == total) ? "ready" : NULL;
    if (!to)
        return;
    struct store_value u[] = {STORE_V_TEXT(to), STORE_V_TEXT(order_id)};
    exec(a, "UPDATE acme_orders SET status = ? WHERE id = ? AND status = 'pending'", u, 2, NULL);
}

static json_t *account_json(struct ctx *c, const json_t *ac)
{
    json_t *contact = jstr(ac, "contact") ? json_loads(jstr(ac, "contact"), 0, NULL) : NULL;
    json_t *key = json_loads(jstr(ac, "jwk"), 0, NULL);
    char orders[700];
    snprintf(orders, sizeof(orders), "%s/acct/%lld/orders", c->base, (long long)jint(ac, "id"));
    return json_pack("{s:s, s:o, s:s, s:b, s:o}", "status", jstr(ac, "status"), "contact",
                     contact ? contact : json_array(), "orders", orders, "termsOfServiceAgreed", 1,
                     "key", key ? key : json_object());
}

/* ---- handlers ---- */

static void do_directory(struct ctx *c)
{
    json_t *d = json_pack("{s:s+, s:s+, s:s+, s:s+, s:s+, s:{s:b}}", "newNonce", c->base,
                          "/new-nonce", "newAccount", c->base, "/new-account", "newOrder", c->base,
                          "/new-order", "revokeCert", c->base, "/revoke-cert", "keyChange", c->base,
                          "/key-change", "meta", "externalAccountRequired", 0);
    reply_json(c, 200, d);
}

static bool valid_contacts(struct ctx *c, json_t *contact)
{
    if (!contact)
        return true;
    if (!json_is_array(contact) || json_array_size(contact) > 10) {
        problem(c, 400, "invalidContact", "'contact' must be a list of at most 10 mailto: URLs");
        return false;
    }
    size_t i;
    json_t *v;
    json_array_foreach(contact, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || strlen(s) > 256 || !core_utf8_valid(s, strlen(s))) {
            problem(c, 400, "invalidContact", "a contact is not a URL");
            return false;
        }
        if (strncmp(s, "mailto:", 7) != 0) {
            problem(c, 400, "unsupportedContact", "only mailto: contacts are supported");
            return false;
        }
        if (!strchr(s + 7, '@') || strpbrk(s + 7, ",?& \t\r\n<>")) {
            problem(c, 400, "invalidContact", "a mailto: contact needs exactly one address");
            return false;
        }
    }
    return true;
}

static void do_new_account(struct ctx *c)
{
    struct acme *a = c->a;
    char tp[64];
    struct core_err err = {0};
    if (!c->jws.jwk) {
        problem(c, 400, "malformed", "newAccount must be signed with a 'jwk', not a 'kid'");
        return;
    }
    if (!c->payload) {
        problem(c, 400, "malformed", "newAccount needs a payload");
        return;
    }
    if (jws_thumbprint(c->jws.jwk, tp, &err)) {
        problem(c, 400, "malformed", err.msg);
        return;
    }
    json_t *ac = NULL;
    struct store_value p[] = {STORE_V_TEXT(tp)};
    const char *sel = "SELECT id, status, contact, jwk FROM acme_accounts WHERE thumbprint = ?";
    if (q_one(a, sel, p, 1, &ac)) {
        problem(c, 500, "serverInternal", "store error");
        return;
    }
    if (ac) {
        add_header(c->resp, "Location", "%s/acct/%lld", c->base, (long long)jint(ac, "id"));
        reply_json(c, 200, account_json(c, ac));
        json_decref(ac);
        return;
    }
    if (json_is_true(json_object_get(c->payload, "onlyReturnExisting"))) {
        problem(c, 400, "accountDoesNotExist", "no account exists with this key");
        return;
    }
    json_t *contact = json_object_get(c->payload, "contact");
    if (!valid_contacts(c, contact))
        return;
    if (json_object_get(c->payload, "externalAccountBinding")) {
        problem(c, 400, "malformed", "external account binding is not supported");
        return;
    }
    char *jwk = json_dumps(c->jws.jwk, JSON_COMPACT | JSON_SORT_KEYS);
    char *cs = contact ? json_dumps(contact, JSON_COMPACT) : NULL;
    char now[40];
    ts(core_now_ms(), now);
    struct store_value ins[] = {STORE_V_TEXT(tp), STORE_V_TEXT(jwk), STORE_V_TEXT(cs),
                                STORE_V_TEXT(now)};
    int rc = jwk ? exec(a,
                        "INSERT INTO acme_accounts (thumbprint, jwk, contact, status, created_at) "
                        "VALUES (?, ?, ?, 'valid', ?)",
                        ins, 4, NULL)
                 : CORE_E_NOMEM;
    free(jwk);
    free(cs);
    /* a concurrent newAccount with the same key may have won: answer with that account */
    if ((rc && rc != CORE_E_CONFLICT) || q_one(a, sel, p, 1, &ac) || !ac) {
        problem(c, 500, "serverInternal", "cannot create the account");
        return;
    }
    log_info("acme", "account created", LOG_INT("account", jint(ac, "id")));
    add_header(c->resp, "Location", "%s/acct/%lld", c->base, (long long)jint(ac, "id"));
    reply_json(c, rc ? 200 : 201, account_json(c, ac));
    json_decref(ac);
}

static void do_account(struct ctx *c, int64_t id, bool orders)
{
    struct acme *a = c->a;
    if (id != c->acct_id) {
        problem(c, 403, "unauthorized", "this is not your account");
        return;
    }
    struct store_value p[] = {STORE_V_INT(id)};
    if (orders) {
        json_t *rows = q_rows(a,
                              "SELECT id FROM acme_orders WHERE account_id = ? AND status IN "
                              "('pending', 'ready', 'processing', 'valid') ORDER BY rowid DESC "
                              "LIMIT 1000",
                              p, 1, 0);
        json_t *urls = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(rows, i, v)
            json_array_append_new(urls, json_pack("s++", c->base, "/order/", jstr(v, "id")));
        json_decref(rows);
        reply_json(c, 200, json_pack("{s:o}", "orders", urls));
        return;
    }
    if (c->payload) {
        json_t *contact = json_object_get(c->payload, "contact");
        if (!valid_contacts(c, contact))
            return;
        if (contact) {
            char *cs = json_dumps(contact, JSON_COMPACT);
            struct store_value u[] = {STORE_V_TEXT(cs), STORE_V_INT(id)};
            exec(a, "UPDATE acme_accounts SET contact = ? WHERE id = ?", u, 2, NULL);
            free(cs);
        }
        const char *st = jstr(c->payload, "status");
        if (st && strcmp(st, "deactivated") != 0) {
            problem(c, 400, "malformed", "an account's status can only become 'deactivated'");
            return;
        }
        if (st) {
            exec(a, "UPDATE acme_accounts SET status = 'deactivated' WHERE id = ?", p, 1, NULL);
            log_info("acme", "account deactivated", LOG_INT("account", id));
        }
    }
    json_t *ac = NULL;
    q_one(a, "SELECT id, status, contact, jwk FROM acme_accounts WHERE id = ?", p, 1, &ac);
    if (!ac) {
        problem(c, 500, "serverInternal", "account vanished");
        return;
    }
    reply_json(c, 200, account_json(c, ac));
    json_decref(ac);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(json_string_value(*(json_t *const *)x), json_string_value(*(json_t *const *)y));
}

static void do_new_order(struct ctx *c)
{
    struct acme *a = c->a;
    json_t *idents = c->payload ? json_object_get(c->payload, "identifiers") : NULL;
    json_t *names = json_array();
    json_t *od = NULL;
    bool in_txn = false;
    if (!json_is_array(idents) || json_array_size(idents) == 0 ||
        json_array_size(idents) > JWS_MAX_NAMES) {
        problem(c, 400, "malformed", "newOrder needs 1 to 100 'identifiers'");
        goto out;
    }
    if (json_object_get(c->payload, "notBefore") || json_object_get(c->payload, "notAfter")) {
        problem(c, 400, "malformed", "notBefore and notAfter are not supported");
        goto out;
    }
    size_t i;
    json_t *v;
    json_array_foreach(idents, i, v)
    {
        const char *type = jstr(v, "type"), *value = jstr(v, "value");
        if (!type || !value) {
            problem(c, 400, "malformed", "an identifier needs 'type' and 'value'");
            goto out;
        }
        if (strcmp(type, "dns") != 0) {
            problem(c, 400, "unsupportedIdentifier", "only 'dns' identifiers are supported");
            goto out;
        }
        char name[256];
        if (strlen(value) >= sizeof(name)) {
            problem(c, 400, "rejectedIdentifier", "the name is too long");
            goto out;
        }
        snprintf(name, sizeof(name), "%s", value);
        for (char *q = name; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        if (name[0] == '*') {
            problem(c, 400, "rejectedIdentifier",
                    "wildcard names need dns-01, which this server does not offer");
            goto out;
        }
        if (!jws_dns_name_ok(name)) {
            problem(c, 400, "rejectedIdentifier", "the identifier is not a valid DNS name");
            goto out;
        }
        if (!a->name_allowed(a->name_allowed_arg, c->acct_name, name)) {
            char msg[400];
            snprintf(msg, sizeof(msg), "policy forbids issuing for '%s'", name);
            problem(c, 400, "rejectedIdentifier", msg);
            goto out;
        }
        bool dup = false;
        size_t k;
        json_t *w;
        json_array_foreach(names, k, w) dup = dup || strcmp(json_string_value(w), name) == 0;
        if (!dup)
            json_array_append_new(names, json_string(name));
    }
    /* sort, so the stored identifiers compare equal to a sorted CSR list */
    size_t nn = json_array_size(names);
    json_t **arr = core_calloc(nn ? nn : 1, sizeof(json_t *));
    if (!arr) {
        problem(c, 500, "serverInternal", "out of memory");
        goto out;
    }
    for (i = 0; i < nn; i++)
        arr[i] = json_incref(json_array_get(names, i));
    qsort(arr, nn, sizeof(json_t *), cmp_str);
    json_array_clear(names);
    for (i = 0; i < nn; i++)
        json_array_append_new(names, arr[i]);
    core_free(arr);

    char oid[40];
    int64_t expires = core_now_ms() + ACME_ORDER_TTL_MS;
    char *ids = json_dumps(names, JSON_COMPACT);
    char now[40];
    ts(core_now_ms(), now);
    struct core_err err = {0};
    int rc = random_id(oid, 12) ? CORE_E_IO : store_txn_begin(a->st, &err);
    in_txn = rc == 0;
    if (!rc) {
        struct store_value p[] = {STORE_V_TEXT(oid), STORE_V_INT(c->acct_id), STORE_V_TEXT(ids),
                                  STORE_V_INT(expires), STORE_V_TEXT(now)};
        rc = ids ? exec(a,
                        "INSERT INTO acme_orders (id, account_id, status, identifiers, "
                        "expires_ms, created_at) VALUES (?, ?, 'pending', ?, ?, ?)",
                        p, 5, NULL)
                 : CORE_E_NOMEM;
    }
    free(ids);
    json_array_foreach(names, i, v)
    {
        char aid[40], chid[40], token[48];
        if (rc || (rc = random_id(aid, 12)) || (rc = random_id(chid, 12)) ||
            (rc = random_token(token)))
            break;
        struct store_value pa[] = {STORE_V_TEXT(aid), STORE_V_TEXT(oid), STORE_V_INT(c->acct_id),
                                   STORE_V_TEXT(json_string_value(v)), STORE_V_INT(expires)};
        rc = exec(a,
                  "INSERT INTO acme_authzs (id, order_id, account_id, identifier, status, "
                  "expires_ms) VALUES (?, ?, ?, ?, 'pending', ?)",
                  pa, 5, NULL);
        struct store_value pc[] = {STORE_V_TEXT(chid), STORE_V_TEXT(aid), STORE_V_TEXT(token)};
        if (!rc)
            rc = exec(a,
                      "INSERT INTO acme_challenges (id, authz_id, type, token, status) VALUES "
                      "(?, ?, 'http-01', ?, 'pending')",
                      pc, 3, NULL);
    }
    if (!rc) {
        rc = store_txn_commit(a->st, &err); /* rolls back by itself when it fails */
        in_txn = false;
    }
    if (rc) {
        problem(c, 500, "serverInternal", "cannot create the order");
        goto out; /* `out` rolls back a transaction still open */
    }
    od = load_order(c, oid);
    if (!od) {
        problem(c, 500, "serverInternal", "cannot read the order back");
        goto out;
    }
    log_info("acme", "order created", LOG_STR("order", oid), LOG_INT("account", c->acct_id),
             LOG_INT("names", (int64_t)nn));
    add_header(c->resp, "Location", "%s/order/%s", c->base, oid);
    reply_json(c, 201, order_json(c, od));
out:
    if (in_txn)
        store_txn_rollback(a->st);
    json_decref(od);
    json_decref(names);
}

static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

static void do_order(struct ctx *c, const char *id)
{
    json_t *od = id_ok(id) ? load_order(c, id) : NULL;
    if (!od || jint(od, "account_id") != c->acct_id) {
        problem(c, 404, "malformed", "no such order");
    } else {
        if (strcmp(jstr(od, "status"), "processing") == 0)
            add_header(c->resp, "Retry-After", "1");
        reply_json(c, 200, order_json(c, od));
    }
    json_decref(od);
}

static void do_authz(struct ctx *c, const char *id)
{
    json_t *az = NULL;
    struct store_value p[] = {STORE_V_TEXT(id)};
    if (id_ok(id))
        q_one(c->a,
              "SELECT id, account_id, identifier, status, expires_ms FROM acme_authzs WHERE id = ?",
              p, 1, &az);
    if (!az || jint(az, "account_id") != c->acct_id) {
        problem(c, 404, "malformed", "no such authorization");
    } else if (c->payload && jstr(c->payload, "status")) {
        /* deactivation (RFC 8555 §7.5.2) */
        if (strcmp(jstr(c->payload, "status"), "deactivated") != 0) {
            problem(c, 400, "malformed", "an authorization can only become 'deactivated'");
        } else {
            exec(c->a, "UPDATE acme_authzs SET status = 'deactivated' WHERE id = ?", p, 1, NULL);
            json_object_set_new(az, "status", json_string("deactivated"));
            reply_json(c, 200, authz_json(c, az));
        }
    } else {
        reply_json(c, 200, authz_json(c, az));
    }
    json_decref(az);
}

static void enqueue(struct acme *a, const char *chid, bool *queued)
{
    pthread_mutex_lock(&a->lock);
    *queued = false;
    if (!a->stopping && a->qlen < ACME_QUEUE_MAX) {
        char *copy = core_strdup(chid);
        if (copy) {
            a->queue[(a->qhead + a->qlen) % ACME_QUEUE_MAX] = copy;
            a->qlen++;
            *queued = true;
            pthread_cond_signal(&a->cond);
        }
    }
    pthread_mutex_unlock(&a->lock);
}

static void do_challenge(struct ctx *c, const char *id)
{
    struct acme *a = c->a;
    json_t *ch = NULL;
    struct store_value p[] = {STORE_V_TEXT(id)};
    const char *sel = "SELECT c.id, c.authz_id, c.type, c.token, c.status, c.validated, c.error, "
                      "z.account_id FROM acme_challenges c JOIN acme_authzs z ON z.id = "
                      "c.authz_id WHERE c.id = ?";
    if (id_ok(id))
        q_one(a, sel, p, 1, &ch);
    if (!ch || jint(ch, "account_id") != c->acct_id) {
        problem(c, 404, "malformed", "no such challenge");
        goto out;
    }
    /* a POST with a payload ({}) asks us to validate; POST-as-GET only reads */
    if (c->payload && strcmp(jstr(ch, "status"), "pending") == 0) {
        int64_t changes = 0;
        exec(a,
             "UPDATE acme_challenges SET status = 'processing' WHERE id = ? AND status = "
             "'pending'",
             p, 1, &changes);
        if (changes == 1) {
            bool queued;
            enqueue(a, id, &queued);
            if (!queued) {
                exec(a, "UPDATE acme_challenges SET status = 'pending' WHERE id = ?", p, 1, NULL);
                add_header(c->resp, "Retry-After", "5");
                problem(c, 503, "rateLimited", "too many validations in progress; retry later");
                goto out;
            }
        }
        json_decref(ch);
        ch = NULL;
        q_one(a, sel, p, 1, &ch);
        if (!ch) {
            problem(c, 500, "serverInternal", "challenge vanished");
            goto out;
        }
    }
    add_header(c->resp, "Link", "<%s/authz/%s>;rel=\"up\"", c->base, jstr(ch, "authz_id"));
    reply_json(c, 200, challenge_json(c, ch));
out:
    json_decref(ch);
}

static int cmp_cstr(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void do_finalize(struct ctx *c, const char *id)
{
    struct acme *a = c->a;
    json_t *od = id_ok(id) ? load_order(c, id) : NULL;
    json_t *names = NULL;
    char **csr_names = NULL;
    size_t ncsr = 0;
    const char **dns = NULL;
    struct core_buf der;
    struct pki_issued issued = {0};
    struct core_err err = {0};
    bool claimed = false;
    core_buf_init(&der, JWS_MAX_BODY);
    struct store_value pid[] = {STORE_V_TEXT(id)};
    if (!od || jint(od, "account_id") != c->acct_id) {
        problem(c, 404, "malformed", "no such order");
        goto out;
    }
    const char *status = jstr(od, "status");
    if (strcmp(status, "ready") != 0) {
        if (strcmp(status, "pending") == 0)
            problem(c, 403, "orderNotReady", "the order's authorizations are not all valid yet");
        else
            problem(c, 403, "orderNotReady", "the order is not ready to be finalized");
        goto out;
    }
    const char *csr = c->payload ? jstr(c->payload, "csr") : NULL;
    if (!csr || jws_b64url_decode(csr, strlen(csr), &der)) {
        problem(c, 400, "malformed", "finalize needs 'csr': a base64url DER CSR");
        goto out;
    }
    if (jws_csr_names(der.data, der.len, &csr_names, &ncsr, &err)) {
        problem(c, 400, "badCSR", err.msg);
        goto out;
    }
    names = json_loads(jstr(od, "identifiers"), 0, NULL);
    size_t nn = json_array_size(names);
    qsort(csr_names, ncsr, sizeof(char *), cmp_cstr);
    bool same = nn == ncsr;
    for (size_t i = 0; same && i < nn; i++)
        same = strcmp(json_string_value(json_array_get(names, i)), csr_names[i]) == 0;
    if (!same) {
        problem(c, 400, "badCSR", "the CSR's names are not exactly the order's identifiers");
        goto out;
    }
    /* claim the order so concurrent finalizes do not both issue */
    int64_t changes = 0;
    exec(a, "UPDATE acme_orders SET status = 'processing' WHERE id = ? AND status = 'ready'", pid,
         1, &changes);
    if (changes != 1) {
        problem(c, 403, "orderNotReady", "the order is being finalized already");
        goto out;
    }
    claimed = true;
    dns = core_calloc(nn, sizeof(char *));
    if (!dns) {
        problem(c, 500, "serverInternal", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nn; i++)
        dns[i] = json_string_value(json_array_get(names, i));
    struct pki_issue_request ir = {.dns_names = dns,
                                   .ndns = nn,
                                   .lifetime_ms = a->lifetime_ms,
                                   .owner = c->acct_name,
                                   .profile = "server"};
    int rc = pki_issue_csr(a->pki, der.data, der.len, &ir, &issued, &err);
    if (rc) {
        log_warn("acme", "issuance failed", LOG_STR("order", id), LOG_STR("error", err.msg));
        if (rc == CORE_E_PERM || rc == CORE_E_INVAL)
            problem(c, 400, "badCSR", err.msg);
        else
            problem(c, 500, "serverInternal", "issuance failed");
        goto out;
    }
    /* the fingerprint of the leaf identifies it again at revocation */
    char fp[65] = "", cid[40];
    BIO *bio = BIO_new_mem_buf(issued.cert_pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    unsigned char *xder = NULL;
    int xl = x ? i2d_X509(x, &xder) : -1;
    if (xl > 0)
        core_sha256_hex(xder, (size_t)xl, fp);
    OPENSSL_free(xder);
    X509_free(x);
    BIO_free(bio);
    char now[40];
    ts(core_now_ms(), now);
    struct store_value pc[] = {STORE_V_TEXT(cid),       STORE_V_TEXT(id),
                               STORE_V_INT(c->acct_id), STORE_V_TEXT(issued.serial),
                               STORE_V_TEXT(fp),        STORE_V_TEXT(issued.chain_pem),
                               STORE_V_TEXT(now)};
    if (!fp[0] || random_id(cid, 12) ||
        exec(a,
             "INSERT INTO acme_certs (id, order_id, account_id, serial, fingerprint, chain_pem, "
             "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
             pc, 7, NULL)) {
        problem(c, 500, "serverInternal", "cannot record the certificate");
        goto out;
    }
    struct store_value pv[] = {STORE_V_TEXT(cid), STORE_V_TEXT(id)};
    exec(a, "UPDATE acme_orders SET status = 'valid', cert_id = ? WHERE id = ?", pv, 2, NULL);
    claimed = false;
    log_info("acme", "certificate issued", LOG_STR("order", id), LOG_STR("serial", issued.serial),
             LOG_INT("account", c->acct_id));
    json_decref(od);
    od = load_order(c, id);
    add_header(c->resp, "Location", "%s/order/%s", c->base, id);
    if (od)
        reply_json(c, 200, order_json(c, od));
    else
        problem(c, 500, "serverInternal", "cannot read the order back");
out:
    if (claimed) {
        /* a refused or failed issuance makes the order invalid (RFC 8555 §7.4) */
        struct store_value pe[] = {STORE_V_TEXT(c->resp->body.data), STORE_V_TEXT(id)};
        exec(a, "UPDATE acme_orders SET status = 'invalid', error = ? WHERE id = ?", pe, 2, NULL);
    }
    pki_issued_release(&issued);
    core_free(dns);
    jws_names_free(csr_names, ncsr);
    json_decref(names);
    json_decref(od);
    core_buf_release(&der);
}

static void do_cert(struct ctx *c, const char *id)
{
    json_t *ct = NULL;
    struct store_value p[] = {STORE_V_TEXT(id)};
    if (id_ok(id))
        q_one(c->a, "SELECT account_id, chain_pem FROM acme_certs WHERE id = ?", p, 1, &ct);
    if (!ct || jint(ct, "account_id") != c->acct_id) {
        problem(c, 404, "malformed", "no such certificate");
    } else {
        c->resp->status = 200;
        core_buf_clear(&c->resp->body);
        core_buf_adds(&c->resp->body, jstr(ct, "chain_pem"));
        add_header(c->resp, "Content-Type", "application/pem-certificate-chain");
    }
    json_decref(ct);
}

static void do_revoke(struct ctx *c)
{
    struct acme *a = c->a;
    struct core_buf der;
    X509 *x = NULL;
    json_t *ct = NULL;
    struct core_err err = {0};
    core_buf_init(&der, JWS_MAX_BODY);
    const char *cert = c->payload ? jstr(c->payload, "certificate") : NULL;
    json_t *reason_j = c->payload ? json_object_get(c->payload, "reason") : NULL;
    int64_t reason = reason_j ? json_integer_value(reason_j) : 0;
    if (!cert || jws_b64url_decode(cert, strlen(cert), &der)) {
        problem(c, 400, "malformed", "revokeCert needs 'certificate': base64url DER");
        goto out;
    }
    if (reason_j && (!json_is_integer(reason_j) || reason < 0 || reason > 10 || reason == 7)) {
        problem(c, 400, "badRevocationReason", "unsupported revocation reason");
        goto out;
    }
    const unsigned char *p = (const unsigned char *)der.data;
    x = d2i_X509(NULL, &p, (long)der.len);
    if (!x || p != (const unsigned char *)der.data + der.len) {
        problem(c, 400, "malformed", "'certificate' is not a DER certificate");
        goto out;
    }
    char fp[65];
    core_sha256_hex(der.data, der.len, fp);
    struct store_value q[] = {STORE_V_TEXT(fp)};
    q_one(a, "SELECT id, account_id, serial, revoked FROM acme_certs WHERE fingerprint = ?", q, 1,
          &ct);
    if (!ct) {
        problem(c, 404, "malformed", "this server did not issue that certificate");
        goto out;
    }
    if (c->acct_id) {
        if (jint(ct, "account_id") != c->acct_id) {
            problem(c, 403, "unauthorized", "the certificate belongs to another account");
            goto out;
        }
    } else if (EVP_PKEY_eq(X509_get0_pubkey(x), c->key) != 1) {
        problem(c, 403, "unauthorized", "the request is not signed by the certificate's key");
        goto out;
    }
    if (jint(ct, "revoked")) {
        problem(c, 400, "alreadyRevoked", "the certificate is revoked already");
        goto out;
    }
    if (pki_revoke(a->pki, jstr(ct, "serial"), (int)reason, &err)) {
        log_warn("acme", "revocation failed", LOG_STR("error", err.msg));
        problem(c, 500, "serverInternal", "revocation failed");
        goto out;
    }
    struct store_value u[] = {STORE_V_TEXT(jstr(ct, "id"))};
    exec(a, "UPDATE acme_certs SET revoked = 1 WHERE id = ?", u, 1, NULL);
    log_info("acme", "certificate revoked", LOG_STR("serial", jstr(ct, "serial")),
             LOG_INT("reason", reason));
    c->resp->status = 200;
    core_buf_clear(&c->resp->body);
out:
    json_decref(ct);
    X509_free(x);
    core_buf_release(&der);
}

/* RFC 8555 §7.3.5: the outer JWS (old key, kid) carries an inner JWS signed by the new key whose
 * payload names the account and the old key. */
static void do_key_change(struct ctx *c)
{
    struct acme *a = c->a;
    struct jws in;
    struct core_err err = {0};
    const char *ptype = "malformed";
    EVP_PKEY *newkey = NULL;
    json_t *ip = NULL, *ac = NULL;
    char oldtp[64], newtp[64];
    jws_init(&in);
    if (c->jws.post_as_get ||
        jws_parse_ex(c->jws.payload.data, c->jws.payload.len, JWS_INNER, &in, &ptype, &err)) {
        problem(c, 400, "malformed", c->jws.post_as_get ? "keyChange needs an inner JWS" : err.msg);
        goto out;
    }
    if (strcmp(in.url, c->jws.url) != 0) {
        problem(c, 400, "malformed", "the inner JWS 'url' differs from the outer one");
        goto out;
    }
    if (!(newkey = jws_jwk_key(in.jwk, &err))) {
        problem(c, 400, "badPublicKey", err.msg);
        goto out;
    }
    if (jws_verify(&in, newkey, &ptype, &err)) {
        problem(c, problem_status(ptype), ptype, err.msg);
        goto out;
    }
    ip = in.post_as_get ? NULL : json_loadb(in.payload.data, in.payload.len, 0, NULL);
    const char *acct = ip ? jstr(ip, "account") : NULL;
    json_t *old = ip ? json_object_get(ip, "oldKey") : NULL;
    if (!acct || !json_is_object(old) || strcmp(acct, c->jws.kid) != 0) {
        problem(c, 400, "malformed", "the inner payload needs this 'account' and its 'oldKey'");
        goto out;
    }
    struct store_value pid[] = {STORE_V_INT(c->acct_id)};
    q_one(a, "SELECT id, status, contact, jwk, thumbprint FROM acme_accounts WHERE id = ?", pid, 1,
          &ac);
    if (!ac || jws_thumbprint(old, oldtp, &err) || strcmp(oldtp, jstr(ac, "thumbprint")) != 0) {
        problem(c, 400, "malformed", "'oldKey' is not the account's current key");
        goto out;
    }
    if (jws_thumbprint(in.jwk, newtp, &err)) {
        problem(c, 400, "badPublicKey", err.msg);
        goto out;
    }
    json_t *other = NULL;
    struct store_value pt[] = {STORE_V_TEXT(newtp)};
    q_one(a, "SELECT id FROM acme_accounts WHERE thumbprint = ?", pt, 1, &other);
    if (other) {
        add_header(c->resp, "Location", "%s/acct/%lld", c->base, (long long)jint(other, "id"));
        json_decref(other);
        problem(c, 409, "malformed", "another account uses the new key");
        goto out;
    }
    char *jwk = json_dumps(in.jwk, JSON_COMPACT | JSON_SORT_KEYS);
    struct store_value u[] = {STORE_V_TEXT(jwk), STORE_V_TEXT(newtp), STORE_V_INT(c->acct_id)};
    int rc =
        jwk ? exec(a, "UPDATE acme_accounts SET jwk = ?, thumbprint = ? WHERE id = ?", u, 3, NULL)
            : CORE_E_NOMEM;
    free(jwk);
    if (rc) {
        problem(c, rc == CORE_E_CONFLICT ? 409 : 500,
                rc == CORE_E_CONFLICT ? "malformed" : "serverInternal",
                "cannot change the account key");
        goto out;
    }
    log_info("acme", "account key changed", LOG_INT("account", c->acct_id));
    json_decref(ac);
    ac = NULL;
    q_one(a, "SELECT id, status, contact, jwk FROM acme_accounts WHERE id = ?", pid, 1, &ac);
    if (ac)
        reply_json(c, 200, account_json(c, ac));
    else
        problem(c, 500, "serverInternal", "account vanished");
out:
    json_decref(ac);
    json_decref(ip);
    EVP_PKEY_free(newkey);
    jws_release(&in);
}

/* ---- request plumbing ---- */

static bool host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = h[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']'))
            return false;
    }
    return true;
}

/* Authenticates a POST: JWS shape, url, nonce, key (jwk or account), signature. On failure a
 * problem is prepared and false returned. */
static bool authenticate(struct ctx *c, bool jwk_allowed, bool kid_allowed)
{
    struct acme *a = c->a;
    const struct acme_request *rq = c->req;
    struct core_err err = {0};
    const char *ptype = "malformed";
    if (rq->body_too_big) {
        problem(c, 413, "malformed", "request body is too large (at most 64 KiB)");
        return false;
    }
    const char *ct = rq->header ? rq->header(rq->header_arg, "Content-Type") : NULL;
    if (!ct || strncasecmp(ct, "application/jose+json", 21) != 0) {
        problem(c, 415, "malformed", "POST bodies must be application/jose+json");
        return false;
    }
    if (jws_parse(rq->body, rq->body_len, &c->jws, &ptype, &err)) {
        problem(c, problem_status(ptype), ptype, err.msg);
        return false;
    }
    char want[900];
    snprintf(want, sizeof(want), "%s%s", c->base, rq->path);
    if (strcmp(c->jws.url, want) != 0) {
        problem(c, 401, "unauthorized", "the JWS 'url' is not the URL of this request");
        return false;
    }
    if (!use_nonce(a, c->jws.nonce)) {
        problem(c, 400, "badNonce", "the nonce is unknown, used or expired");
        return false;
    }
    if (c->jws.jwk) {
        if (!jwk_allowed) {
            problem(c, 400, "malformed", "this request must be signed with the account's 'kid'");
            return false;
        }
        c->key = jws_jwk_key(c->jws.jwk, &err);
        if (!c->key) {
            problem(c, 400, "badPublicKey", err.msg);
            return false;
        }
    } else {
        if (!kid_allowed) {
            problem(c, 400, "malformed", "this request must carry a 'jwk', not a 'kid'");
            return false;
        }
        char prefix[700];
        snprintf(prefix, sizeof(prefix), "%s/acct/", c->base);
        size_t pl = strlen(prefix);
        const char *idp = c->jws.kid + pl;
        char *end = NULL;
        long long id = strncmp(c->jws.kid, prefix, pl) == 0 ? strtoll(idp, &end, 10) : 0;
        if (id <= 0 || !end || *end || *idp < '1' || *idp > '9') {
            problem(c, 400, "accountDoesNotExist", "'kid' is not an account URL of this server");
            return false;
        }
        json_t *ac = NULL;
        struct store_value p[] = {STORE_V_INT(id)};
        q_one(a, "SELECT id, status, jwk FROM acme_accounts WHERE id = ?", p, 1, &ac);
        if (!ac) {
            problem(c, 400, "accountDoesNotExist", "no such account");
            return false;
        }
        bool valid = strcmp(jstr(ac, "status"), "valid") == 0;
        json_t *jwk = json_loads(jstr(ac, "jwk"), 0, NULL);
        c->key = jwk ? jws_jwk_key(jwk, &err) : NULL;
        json_decref(jwk);
        json_decref(ac);
        if (!valid) {
            problem(c, 403, "unauthorized", "the account is deactivated");
            return false;
        }
        if (!c->key) {
            problem(c, 500, "serverInternal", "cannot load the account key");
            return false;
        }
        c->acct_id = id;
        snprintf(c->acct_name, sizeof(c->acct_name), "acme:account/%lld", id);
    }
    if (jws_verify(&c->jws, c->key, &ptype, &err)) {
        problem(c, problem_status(ptype), ptype, err.msg);
        return false;
    }
    if (!c->jws.post_as_get) {
        c->payload = json_loadb(c->jws.payload.data, c->jws.payload.len, 0, NULL);
        if (!c->payload) {
            problem(c, 400, "malformed", "the payload is not JSON");
            return false;
        }
    }
    return true;
}

/* Matches "<prefix><id>[<suffix>]"; copies the id. */
static bool match_id(const char *path, const char *prefix, const char *suffix, char id[72])
{
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl) != 0)
        return false;
    const char *s = path + pl;
    size_t n = strlen(s), sl = suffix ? strlen(suffix) : 0;
    if (sl) {
        if (n <= sl || strcmp(s + n - sl, suffix) != 0)
            return false;
        n -= sl;
    }
    if (n == 0 || n >= 72 || memchr(s, '/', n))
        return false;
    memcpy(id, s, n);
    id[n] = 0;
    return true;
}

int acme_handle(struct acme *a, const struct acme_request *rq, struct acme_response *resp)
{
    struct ctx c = {.a = a, .req = rq, .resp = resp};
    jws_init(&c.jws);
    resp->status = 500;
    const char *host = rq->header ? rq->header(rq->header_arg, "Host") : NULL;
    if (a->base_url) {
        snprintf(c.base, sizeof(c.base), "%s", a->base_url);
    } else if (host && host_ok(host)) {
        snprintf(c.base, sizeof(c.base), "http://%s/acme", host);
    } else {
        snprintf(c.base, sizeof(c.base), "http://127.0.0.1/acme");
        problem(&c, 400, "malformed", "missing or invalid Host header");
        goto done;
    }
    add_header(resp, "Link", "<%s/directory>;rel=\"index\"", c.base);
    const char *m = rq->method, *path = rq->path;
    bool get = strcmp(m, "GET") == 0, head = strcmp(m, "HEAD") == 0, post = strcmp(m, "POST") == 0;
    char id[72];
    if (strcmp(path, "/directory") == 0 || strcmp(path, "/directory/") == 0) {
        if (get || head)
            do_directory(&c);
        else
            problem(&c, 405, "malformed", "use GET");
        goto done;
    }
    if (strcmp(path, "/new-nonce") == 0) {
        if (get || head) {
            resp->status = get ? 204 : 200;
            core_buf_clear(&resp->body);
        } else {
            problem(&c, 405, "malformed", "use HEAD or GET");
        }
        goto done;
    }
    if (!post) {
        problem(&c, 405, "malformed", "ACME resources are fetched with POST-as-GET");
        goto done;
    }
    if (strcmp(path, "/new-account") == 0) {
        if (authenticate(&c, true, false))
            do_new_account(&c);
    } else if (strcmp(path, "/revoke-cert") == 0) {
        if (authenticate(&c, true, true))
            do_revoke(&c);
    } else if (strcmp(path, "/key-change") == 0) {
        if (authenticate(&c, false, true))
            do_key_change(&c);
    } else if (strcmp(path, "/new-order") == 0) {
        if (authenticate(&c, false, true))
            do_new_order(&c);
    } else if (match_id(path, "/acct/", "/orders", id)) {
        char *end = NULL;
        long long n = strtoll(id, &end, 10);
        if (authenticate(&c, false, true))
            do_account(&c, end && !*end ? n : -1, true);
    } else if (match_id(path, "/acct/", NULL, id)) {
        char *end = NULL;
        long long n = strtoll(id, &end, 10);
        if (authenticate(&c, false, true))
            do_account(&c, end && !*end ? n : -1, false);
    } else if (match_id(path, "/order/", "/finalize", id)) {
        if (authenticate(&c, false, true))
            do_finalize(&c, id);
    } else if (match_id(path, "/order/", NULL, id)) {
        if (authenticate(&c, false, true))
            do_order(&c, id);
    } else if (match_id(path, "/authz/", NULL, id)) {
        if (authenticate(&c, false, true))
            do_authz(&c, id);
    } else if (match_id(path, "/chall/", NULL, id)) {
        if (authenticate(&c, false, true))
            do_challenge(&c, id);
    } else if (match_id(path, "/cert/", NULL, id)) {
        if (authenticate(&c, false, true))
            do_cert(&c, id);
    } else {
        problem(&c, 404, "malformed", "no such ACME resource");
    }
done:
    issue_nonce(&c);
    json_decref(c.payload);
    EVP_PKEY_free(c.key);
    jws_release(&c.jws);
    return 0;
}

/* ---- http-01 validation ---- */

struct fetch {
    struct core_buf body;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct fetch *f = arg;
    if (core_buf_add(&f->body, data, size * n))
        return 0; /* too big: abort the transfer */
    return size * n;
}

/* Fetches the key authorization and compares; fills a problem JSON on failure. */
static bool validate_http01(struct acme *a, const char *name, const char *token,
                            const char *keyauth, char **error_json)
{
    char url[600], resolve[400], msg[800];
    const char *etype = "connection";
    struct fetch f;
    struct curl_slist *rl = NULL;
    bool ok = false;
    core_buf_init(&f.body, ACME_CHALLENGE_BODY_MAX);
    snprintf(url, sizeof(url), "http://%s:%d/.well-known/acme-challenge/%s", name, a->http_port,
             token);
    CURL *cu = curl_easy_init();
    if (!cu) {
        snprintf(msg, sizeof(msg), "cannot start the validation request");
        goto out;
    }
    if (is_loopback_name(a, name)) {
        snprintf(resolve, sizeof(resolve), "%s:%d:127.0.0.1", name, a->http_port);
        rl = curl_slist_append(NULL, resolve);
        curl_easy_setopt(cu, CURLOPT_RESOLVE, rl);
    }
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_USERAGENT, "pave-acme-va");
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &f);
    CURLcode cc = curl_easy_perform(cu);
    long code = 0;
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &code);
    if (cc != CURLE_OK) {
        snprintf(msg, sizeof(msg), "fetching %s: %s", url, curl_easy_strerror(cc));
        goto out;
    }
    if (code != 200) {
        etype = "unauthorized";
        snprintf(msg, sizeof(msg), "fetching %s: HTTP status %ld", url, code);
        goto out;
    }
    /* trailing whitespace is ignored (RFC 8555 §8.3) */
    while (f.body.len && strchr(" \t\r\n", f.body.data[f.body.len - 1]))
        f.body.data[--f.body.len] = 0;
    if (f.body.len != strlen(keyauth) || memcmp(f.body.data, keyauth, f.body.len) != 0) {
        etype = "incorrectResponse";
        snprintf(msg, sizeof(msg), "the key authorization at %s does not match", url);
        goto out;
    }
    ok = true;
out:
    if (!ok) {
        json_t *e =
            json_pack("{s:s+, s:s, s:i}", "type", ACME_ERR, etype, "detail", msg, "status", 400);
        *error_json = e ? json_dumps(e, JSON_COMPACT) : NULL;
        json_decref(e);
    }
    curl_slist_free_all(rl);
    if (cu)
        curl_easy_cleanup(cu);
    core_buf_release(&f.body);
    return ok;
}

static void validate(struct acme *a, const char *chid)
{
    json_t *row = NULL;
    struct store_value p[] = {STORE_V_TEXT(chid)};
    q_one(a,
          "SELECT c.token, c.authz_id, z.identifier, z.order_id, a.thumbprint FROM "
          "acme_challenges c JOIN acme_authzs z ON z.id = c.authz_id JOIN acme_accounts a ON "
          "a.id = z.account_id WHERE c.id = ?",
          p, 1, &row);
    if (!row)
        return;
    char keyauth[200], now[40];
    snprintf(keyauth, sizeof(keyauth), "%s.%s", jstr(row, "token"), jstr(row, "thumbprint"));
    char *error = NULL;
    bool ok = validate_http01(a, jstr(row, "identifier"), jstr(row, "token"), keyauth, &error);
    ts(core_now_ms(), now);
    const char *st = ok ? "valid" : "invalid";
    struct store_value u[] = {STORE_V_TEXT(st), STORE_V_TEXT(ok ? now : NULL), STORE_V_TEXT(error),
                              STORE_V_TEXT(chid)};
    exec(a, "UPDATE acme_challenges SET status = ?, validated = ?, error = ? WHERE id = ?", u, 4,
         NULL);
    struct store_value z[] = {STORE_V_TEXT(st), STORE_V_TEXT(jstr(row, "authz_id"))};
    exec(a, "UPDATE acme_authzs SET status = ? WHERE id = ? AND status = 'pending'", z, 2, NULL);
    order_refresh(a, jstr(row, "order_id"));
    log_info("acme", "challenge validated", LOG_STR("name", jstr(row, "identifier")),
             LOG_STR("status", st));
    free(error);
    json_decref(row);
}

static void *worker_main(void *arg)
{
    struct acme *a = arg;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->stopping && a->qlen == 0)
            pthread_cond_wait(&a->cond, &a->lock);
        if (a->stopping)
            break;
        char *chid = a->queue[a->qhead];
        a->qhead = (a->qhead + 1) % ACME_QUEUE_MAX;
        a->qlen--;
        pthread_mutex_unlock(&a->lock);
        validate(a, chid);
        core_free(chid);
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* ---- lifecycle ---- */

/* curl_global_init is not thread safe in older libcurl: run it once, before any handle */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct acme *acme_new(const struct acme_config *cfg, struct core_err *err)
{
    if (!cfg || !cfg->pki || !cfg->st) {
        core_err_set(err, CORE_E_INVAL, "the ACME server needs the CA and the store");
        return NULL;
    }
    struct acme *a = core_calloc(1, sizeof(*a));
    if (!a) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    a->pki = cfg->pki;
    a->st = cfg->st;
    a->http_port = cfg->http_port > 0 ? cfg->http_port : 80;
    a->lifetime_ms = cfg->cert_lifetime_ms;
    a->platform_domain = cfg->platform_domain ? core_strdup(cfg->platform_domain) : NULL;
    a->base_url = cfg->base_url ? core_strdup(cfg->base_url) : NULL;
    a->name_allowed = cfg->name_allowed ? cfg->name_allowed : acme_default_name_allowed;
    a->name_allowed_arg = cfg->name_allowed ? cfg->name_allowed_arg : a->platform_domain;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    if (cfg->nloopback) {
        a->loopback = core_calloc(cfg->nloopback, sizeof(char *));
        if (!a->loopback)
            goto nomem;
        for (size_t i = 0; i < cfg->nloopback; i++) {
            if (!(a->loopback[i] = core_strdup(cfg->loopback_names[i])))
                goto nomem;
            a->nloopback++;
        }
    }
    if ((cfg->platform_domain && !a->platform_domain) || (cfg->base_url && !a->base_url))
        goto nomem;
    int n = cfg->workers > 0 ? cfg->workers : 4;
    if (n > ACME_WORKERS_MAX)
        n = ACME_WORKERS_MAX;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&a->workers[i], NULL, worker_main, a) != 0)
            break;
        a->nworkers++;
    }
    if (a->nworkers == 0) {
        acme_free(a);
        core_err_set(err, CORE_E_NOMEM, "cannot start the ACME validation threads");
        return NULL;
    }
    return a;
nomem:
    acme_free(a);
    core_err_set(err, CORE_E_NOMEM, "out of memory");
    return NULL;
}

void acme_free(struct acme *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    for (int i = 0; i < a->nworkers; i++)
        pthread_join(a->workers[i], NULL);
    /* challenges still queued stay "processing"; the client retries with a new order */
    for (size_t i = 0; i < a->qlen; i++)
        core_free(a->queue[(a->qhead + i) % ACME_QUEUE_MAX]);
    for (size_t i = 0; i < a->nloopback; i++)
        core_free(a->loopback[i]);
    core_free(a->loopback);
    core_free(a->platform_domain);
    core_free(a->base_url);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    core_free(a);
}
