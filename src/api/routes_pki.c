/* Routes of the internal CA (docs/pki.md): the public CRL and CA certificates under /pki/ (no
 * token: relying parties must be able to fetch them), and the certificate inventory, issuance
 * and revocation under /api/v1/ca (issuance and revocation are for admins). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "pki/pki.h"
#include "store/store.h"

static struct pki *ca(struct api_req *r)
{
    struct pki *p = api_ctx(r)->pki;
    if (!p)
        api_reply_error(r, CORE_E_NOMEM,
                        "the certificate authority is not initialized on this server (run 'pave "
                        "ca init' and restart)",
                        NULL);
    return p;
}

static bool admin_only(struct api_req *r)
{
    if (r->who.is_admin)
        return true;
    api_reply_error(r, CORE_E_PERM, "only admins may issue or revoke certificates", NULL);
    return false;
}

static json_t *body_object(struct api_req *r)
{
    if (!core_utf8_valid(r->body.data, r->body.len)) {
        api_reply_error(r, CORE_E_INVAL, "request body is not valid UTF-8", NULL);
        return NULL;
    }
    json_error_t jerr;
    json_t *b = r->body.len ? json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr)
                            : json_object();
    if (!json_is_object(b)) {
        json_decref(b);
        api_reply_error(r, CORE_E_INVAL, "the body must be a JSON object", NULL);
        return NULL;
    }
    return b;
}

static void reply_text(struct api_req *r, const char *type, const void *data, size_t len)
{
    r->status = 200;
    r->out_type = type;
    if (core_buf_add(&r->out, data, len))
        api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
}

/* GET /pki/crl.der and /pki/crl.pem (public) */
static void crl(struct api_req *r, bool pem)
{
    struct pki *p = ca(r);
    if (!p)
        return;
    struct core_buf b;
    struct core_err err = {0};
    core_buf_init(&b, 0);
    if (pki_crl(p, pem, &b, &err))
        api_reply_err(r, &err);
    else
        reply_text(r, pem ? "application/x-pem-file" : "application/pkix-crl", b.data, b.len);
    core_buf_release(&b);
}

static void h_crl_der(struct api_req *r)
{
    crl(r, false);
}

static void h_crl_pem(struct api_req *r)
{
    crl(r, true);
}

/* GET /pki/ca.pem (public): the root, the trust anchor to install */
static void h_ca_pem(struct api_req *r)
{
    struct pki *p = ca(r);
    if (p)
        reply_text(r, "application/x-pem-file", pki_root_pem(p), strlen(pki_root_pem(p)));
}

/* GET /pki/chain.pem (public): the intermediate, then the root */
static void h_chain_pem(struct api_req *r)
{
    struct pki *p = ca(r);
    if (p)
        reply_text(r, "application/x-pem-file", pki_chain_pem(p), strlen(pki_chain_pem(p)));
}

/* GET /api/v1/ca/certificates[?owner=&state=&expiring=72h] */
static void h_list(struct api_req *r)
{
    struct pki *p = ca(r);
    if (!p)
        return;
    char owner[256], state[32], exp[32];
    int64_t within = 0;
    const char *o = api_query(r, "owner", owner, sizeof(owner));
    const char *s = api_query(r, "state", state, sizeof(state));
    const char *e = api_query(r, "expiring", exp, sizeof(exp));
    if (e && *e && (core_parse_duration_ms(e, &within) || within <= 0)) {
        api_reply_error(r, CORE_E_INVAL, "expiring must be a duration such as 72h", NULL);
        return;
    }
    struct core_err err = {0};
    json_t *out = pki_list(p, o, s, within, &err);
    api_reply_result(r, out, &err);
}

/* GET /api/v1/ca/certificates/{serial} */
static void h_show(struct api_req *r)
{
    struct pki *p = ca(r);
    if (!p)
        return;
    struct core_err err = {0};
    json_t *out = pki_show(p, r->params[0], &err);
    api_reply_result(r, out, &err);
}

static int key_type_of(const char *name, enum pki_key_type *kt)
{
    if (!name || !strcmp(name, "ec") || !strcmp(name, "ec-p256"))
        *kt = PKI_KEY_EC_P256;
    else if (!strcmp(name, "rsa") || !strcmp(name, "rsa2048"))
        *kt = PKI_KEY_RSA2048;
    else if (!strcmp(name, "rsa3072"))
        *kt = PKI_KEY_RSA3072;
    else if (!strcmp(name, "rsa4096"))
        *kt = PKI_KEY_RSA4096;
    else
        return CORE_E_INVAL;
    return 0;
}

/* Fills a string array from a JSON array (at most max, borrowed from the JSON). */
static int string_list(json_t *arr, const char **out, size_t max, size_t *n)
{
    *n = 0;
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > max)
        return CORE_E_INVAL;
    size_t i;
    json_t *v;
    json_array_foreach (arr, i, v) {
        if (!json_is_string(v))
            return CORE_E_INVAL;
        out[(*n)++] = json_string_value(v);
    }
    return 0;
}

/* POST /api/v1/ca/certificates {dns:[...], ips:[...], lifetime:"1h", profile, key} (admin):
 * answers the certificate, the chain and the generated key, once. */
