/* libFuzzer target: the parallel billing scan (src/cloud/scan.c) against the
 * sequential reader it must equal. The input is a CSV file (a real header is
 * prepended when the first byte is below 6, which picks the format). It is
 * scanned with 1 to 4 threads and byte-sized ranges, with and without the fast
 * path, and every row, cost, allocation tag, malformed row and line number
 * must match cloud_csv_next() + cloud_billing_row(); any difference aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cloud/cloud.h"

struct row {
    int64_t line;
    int64_t billed, effective;
    char key[96];
    bool ok;
};

static void key_of(const struct cloud_charge *c, char out[96])
{
    snprintf(out, 96, "%.20s|%.20s|%.20s|%.20s|%.7s", c->tag_team ? c->tag_team : "-",
             c->tag_service ? c->tag_service : "-", c->tag_env ? c->tag_env : "-",
             c->tag_cost_center ? c->tag_cost_center : "-", c->period);
}

static size_t reference(const char *d, size_t n, struct row *out, size_t max)
{
    struct core_err err = {0};
    struct cloud_csv *r = cloud_csv_open_mem(d, n, &err);
    if (!r)
        return 0;
    struct cloud_map m;
    memset(&m, 0, sizeof(m));
    struct cloud_charge c;
    cloud_charge_init(&c);
    char **f;
    size_t nf, k = 0, nbad = 0;
    int64_t line;
    int rc = cloud_csv_next(r, &f, &nf, &line, &err);
    if (rc != 1 || cloud_billing_map(&m, NULL, f, nf, &err)) {
        k = (size_t)-1;
        goto out;
    }
    while ((rc = cloud_csv_next(r, &f, &nf, &line, &err)) != 0 && k < max) {
        if (rc < 0 && rc != CORE_E_INVAL)
            break;
        bool ok = rc == 1 && cloud_billing_row(&m, f, nf, &c, &err) == 0;
        if (!ok && nbad++ >= CLOUD_IMPORT_BAD_MAX)
            continue;
        struct row *x = &out[k++];
        memset(x, 0, sizeof(*x));
        x->line = line;
        x->ok = ok;
        if (ok) {
            x->billed = c.billed_n;
            x->effective = c.effective_n;
            key_of(&c, x->key);
        }
    }
out:
    cloud_map_release(&m);
    cloud_charge_release(&c);
    cloud_csv_free(r);
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const headers[6] = {
        "BillingPeriodStart,ChargePeriodStart,BilledCost,EffectiveCost,Tags,X\n",
        "ChargePeriodStart,BilledCost,BillingPeriodStart,Tags\n",
        "BillingPeriodStart,ChargePeriodStart,BilledCost,Tags\r\n",
        "\xEF\xBB\xBF"
        "BillingPeriodStart,ChargePeriodStart,BilledCost,ListCost,Tags,"
        "BillingAccountId\n",
        "identity/LineItemId,lineItem/UnblendedCost,lineItem/"
        "UsageStartDate,resourceTags/user:team\n",
        "SubscriptionId,Date,MeterCategory,CostInBillingCurrency,Tags\n",
    };
    if (size < 1 || size > (256u << 10))
        return 0;
    char *text = malloc(size + 200);
    size_t n = 0;
    if (data[0] < 6) {
        n = strlen(headers[data[0]]);
        memcpy(text, headers[data[0]], n);
        data++, size--;
    }
    memcpy(text + n, data, size);
    n += size;
    enum { MAXR = 4096 };
    struct row *ref = malloc(sizeof(*ref) * MAXR);
    size_t nref = reference(text, n, ref, MAXR);
    if (nref == (size_t)-1 || nref >= MAXR)
        goto done;
    int fd = memfd_create("scan", 0);
    if (fd < 0 || write(fd, text, n) != (ssize_t)n) {
        if (fd >= 0)
            close(fd);
        goto done;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct row *got = malloc(sizeof(*got) * MAXR);
    for (int t = 1; t <= 4; t++) {
        struct cloud_scan_opts o = {.threads = t, .min_range = 1, .keys_only = t % 2 == 0};
        struct core_err err = {0};
        struct cloud_scan *s = cloud_scan_open(path, &o, &err);
        if (!s)
            abort(); /* the reference read the header */
        size_t ng = 0;
        struct cloud_scan_batch b;
        int rc;
        while ((rc = cloud_scan_next(s, &b, &err)) == 1)
            for (size_t i = 0; i < b.n && ng < MAXR; i++, ng++) {
                memset(&got[ng], 0, sizeof(got[ng]));
                got[ng].line = b.lines[i];
                got[ng].ok = true;
                got[ng].billed = b.rows[i].billed_n;
                got[ng].effective = b.rows[i].effective_n;
                key_of(&b.rows[i], got[ng].key);
            }
        if (rc < 0)
            abort();
        struct cloud_scan_stats st;
        cloud_scan_stats(s, &st);
        /* merge the bad lines into the good rows, by line */
        size_t gi = 0, bi = 0, k = 0;
        struct row *all = malloc(sizeof(*all) * (ng + st.nbad + 1));
        while (gi < ng || bi < st.nbad) {
            if (bi < st.nbad && (gi == ng || st.bad[bi].line < got[gi].line)) {
                memset(&all[k], 0, sizeof(all[k]));
                all[k++].line = st.bad[bi++].line;
            } else {
                all[k++] = got[gi++];
            }
        }
        if (k != nref)
            abort();
        for (size_t i = 0; i < k; i++)
            if (all[i].line != ref[i].line || all[i].ok != ref[i].ok ||
                all[i].billed != ref[i].billed || all[i].effective != ref[i].effective ||
                strcmp(all[i].key, ref[i].key) != 0)
                abort();
        free(all);
        cloud_scan_free(s);
    }
    free(got);
    close(fd);
done:
    free(ref);
    free(text);
    return 0;
}
