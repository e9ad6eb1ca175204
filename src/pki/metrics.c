/* The inventory as Prometheus metrics, rendered on the server's /metrics next
 * to the replica gauges (src/api/server.c). Two timestamps per valid
 * certificate let an alert rule compare the time left with the lifetime
 * (PaveCertificateNotRenewed, docs/monitoring.md) without knowing each owner's
 * renewal policy; counts by state give the size of the inventory. Owners are
 * free text ("user:alice", whatever an operator typed), so label values are
 * escaped per the text format (backslash, double quote, newline). */
#include <string.h>

#include "pki/pki.h"
#include "pki/pki_int.h"
#include "store/store.h"

struct metrics_ctx {
    struct core_buf expiry;
    struct core_buf not_before;
    int rc;
};

/* A label value escaped per the Prometheus text format. */
static int add_label_value(struct core_buf *b, const char *s)
{
    int rc = 0;
    for (; s && *s && !rc; s++) {
        if (*s == '\\')
            rc = core_buf_adds(b, "\\\\");
        else if (*s == '"')
            rc = core_buf_adds(b, "\\\"");
        else if (*s == '\n')
            rc = core_buf_adds(b, "\\n");
        else
            rc = core_buf_addc(b, *s);
    }
    return rc;
}

static int add_sample(struct core_buf *b, const char *name, const char *serial, const char *owner,
                      int64_t ms)
{
    int rc = core_buf_adds(b, name);
    rc |= core_buf_adds(b, "{serial=\"");
    rc |= add_label_value(b, serial);
    rc |= core_buf_adds(b, "\",owner=\"");
    rc |= add_label_value(b, owner);
    /* whole seconds: certificates carry no sub-second times */
    rc |= core_buf_addf(b, "\"} %lld\n", (long long)(ms / 1000));
    return rc;
}

static int cert_row(void *arg, const struct store_row *row)
{
    struct metrics_ctx *c = arg;
    const char *serial = store_row_text(row, "serial"), *owner = store_row_text(row, "owner");
    c->rc |= add_sample(&c->expiry, "pave_certificate_expiry_timestamp_seconds", serial, owner,
                        store_row_int(row, "not_after_ms"));
    c->rc |= add_sample(&c->not_before, "pave_certificate_not_before_timestamp_seconds", serial,
                        owner, store_row_int(row, "not_before_ms"));
    return c->rc ? CORE_E_NOMEM : 0;
}

int pki_metrics(struct pki *p, struct core_buf *out)
{
    if (!p || !p->st)
        return 0;
    struct metrics_ctx c = {.rc = 0};
    struct core_err err = {0};
    int64_t now = core_now_ms(), valid = 0, expired = 0, revoked = 0;
    struct store_value v[] = {STORE_V_INT(now)};
    int rc;
    core_buf_init(&c.expiry, 0);
    core_buf_init(&c.not_before, 0);
    if ((rc = store_query(p->st,
                          "SELECT serial, owner, not_before_ms, not_after_ms FROM pki_certs "
                          "WHERE state = 'valid' AND not_after_ms >= ? ORDER BY serial",
                          v, 1, cert_row, &c, &err)) ||
        (rc = store_query_int(p->st,
                              "SELECT COUNT(*) FROM pki_certs WHERE state = 'valid' AND "
                              "not_after_ms >= ?",
                              v, 1, &valid, &err)) ||
        (rc = store_query_int(p->st,
                              "SELECT COUNT(*) FROM pki_certs WHERE state = 'valid' AND "
                              "not_after_ms < ?",
                              v, 1, &expired, &err)) ||
        (rc = store_query_int(p->st, "SELECT COUNT(*) FROM pki_certs WHERE state = 'revoked'", NULL,
                              0, &revoked, &err))) {
        log_warn("pki", "certificate metrics unavailable", LOG_STR("error", err.msg));
        goto out;
    }
    if (c.rc) {
        rc = CORE_E_NOMEM;
        goto out;
    }
    rc = core_buf_adds(out, "# HELP pave_certificate_expiry_timestamp_seconds When a valid "
                            "certificate of the internal CA expires (not after), unix seconds.\n"
                            "# TYPE pave_certificate_expiry_timestamp_seconds gauge\n");
    rc |= core_buf_add(out, c.expiry.data ? c.expiry.data : "", c.expiry.len);
    rc |= core_buf_adds(out, "# HELP pave_certificate_not_before_timestamp_seconds When a valid "
                             "certificate of the internal CA became valid (not before), unix "
                             "seconds.\n"
                             "# TYPE pave_certificate_not_before_timestamp_seconds gauge\n");
    rc |= core_buf_add(out, c.not_before.data ? c.not_before.data : "", c.not_before.len);
    rc |= core_buf_addf(out,
                        "# HELP pave_certificates_total Certificates in the internal CA's "
                        "inventory by state.\n"
                        "# TYPE pave_certificates_total gauge\n"
                        "pave_certificates_total{state=\"valid\"} %lld\n"
                        "pave_certificates_total{state=\"expired\"} %lld\n"
                        "pave_certificates_total{state=\"revoked\"} %lld\n",
                        (long long)valid, (long long)expired, (long long)revoked);
    if (rc)
        rc = rc == CORE_E_NOMEM ? CORE_E_NOMEM : CORE_E_TOO_BIG;
out:
    core_buf_release(&c.expiry);
    core_buf_release(&c.not_before);
    return rc;
}