static void h_issue(struct api_req *r)
{
    struct pki *p = ca(r);
    if (!p || !admin_only(r))
        return;
    json_t *b = body_object(r);
    if (!b)
        return;
    const char *dns[100], *ips[100];
    size_t ndns = 0, nips = 0;
    int64_t life = 0;
    enum pki_key_type kt;
    json_t *lt = json_object_get(b, "lifetime");
    if (string_list(json_object_get(b, "dns"), dns, 100, &ndns) ||
        string_list(json_object_get(b, "ips"), ips, 100, &nips)) {
        api_reply_error(r, CORE_E_INVAL, "dns and ips must be arrays of at most 100 strings",
                        NULL);
        goto out;
    }
    if (lt && !json_is_null(lt) && !(json_is_string(lt) && !core_parse_duration_ms(json_string_value(lt), &life)) &&
        !(json_is_integer(lt) && (life = json_integer_value(lt)) > 0)) {
        api_reply_error(r, CORE_E_INVAL,
                        "lifetime must be a duration such as \"24h\" or milliseconds", NULL);
        goto out;
    }
    if (key_type_of(json_string_value(json_object_get(b, "key")), &kt)) {
        api_reply_error(r, CORE_E_INVAL, "key must be ec, rsa2048, rsa3072 or rsa4096", NULL);
        goto out;
    }
    char owner[200];
    snprintf(owner, sizeof(owner), "user:%s", r->who.user);
    struct pki_issue_request req = {.dns_names = dns, .ndns = ndns, .ips = ips, .nips = nips,
                                    .lifetime_ms = life, .owner = owner,
                                    .profile = json_string_value(json_object_get(b, "profile"))};
    struct pki_issued is = {0};
    struct core_err err = {0};
    if (pki_issue(p, &req, kt, &is, &err)) {
        api_reply_err(r, &err);
        goto out;
    }
    char nb[40], na[40], detail[200];
    core_time_format(is.not_before_ms, nb, sizeof(nb));
    core_time_format(is.not_after_ms, na, sizeof(na));
    snprintf(detail, sizeof(detail), "%s%s", ndns ? dns[0] : ips[0],
             ndns + nips > 1 ? " and more" : "");
    struct store_audit_event ev = {.actor = r->who.user, .action = "pki.issue",
                                   .kind = "certificate", .object = is.serial, .detail = detail};
    store_audit_append(api_ctx(r)->st, &ev, NULL);
    api_reply_json(r, 201,
                   json_pack("{s:s,s:s,s:s,s:s?,s:s,s:s,s:s}", "serial", is.serial, "cert",
                             is.cert_pem, "chain", is.chain_pem, "key", is.key_pem, "ca",
                             pki_root_pem(p), "not_before", nb, "not_after", na));
    pki_issued_release(&is);
out:
    json_decref(b);
}

/* POST /api/v1/ca/certificates/{serial}/revoke {reason:"keyCompromise"} (admin) */
static void h_revoke(struct api_req *r)
{
    struct pki *p = ca(r);
    if (!p || !admin_only(r))
        return;
    json_t *b = body_object(r);
    if (!b)
        return;
    json_t *jr = json_object_get(b, "reason");
    int reason = json_is_integer(jr) ? (int)json_integer_value(jr)
                                     : pki_reason_code(json_string_value(jr));
    if (jr && !json_is_string(jr) && !json_is_integer(jr))
        reason = -1;
    struct core_err err = {0};
    if (reason < 0) {
        api_reply_error(r, CORE_E_INVAL,
                        "unknown reason (use keyCompromise, superseded, cessationOfOperation, "
                        "affiliationChanged, privilegeWithdrawn or unspecified)",
                        NULL);
    } else if (pki_revoke(p, r->params[0], reason, &err)) {
        api_reply_err(r, &err);
    } else {
        struct store_audit_event ev = {.actor = r->who.user, .action = "pki.revoke",
                                       .kind = "certificate", .object = r->params[0],
                                       .detail = pki_reason_name(reason)};
        store_audit_append(api_ctx(r)->st, &ev, NULL);
        json_t *out = pki_show(p, r->params[0], &err);
        api_reply_json(r, 200, out ? out : json_pack("{s:s}", "state", "revoked"));
    }
    json_decref(b);
}

const struct api_route api_pki_routes[] = {
    {"GET", "/pki/crl.der", h_crl_der, false, false},
    {"GET", "/pki/crl.pem", h_crl_pem, false, false},
    {"GET", "/pki/ca.pem", h_ca_pem, false, false},
    {"GET", "/pki/chain.pem", h_chain_pem, false, false},
    {"GET", "/api/v1/ca/certificates", h_list, true, false},
    {"POST", "/api/v1/ca/certificates", h_issue, true, false},
    {"GET", "/api/v1/ca/certificates/{serial}", h_show, true, false},
    {"POST", "/api/v1/ca/certificates/{serial}/revoke", h_revoke, true, false},
};
const size_t api_pki_nroutes = sizeof(api_pki_routes) / sizeof(api_pki_routes[0]);
