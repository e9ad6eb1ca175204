/* Billing exports, the pure half: a streaming RFC 4180 reader, the format table
 * that maps each provider's export onto FOCUS columns, and the normalization of
 * messy values. No store here, so the fuzzer can drive it
 * (fuzz/fuzz_billing_csv.c). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include "cloud/cloud.h"

#define IBUF_SIZE (64 * 1024)
#define RECORD_MAX (16u << 20)

/* ---- the reader ---- */

struct cloud_csv {
    gzFile gz;      /* NULL for memory input */
    const char *in; /* current input window */
    size_t ipos, ilen;
    char *ibuf; /* owned window for gz input */
    bool eof;
    bool started;        /* BOM checked */
    struct core_buf rec; /* the record: fields separated by NUL */
    size_t *offs;
    char **fields;
    int64_t line; /* line of the next unread byte */
};

static struct cloud_csv *csv_new(struct core_err *err)
{
    struct cloud_csv *r = core_calloc(1, sizeof(*r));
    if (!r) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    core_buf_init(&r->rec, RECORD_MAX);
    r->offs = core_malloc(sizeof(*r->offs) * CLOUD_CSV_FIELDS_MAX);
    r->fields = core_malloc(sizeof(*r->fields) * CLOUD_CSV_FIELDS_MAX);
    if (!r->offs || !r->fields) {
        cloud_csv_free(r);
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    r->line = 1;
    return r;
}

struct cloud_csv *cloud_csv_open_file(const char *path, struct core_err *err)
{
    struct cloud_csv *r = csv_new(err);
    if (!r)
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        core_err_set(err, CORE_E_IO, "cannot open '%s': %s", path, strerror(errno));
        cloud_csv_free(r);
        return NULL;
    }
    /* gzdopen reads plain files transparently, so one path serves both. */
    if (!(r->gz = gzdopen(fd, "rb")) || !(r->ibuf = core_malloc(IBUF_SIZE))) {
        if (!r->gz)
            close(fd);
        cloud_csv_free(r);
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    gzbuffer(r->gz, 128 * 1024);
    r->in = r->ibuf;
    return r;
}

struct cloud_csv *cloud_csv_open_mem(const char *data, size_t len, struct core_err *err)
{
    struct cloud_csv *r = csv_new(err);
    if (!r)
        return NULL;
    r->in = data;
    r->ilen = len;
    r->eof = true;
    return r;
}

void cloud_csv_free(struct cloud_csv *r)
{
    if (!r)
        return;
    if (r->gz)
        gzclose(r->gz);
    core_free(r->ibuf);
    core_buf_release(&r->rec);
    core_free(r->offs);
    core_free(r->fields);
    core_free(r);
}

int64_t cloud_csv_offset(const struct cloud_csv *r)
{
    if (!r->gz)
        return (int64_t)r->ipos;
    return (int64_t)gzoffset(r->gz);
}

/* returns: a byte, -1 at end of input, -2 on a read error. */
static inline int csv_getc(struct cloud_csv *r)
{
    if (r->ipos < r->ilen)
        return (unsigned char)r->in[r->ipos++];
    if (r->eof)
        return -1;
    int n = gzread(r->gz, r->ibuf, IBUF_SIZE);
    if (n < 0)
        return -2;
    if (n == 0) {
        r->eof = true;
        return -1;
    }
    r->ilen = (size_t)n;
    r->ipos = 1;
    return (unsigned char)r->ibuf[0];
}

static inline int csv_peek(struct cloud_csv *r)
{
    int c = csv_getc(r);
    if (c >= 0)
        r->ipos--; /* the window still holds the byte just read */
    return c;
}

enum { ST_START, ST_PLAIN, ST_QUOTED, ST_QUOTE_SEEN };

/* core_buf_addc without a call per byte: reserve in steps, keep the NUL invariant. */
static inline int rec_putc(struct core_buf *b, char c)
{
    if (b->len + 1 >= b->cap) {
        int rc = core_buf_reserve(b, 4096);
        if (rc)
            return rc;
    }
    b->data[b->len++] = c;
    b->data[b->len] = 0;
    return 0;
}

int cloud_csv_next(struct cloud_csv *r, char ***fields, size_t *nfields, int64_t *line,
                   struct core_err *err)
{
    if (!r->started) {
        r->started = true;
        if (csv_peek(r) == 0xEF) {
            int a = csv_getc(r), b = csv_getc(r), c = csv_getc(r);
            if (a != 0xEF || b != 0xBB || c != 0xBF)
                return core_err_set(err, CORE_E_INVAL, "line 1: a broken byte-order mark");
        }
    }
again:
    core_buf_clear(&r->rec);
    size_t nf = 0, flen = 0;
    int state = ST_START;
    const char *bad = NULL;
    int64_t start_line = r->line;
    bool any = false, terminated = false;
    r->offs[0] = 0;
    for (;;) {
        int c = csv_getc(r);
        if (c == -2)
            return core_err_set(err, CORE_E_IO,
                                "line %lld: read error (a truncated or corrupt "
                                "gzip stream?)",
                                (long long)r->line);
        if (c == -1) {
            if (!any)
                return 0;
            if (state == ST_QUOTED && !bad)
                bad = "unclosed quote at end of input";
            break;
        }
        any = true;
        if (state == ST_QUOTED) {
            if (c == '"') {
                state = ST_QUOTE_SEEN;
                continue;
            }
            if (c == '\n')
                r->line++;
        } else {
            if (c == '"') {
                if (state == ST_START) {
                    state = ST_QUOTED;
                    continue;
                }
                if (state == ST_QUOTE_SEEN) { /* "" inside quotes */
                    state = ST_QUOTED;
                    goto add;
                }
                if (!bad)
                    bad = "a quote inside an unquoted field";
                goto add;
            }
            if (c == ',' || c == '\n' || c == '\r') {
                if (rec_putc(&r->rec, 0))
                    return core_err_set(err, CORE_E_TOO_BIG, "line %lld: record over %u bytes",
                                        (long long)start_line, RECORD_MAX);
                nf++;
                if (c == ',') {
                    if (nf >= CLOUD_CSV_FIELDS_MAX) {
                        if (!bad)
                            bad = "too many fields";
                        nf = CLOUD_CSV_FIELDS_MAX - 1;
                        r->rec.len = r->offs[nf];
                    }
                    r->offs[nf] = r->rec.len;
                    flen = 0;
                    state = ST_START;
                    continue;
                }
                if (c == '\r' && csv_peek(r) == '\n')
                    csv_getc(r);
                r->line++;
                terminated = true;
                break;
            }
            if (state == ST_QUOTE_SEEN) {
                if (!bad)
                    bad = "text after a closing quote";
                state = ST_PLAIN;
            } else if (state == ST_START) {
                state = ST_PLAIN;
            }
        }
    add:
        if (flen >= CLOUD_CSV_FIELD_MAX) {
            if (!bad)
                bad = "a field over 1 MiB";
            continue;
        }
        flen++;
        if (rec_putc(&r->rec, (char)c))
            return core_err_set(err, CORE_E_TOO_BIG, "line %lld: record over %u bytes",
                                (long long)start_line, RECORD_MAX);
    }
    if (!terminated) { /* end of input without a final newline: close the last
                          field */
        if (rec_putc(&r->rec, 0))
            return core_err_set(err, CORE_E_TOO_BIG, "line %lld: record over %u bytes",
                                (long long)start_line, RECORD_MAX);
        nf++;
    }
    *line = start_line;
    /* A blank line is no record. */
    if (nf == 1 && r->rec.len == 1 && !bad)
        goto again;
    for (size_t i = 0; i < nf; i++)
        r->fields[i] = r->rec.data + r->offs[i];
    *fields = r->fields;
    *nfields = nf;
    if (bad)
        return core_err_set(err, CORE_E_INVAL, "line %lld: %s", (long long)start_line, bad);
    return 1;
}

/* ---- the format table ---- */

static const char *const col_names[CLOUD_COL_COUNT] = {
    "BillingPeriodStart",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "BillingCurrency",
    "BillingAccountId",
    "SubAccountId",
    "ProviderName",
    "ServiceName",
    "ServiceCategory",
    "ChargeCategory",
    "RegionId",
    "ResourceId",
    "SkuId",
    "Tags",
    "CommitmentDiscountId",
    "CommitmentDiscountType",
    "CommitmentDiscountStatus",
    "PricingCategory",
    "ConsumedQuantity",
    "x_UsageType",
};

const char *cloud_col_name(enum cloud_col c)
{
    return (unsigned)c < CLOUD_COL_COUNT ? col_names[c] : "?";
}

/* Header matching is case-insensitive, so EA's "CostInBillingCurrency" and
 * MCA's "costInBillingCurrency" are one entry. Keep docs/billing-formats.md in
 * step with this table. */
const struct cloud_format cloud_billing_formats[] = {
    {"focus",
     "FinOps FOCUS 1.0, 1.1 and 1.2 (any provider)",
     NULL,
     {"BilledCost", "ChargePeriodStart", "BillingPeriodStart", NULL},
     {
         [CLOUD_COL_BILLING_PERIOD_START] = "BillingPeriodStart",
         [CLOUD_COL_CHARGE_PERIOD_START] = "ChargePeriodStart",
         [CLOUD_COL_CHARGE_PERIOD_END] = "ChargePeriodEnd",
         [CLOUD_COL_BILLED_COST] = "BilledCost",
         [CLOUD_COL_EFFECTIVE_COST] = "EffectiveCost",
         [CLOUD_COL_LIST_COST] = "ListCost",
         [CLOUD_COL_BILLING_CURRENCY] = "BillingCurrency",
         [CLOUD_COL_BILLING_ACCOUNT_ID] = "BillingAccountId",
         [CLOUD_COL_SUB_ACCOUNT_ID] = "SubAccountId",
         [CLOUD_COL_PROVIDER_NAME] = "ProviderName|ServiceProviderName",
         [CLOUD_COL_SERVICE_NAME] = "ServiceName",
         [CLOUD_COL_SERVICE_CATEGORY] = "ServiceCategory",
         [CLOUD_COL_CHARGE_CATEGORY] = "ChargeCategory|ChargeType",
         [CLOUD_COL_REGION_ID] = "RegionId|Region",
         [CLOUD_COL_RESOURCE_ID] = "ResourceId",
         [CLOUD_COL_SKU_ID] = "SkuId",
         [CLOUD_COL_TAGS] = "Tags",
         [CLOUD_COL_COMMITMENT_ID] = "CommitmentDiscountId",
         [CLOUD_COL_COMMITMENT_TYPE] = "CommitmentDiscountType",
         [CLOUD_COL_COMMITMENT_STATUS] = "CommitmentDiscountStatus",
         [CLOUD_COL_PRICING_CATEGORY] = "PricingCategory",
         [CLOUD_COL_CONSUMED_QUANTITY] = "ConsumedQuantity|PricingQuantity",
         [CLOUD_COL_USAGE_TYPE] = "x_UsageType|ChargeDescription|SkuPriceId",
     },
     NULL},
    {"aws-cur2",
     "AWS Cost and Usage Report 2.0 (CSV)",
     "AWS",
     {"identity_line_item_id", "line_item_unblended_cost", NULL},
     {
         [CLOUD_COL_BILLING_PERIOD_START] = "bill_billing_period_start_date",
         [CLOUD_COL_CHARGE_PERIOD_START] = "line_item_usage_start_date",
         [CLOUD_COL_CHARGE_PERIOD_END] = "line_item_usage_end_date",
         [CLOUD_COL_BILLED_COST] = "line_item_unblended_cost",
         [CLOUD_COL_EFFECTIVE_COST] = "line_item_unblended_cost",
         [CLOUD_COL_LIST_COST] = "pricing_public_on_demand_cost",
         [CLOUD_COL_BILLING_CURRENCY] = "line_item_currency_code",
         [CLOUD_COL_BILLING_ACCOUNT_ID] = "bill_payer_account_id",
         [CLOUD_COL_SUB_ACCOUNT_ID] = "line_item_usage_account_id",
         [CLOUD_COL_SERVICE_NAME] = "product_product_name|line_item_product_code",
         [CLOUD_COL_SERVICE_CATEGORY] = "product_product_family",
         [CLOUD_COL_CHARGE_CATEGORY] = "line_item_line_item_type",
         [CLOUD_COL_REGION_ID] = "product_region_code|line_item_availability_zone",
         [CLOUD_COL_RESOURCE_ID] = "line_item_resource_id",
         [CLOUD_COL_SKU_ID] = "product_sku",
         [CLOUD_COL_TAGS] = "resource_tags",
         [CLOUD_COL_COMMITMENT_ID] = "reservation_reservation_a_r_n|savings_plan_savings_plan_a_r_n",
         [CLOUD_COL_PRICING_CATEGORY] = "pricing_term",
         [CLOUD_COL_CONSUMED_QUANTITY] = "line_item_usage_amount",
         [CLOUD_COL_USAGE_TYPE] = "line_item_usage_type",
     },
     NULL},
    {"aws-cur",
     "AWS Cost and Usage Report, legacy (CSV)",
     "AWS",
     {"identity/LineItemId", "lineItem/UnblendedCost", NULL},
     {
         [CLOUD_COL_BILLING_PERIOD_START] = "bill/BillingPeriodStartDate",
         [CLOUD_COL_CHARGE_PERIOD_START] = "lineItem/UsageStartDate",
         [CLOUD_COL_CHARGE_PERIOD_END] = "lineItem/UsageEndDate",
         [CLOUD_COL_BILLED_COST] = "lineItem/UnblendedCost",
         [CLOUD_COL_EFFECTIVE_COST] = "lineItem/UnblendedCost",
         [CLOUD_COL_LIST_COST] = "pricing/publicOnDemandCost",
         [CLOUD_COL_BILLING_CURRENCY] = "lineItem/CurrencyCode",
         [CLOUD_COL_BILLING_ACCOUNT_ID] = "bill/PayerAccountId",
         [CLOUD_COL_SUB_ACCOUNT_ID] = "lineItem/UsageAccountId",
         [CLOUD_COL_SERVICE_NAME] = "product/ProductName|lineItem/ProductCode",
         [CLOUD_COL_SERVICE_CATEGORY] = "product/productFamily",
         [CLOUD_COL_CHARGE_CATEGORY] = "lineItem/LineItemType",
         [CLOUD_COL_REGION_ID] = "product/regionCode|product/region|lineItem/AvailabilityZone",
         [CLOUD_COL_RESOURCE_ID] = "lineItem/ResourceId",
         [CLOUD_COL_SKU_ID] = "product/sku",
         [CLOUD_COL_COMMITMENT_ID] = "reservation/ReservationARN|savingsPlan/SavingsPlanARN",
         [CLOUD_COL_PRICING_CATEGORY] = "pricing/term",
         [CLOUD_COL_CONSUMED_QUANTITY] = "lineItem/UsageAmount",
         [CLOUD_COL_USAGE_TYPE] = "lineItem/UsageType",
     },
     "resourceTags/"},
    {"azure",
     "Azure cost details, EA and MCA, actual and amortized (CSV)",
     "Microsoft",
     {"SubscriptionId", "Date", "MeterCategory", NULL},
     {
         [CLOUD_COL_BILLING_PERIOD_START] = "BillingPeriodStartDate",
         [CLOUD_COL_CHARGE_PERIOD_START] = "Date|UsageDateTime",
         [CLOUD_COL_BILLED_COST] = "CostInBillingCurrency|Cost|PreTaxCost",
         [CLOUD_COL_EFFECTIVE_COST] = "CostInBillingCurrency|Cost|PreTaxCost",
         [CLOUD_COL_LIST_COST] = "PaygCostInBillingCurrency",
         [CLOUD_COL_BILLING_CURRENCY] = "BillingCurrency|BillingCurrencyCode|Currency",
         [CLOUD_COL_BILLING_ACCOUNT_ID] = "BillingAccountId|BillingProfileId",
         [CLOUD_COL_SUB_ACCOUNT_ID] = "SubscriptionId",
         [CLOUD_COL_SERVICE_NAME] = "ConsumedService|MeterCategory",
         [CLOUD_COL_SERVICE_CATEGORY] = "ServiceFamily|MeterCategory",
         [CLOUD_COL_CHARGE_CATEGORY] = "ChargeType",
         [CLOUD_COL_REGION_ID] = "ResourceLocation|Location",
         [CLOUD_COL_RESOURCE_ID] = "ResourceId|InstanceId|InstanceName",
         [CLOUD_COL_SKU_ID] = "MeterId|ProductId",
         [CLOUD_COL_TAGS] = "Tags",
         [CLOUD_COL_COMMITMENT_ID] = "ReservationId|BenefitId",
         [CLOUD_COL_COMMITMENT_TYPE] = "PricingModel",
         [CLOUD_COL_PRICING_CATEGORY] = "PricingModel",
         [CLOUD_COL_CONSUMED_QUANTITY] = "Quantity|UsageQuantity",
         [CLOUD_COL_USAGE_TYPE] = "MeterName|MeterSubCategory",
     },
     NULL},
    {"gcp",
     "Google Cloud billing export (BigQuery table saved as CSV)",
     "Google Cloud",
     {"billing_account_id", "usage_start_time", "cost", NULL},
     {
         [CLOUD_COL_BILLING_PERIOD_START] = "invoice.month|invoice_month",
         [CLOUD_COL_CHARGE_PERIOD_START] = "usage_start_time",
         [CLOUD_COL_CHARGE_PERIOD_END] = "usage_end_time",
         [CLOUD_COL_BILLED_COST] = "cost",
         [CLOUD_COL_EFFECTIVE_COST] = "cost",
         [CLOUD_COL_BILLING_CURRENCY] = "currency",
         [CLOUD_COL_BILLING_ACCOUNT_ID] = "billing_account_id",
         [CLOUD_COL_SUB_ACCOUNT_ID] = "project.id|project_id",
         [CLOUD_COL_SERVICE_NAME] = "service.description|service_description",
         [CLOUD_COL_CHARGE_CATEGORY] = "cost_type",
         [CLOUD_COL_REGION_ID] = "location.region|location_region",
         [CLOUD_COL_RESOURCE_ID] = "resource.global_name|resource.name",
         [CLOUD_COL_SKU_ID] = "sku.id|sku_id",
         [CLOUD_COL_TAGS] = "labels",
         [CLOUD_COL_CONSUMED_QUANTITY] = "usage.amount|usage_amount",
         [CLOUD_COL_USAGE_TYPE] = "sku.description|sku_description",
     },
     NULL},
    {"oci",
     "Oracle Cloud Infrastructure cost report (CSV)",
     "Oracle",
     {"lineItem/intervalUsageStart", "cost/myCost", NULL},
     {
         [CLOUD_COL_CHARGE_PERIOD_START] = "lineItem/intervalUsageStart",
         [CLOUD_COL_CHARGE_PERIOD_END] = "lineItem/intervalUsageEnd",
         [CLOUD_COL_BILLED_COST] = "cost/myCost",
         [CLOUD_COL_EFFECTIVE_COST] = "cost/myCost",
         [CLOUD_COL_BILLING_CURRENCY] = "cost/currencyCode",
         [CLOUD_COL_BILLING_ACCOUNT_ID] = "lineItem/tenantId",
         [CLOUD_COL_SUB_ACCOUNT_ID] = "product/compartmentId",
         [CLOUD_COL_SERVICE_NAME] = "product/service",
         [CLOUD_COL_REGION_ID] = "product/region",
         [CLOUD_COL_RESOURCE_ID] = "product/resourceId",
         [CLOUD_COL_SKU_ID] = "cost/productSku",
         [CLOUD_COL_CONSUMED_QUANTITY] = "usage/billedQuantity",
         [CLOUD_COL_USAGE_TYPE] = "product/Description",
     },
     "tags/"},
};
const size_t cloud_billing_nformats =
    sizeof(cloud_billing_formats) / sizeof(cloud_billing_formats[0]);

/* AWS effective cost depends on the line item type; these extra columns are
 * looked up per map. */
enum {
    AUX_SP_EFFECTIVE = 0,
    AUX_RI_EFFECTIVE,
    AUX_RI_UNUSED_UPFRONT,
    AUX_RI_UNUSED_RECURRING,
    AUX_SP_TOTAL_COMMITMENT,
    AUX_SP_USED_COMMITMENT,
    AUX_COUNT
};
static const char *const aux_cur[AUX_COUNT] = {
    "savingsPlan/SavingsPlanEffectiveCost",
    "reservation/EffectiveCost",
    "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
    "reservation/UnusedRecurringFee",
    "savingsPlan/TotalCommitmentToDate",
    "savingsPlan/UsedCommitment"};
static const char *const aux_cur2[AUX_COUNT] = {
    "savings_plan_savings_plan_effective_cost",
    "reservation_effective_cost",
    "reservation_unused_amortized_upfront_fee_for_billing_period",
    "reservation_unused_recurring_fee",
    "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment"};

static int find_col(char *const *hdr, size_t n, const char *name, size_t namelen)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(hdr[i]) == namelen && strncasecmp(hdr[i], name, namelen) == 0)
            return (int)i;
    return -1;
}

static bool format_matches(const struct cloud_format *f, char *const *hdr, size_t n)
{
    for (int i = 0; i < 4 && f->detect[i]; i++)
        if (find_col(hdr, n, f->detect[i], strlen(f->detect[i])) < 0)
            return false;
    return true;
}

void cloud_map_release(struct cloud_map *m)
{
    for (size_t i = 0; i < m->ntags; i++)
        core_free(m->tag_keys[i]);
    core_free(m->tag_keys);
    core_free(m->tag_cols);
    memset(m, 0, sizeof(*m));
}

int cloud_billing_map(struct cloud_map *m, const char *format, char *const *hdr, size_t n,
                      struct core_err *err)
{
    memset(m, 0, sizeof(*m));
    const struct cloud_format *f = NULL;
    for (size_t i = 0; i < cloud_billing_nformats; i++) {
        const struct cloud_format *c = &cloud_billing_formats[i];
        if (format ? strcmp(c->name, format) == 0 : format_matches(c, hdr, n)) {
            f = c;
            break;
        }
    }
    if (!f && format)
        return core_err_set(err, CORE_E_INVAL,
                            "unknown billing format '%s' (focus, aws-cur, aws-cur2, azure, gcp, "
                            "oci)",
                            format);
    if (!f)
        return core_err_set(err, CORE_E_UNSUPPORTED,
                            "unrecognized billing export: the header (%zu columns, first '%s') "
                            "matches none of focus, aws-cur, aws-cur2, azure, gcp, oci",
                            n, n ? hdr[0] : "");
    m->fmt = f;
    m->ncols = n;
    for (int c = 0; c < CLOUD_COL_COUNT; c++) {
        int k = 0;
        for (const char *p = f->cols[c]; p && *p && k < 3;) {
            const char *e = strchr(p, '|');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            int idx = find_col(hdr, n, p, len);
            if (idx >= 0)
                m->idx[c][k++] = idx;
            p = e ? e + 1 : p + len;
        }
        m->idx[c][k] = -1;
    }
    if (f->cols[CLOUD_COL_BILLED_COST] && m->idx[CLOUD_COL_BILLED_COST][0] < 0)
        return core_err_set(err, CORE_E_UNSUPPORTED, "%s export without a cost column", f->name);
    const char *const *aux = strcmp(f->name, "aws-cur") == 0    ? aux_cur
                             : strcmp(f->name, "aws-cur2") == 0 ? aux_cur2
                                                                : NULL;
    for (int a = 0; a < AUX_COUNT; a++)
        m->aux[a] = aux ? find_col(hdr, n, aux[a], strlen(aux[a])) : -1;
    if (f->tag_prefix) {
        size_t plen = strlen(f->tag_prefix);
        m->tag_cols = core_calloc(n ? n : 1, sizeof(*m->tag_cols));
        m->tag_keys = core_calloc(n ? n : 1, sizeof(*m->tag_keys));
        if (!m->tag_cols || !m->tag_keys) {
            cloud_map_release(m);
            return core_err_set(err, CORE_E_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++)
            if (strncasecmp(hdr[i], f->tag_prefix, plen) == 0 && hdr[i][plen]) {
                if (!(m->tag_keys[m->ntags] = core_strdup(hdr[i] + plen))) {
                    cloud_map_release(m);
                    return core_err_set(err, CORE_E_NOMEM, "out of memory");
                }
                m->tag_cols[m->ntags++] = (int)i;
            }
    }
    return 0;
}

/* ---- value normalization ---- */

bool cloud_is_null(const char *s)
{
    if (!s)
        return true;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s)
        return true;
    static const char *const nulls[] = {"NULL", "None", "N/A", "nan", "\\N"};
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcasecmp(s, nulls[i]) == 0)
            return true;
    return false;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

/* Days since 1970-01-01 (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int cloud_parse_time(const char *s, char out[21])
{
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0, off = 0;
    const char *p = s;
    while (*p == ' ')
        p++;
    size_t len = strlen(p);
    if (len >= 8 && isdigit((unsigned char)p[0]) &&
        (p[1] == '/' || (isdigit((unsigned char)p[1]) && p[2] == '/'))) {
        /* MM/DD/YYYY (also M/D/YYYY) */
        char *e;
        long a = strtol(p, &e, 10);
        if (*e != '/')
            return CORE_E_INVAL;
        long b = strtol(e + 1, &e, 10);
        if (*e != '/')
            return CORE_E_INVAL;
        p = e + 1;
        if (digits(&p, 4, &y))
            return CORE_E_INVAL;
        mo = (int)a;
        d = (int)b;
    } else {
        if (digits(&p, 4, &y))
            return CORE_E_INVAL;
        if (*p == '-')
            p++;
        if (digits(&p, 2, &mo))
            return CORE_E_INVAL;
        if (*p == '\0' || *p == ' ') {
            d = 1; /* YYYYMM or YYYY-MM */
        } else {
            if (*p == '-')
                p++;
            if (digits(&p, 2, &d))
                return CORE_E_INVAL;
        }
    }
    if ((*p == 'T' || *p == ' ') && isdigit((unsigned char)p[1])) {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
            return CORE_E_INVAL;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &se))
                return CORE_E_INVAL;
        }
        if (*p == '.')
            for (p++; isdigit((unsigned char)*p); p++)
                ;
        while (*p == ' ')
            p++;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
            if (digits(&p, 2, &oh))
                return CORE_E_INVAL;
            if (*p == ':')
                p++;
            if (*p && digits(&p, 2, &om))
                return CORE_E_INVAL;
            off = sign * (oh * 60 + om);
        } else if (strncasecmp(p, "UTC", 3) == 0) {
            p += 3;
        }
        /* "12:00:00 AM" style */
        while (*p == ' ')
            p++;
        if ((p[0] == 'A' || p[0] == 'P') && p[1] == 'M') {
            if (h < 1 || h > 12)
                return CORE_E_INVAL;
            h = h % 12 + (p[0] == 'P' ? 12 : 0);
            p += 2;
        }
    }
    while (*p == ' ')
        p++;
    if (*p)
        return CORE_E_INVAL;
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 60)
        return CORE_E_INVAL;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - (int64_t)off * 60;
    if (t < 0)
        return CORE_E_INVAL;
    int64_t days = t / 86400, rem = t % 86400;
    civil_from_days(days, &y, &mo, &d);
    if (y > 9999)
        return CORE_E_INVAL;
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02dZ", y, mo, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60));
    memcpy(out, tmp, 20);
    out[20] = 0;
    return 0;
}

int cloud_parse_money(const char *s, int64_t *out)
{
    while (*s == ' ')
        s++;
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    while (*e == ' ')
        e++;
    if (e == s || *e || errno == ERANGE || !isfinite(v) || fabs(v) > 9.0e9)
        return CORE_E_INVAL;
    *out = llround(v * 1e9);
    return 0;
}

void cloud_money_format(int64_t n, int decimals, char *out, size_t outsz)
{
    if (decimals < 0)
        decimals = 0;
    if (decimals > 9)
        decimals = 9;
    int64_t scale = 1;
    for (int i = decimals; i < 9; i++)
        scale *= 10;
    bool neg = n < 0;
    uint64_t a = neg ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
    a = (a + (uint64_t)scale / 2) / (uint64_t)scale;
    uint64_t p10 = 1;
    for (int i = 0; i < decimals; i++)
        p10 *= 10;
    if (decimals)
        snprintf(out, outsz, "%s%llu.%0*llu", neg && a ? "-" : "", (unsigned long long)(a / p10),
                 decimals, (unsigned long long)(a % p10));
    else
        snprintf(out, outsz, "%s%llu", neg && a ? "-" : "", (unsigned long long)a);
}

/* FOCUS ChargeCategory from a provider's own charge type. */
static const char *charge_category(const char *raw)
{
    static const struct {
        const char *raw, *focus;
    } map[] = {
        {"Usage", "Usage"},
        {"DiscountedUsage", "Usage"},
        {"SavingsPlanCoveredUsage", "Usage"},
        {"regular", "Usage"},
        {"Tax", "Tax"},
        {"Credit", "Credit"},
        {"Refund", "Credit"},
        {"Discount", "Credit"},
        {"BundledDiscount", "Credit"},
        {"EdpDiscount", "Credit"},
        {"PrivateRateDiscount", "Credit"},
        {"SavingsPlanNegation", "Credit"},
        {"Purchase", "Purchase"},
        {"Fee", "Purchase"},
        {"RIFee", "Purchase"},
        {"SavingsPlanRecurringFee", "Purchase"},
        {"SavingsPlanUpfrontFee", "Purchase"},
        {"UnusedReservation", "Usage"},
        {"Adjustment", "Adjustment"},
        {"RoundingAdjustment", "Adjustment"},
        {"rounding_error", "Adjustment"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcasecmp(raw, map[i].raw) == 0)
            return map[i].focus;
    return raw;
}

void cloud_charge_init(struct cloud_charge *c)
{
    memset(c, 0, sizeof(*c));
    core_buf_init(&c->scratch, 4u << 20);
}

void cloud_charge_release(struct cloud_charge *c)
{
    core_buf_release(&c->scratch);
}

static const char *field(const struct cloud_map *m, char *const *f, enum cloud_col col)
{
    for (int k = 0; k < 3 && m->idx[col][k] >= 0; k++) {
        const char *v = f[m->idx[col][k]];
        if (!cloud_is_null(v))
            return v;
    }
    return NULL;
}

/* Allocation key of a tag key: lower case, "user:"/"user_" dropped, '_' and ' '
 * as '-'. */
static int tag_role(const char *key)
{
    char k[64];
    size_t n = 0;
    if (strncasecmp(key, "user:", 5) == 0 || strncasecmp(key, "user_", 5) == 0)
        key += 5;
    for (; *key && n < sizeof(k) - 1; key++)
        k[n++] = (*key == '_' || *key == ' ') ? '-' : (char)tolower((unsigned char)*key);
    k[n] = 0;
    static const char *const roles[4][6] = {
        {"team", "owner", "owning-team", "squad", NULL},
        {"service", "app", "application", "service-name", "app-name", NULL},
        {"env", "environment", "stage", "tier-env", NULL},
        {"cost-center", "costcenter", "cost-centre", "business-unit", "businessunit", NULL},
    };
    for (int r = 0; r < 4; r++)
        for (int i = 0; roles[r][i]; i++)
            if (strcmp(k, roles[r][i]) == 0)
                return r;
    return -1;
}

static void trim_span(const char **a, const char **b)
{
    while (*a < *b && (**a == ' ' || **a == '"' || **a == '\''))
        (*a)++;
    while (*b > *a && ((*b)[-1] == ' ' || (*b)[-1] == '"' || (*b)[-1] == '\''))
        (*b)--;
}

/* Fallback for tags that are not JSON: "k: v, k2: v2" or "k=v;k2=v2". */
static void pairs_from_text(json_t *obj, const char *s)
{
    while (*s) {
        const char *e = s + strcspn(s, ",;");
        const char *sep = s;
        while (sep < e && *sep != ':' && *sep != '=')
            sep++;
        if (sep < e) {
            const char *ka = s, *kb = sep, *va = sep + 1, *vb = e;
            trim_span(&ka, &kb);
            trim_span(&va, &vb);
            if (kb > ka) {
                char *k = core_strndup(ka, (size_t)(kb - ka));
                char *v = core_strndup(va, (size_t)(vb - va));
                if (k && v)
                    json_object_set_new(obj, k, json_string(v));
                core_free(k);
                core_free(v);
            }
        }
        s = *e ? e + 1 : e;
    }
}

/* Parses a Tags value: a JSON object with or without braces, or GCP's
 * [{"key":..,"value":..}]. */
static void tags_from_text(json_t *obj, const char *s)
{
    while (*s == ' ')
        s++;
    json_t *v = NULL;
    if (*s == '{' || *s == '[') {
        v = json_loads(s, JSON_DECODE_ANY, NULL);
    } else {
        size_t n = strlen(s);
        char *w = core_malloc(n + 3);
        if (!w)
            return;
        w[0] = '{';
        memcpy(w + 1, s, n);
        w[n + 1] = '}';
        w[n + 2] = 0;
        v = json_loads(w, 0, NULL);
        core_free(w);
    }
    if (!v && *s != '{' && *s != '[') {
        pairs_from_text(obj, s);
        return;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) json_object_set(obj, k, x);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            const char *k = json_string_value(json_object_get(x, "key"));
            json_t *val = json_object_get(x, "value");
            if (k && val)
                json_object_set(obj, k, val);
        }
    }
    json_decref(v);
}

static bool has_word(const char *s, const char *w)
{
    return s && strcasestr(s, w) != NULL;
}

/* Commitment type from a FOCUS CommitmentDiscountType, an Azure PricingModel or
 * an AWS line item type. */
static const char *commitment_type(const char *raw)
{
    if (has_word(raw, "savings"))
        return "savings-plan";
    if (has_word(raw, "reserv") || has_word(raw, "RIFee") || has_word(raw, "DiscountedUsage"))
        return "reservation";
    return NULL;
}

/* FOCUS PricingCategory (1.0 "Standard"/"Committed"/"Dynamic", 1.1 "On-Demand"/
 * "Commitment-Based"), AWS pricing/term, Azure PricingModel. */
static const char *pricing_category(const char *raw)
{
    if (!raw)
        return NULL;
    if (strcasecmp(raw, "Standard") == 0 || has_word(raw, "demand"))
        return "on-demand";
    if (has_word(raw, "commit") || has_word(raw, "reserv") || has_word(raw, "savings"))
        return "commitment";
    if (has_word(raw, "spot") || has_word(raw, "dynamic"))
        return "spot";
    return "other";
}

static int aux_money(const struct cloud_map *m, char *const *f, int a, int64_t *out,
                     struct core_err *err)
{
    *out = 0;
    if (m->aux[a] < 0 || cloud_is_null(f[m->aux[a]]))
        return 0;
    if (cloud_parse_money(f[m->aux[a]], out))
        return core_err_set(err, CORE_E_INVAL, "commitment amount '%.40s' is not a number",
                            f[m->aux[a]]);
    return 0;
}

/* Fills the commitment fields: id, type, used/unused, pricing category,
 * quantity, usage type and the unused commitment carried by the charge. */
static int commitment_fields(const struct cloud_map *m, char *const *f, const char *raw_cat,
                             struct cloud_charge *c, struct core_err *err)
{
    c->commitment_id = field(m, f, CLOUD_COL_COMMITMENT_ID);
    c->usage_type = field(m, f, CLOUD_COL_USAGE_TYPE);
    c->unused_commitment_n = 0;
    c->usage_qty_n = 0;
    const char *q = field(m, f, CLOUD_COL_CONSUMED_QUANTITY);
    if (q && cloud_parse_money(q, &c->usage_qty_n))
        c->usage_qty_n = 0; /* a quantity is informative only; never refuse the row */
    const char *rt = field(m, f, CLOUD_COL_COMMITMENT_TYPE);
    const char *rs = field(m, f, CLOUD_COL_COMMITMENT_STATUS);
    c->commitment_type = commitment_type(rt);
    c->pricing_category = pricing_category(field(m, f, CLOUD_COL_PRICING_CATEGORY));
    c->commitment_status = NULL;
    if (rs)
        c->commitment_status = has_word(rs, "unused") ? "unused" : "used";
    bool is_aws = m->aux[AUX_SP_EFFECTIVE] >= 0 || m->aux[AUX_RI_EFFECTIVE] >= 0;
    if (raw_cat && is_aws) {
        if (strcmp(raw_cat, "DiscountedUsage") == 0 ||
            strcmp(raw_cat, "SavingsPlanCoveredUsage") == 0) {
            c->commitment_type = commitment_type(raw_cat);
            c->commitment_status = "used";
            c->pricing_category = "commitment";
        } else if (strcmp(raw_cat, "RIFee") == 0) {
            int64_t a, b;
            if (aux_money(m, f, AUX_RI_UNUSED_UPFRONT, &a, err) ||
                aux_money(m, f, AUX_RI_UNUSED_RECURRING, &b, err))
                return CORE_E_INVAL;
            c->commitment_type = "reservation";
            c->unused_commitment_n = a + b;
        } else if (strcmp(raw_cat, "SavingsPlanRecurringFee") == 0) {
            int64_t tot, used;
            if (aux_money(m, f, AUX_SP_TOTAL_COMMITMENT, &tot, err) ||
                aux_money(m, f, AUX_SP_USED_COMMITMENT, &used, err))
                return CORE_E_INVAL;
            c->commitment_type = "savings-plan";
            c->unused_commitment_n = tot > used ? tot - used : 0;
        } else if (has_word(raw_cat, "SavingsPlan")) {
            c->commitment_type = "savings-plan";
        } else if (c->usage_type && has_word(c->usage_type, "SpotUsage")) {
            c->pricing_category = "spot";
        }
    } else if (raw_cat && has_word(raw_cat, "unused")) {
        /* Azure UnusedReservation / UnusedSavingsPlan */
        c->commitment_status = "unused";
        if (!c->commitment_type)
            c->commitment_type = commitment_type(raw_cat);
    }
    if (c->commitment_id && !c->commitment_status && raw_cat && strcasecmp(raw_cat, "Usage") == 0)
        c->commitment_status = "used";
    if (c->commitment_status && !c->pricing_category)
        c->pricing_category = "commitment";
    if (c->commitment_status && strcmp(c->commitment_status, "unused") == 0 &&
        !c->unused_commitment_n)
        c->unused_commitment_n = c->effective_n;
    /* Azure says "OnDemand" in PricingModel, which is no commitment type. */
    if (c->pricing_category && strcmp(c->pricing_category, "commitment") != 0 &&
        !c->commitment_id && !c->unused_commitment_n)
        c->commitment_type = NULL;
    return 0;
}

int cloud_billing_row(const struct cloud_map *m, char *const *f, size_t n, struct cloud_charge *c,
                      struct core_err *err)
{
    core_buf_clear(&c->scratch);
    if (n != m->ncols)
        return core_err_set(err, CORE_E_INVAL, "%zu fields where the header has %zu", n, m->ncols);
    const char *bp = field(m, f, CLOUD_COL_BILLING_PERIOD_START);
    const char *cs = field(m, f, CLOUD_COL_CHARGE_PERIOD_START);
    const char *ce = field(m, f, CLOUD_COL_CHARGE_PERIOD_END);
    char t[21];
    c->charge_start[0] = c->charge_end[0] = 0;
    if (cs && cloud_parse_time(cs, c->charge_start))
        return core_err_set(err, CORE_E_INVAL, "ChargePeriodStart '%.40s' is not a date", cs);
    if (ce && cloud_parse_time(ce, c->charge_end))
        return core_err_set(err, CORE_E_INVAL, "ChargePeriodEnd '%.40s' is not a date", ce);
    if (bp) {
        if (cloud_parse_time(bp, t))
            return core_err_set(err, CORE_E_INVAL, "BillingPeriodStart '%.40s' is not a date", bp);
    } else if (cs) {
        memcpy(t, c->charge_start, sizeof(t));
    } else {
        return core_err_set(err, CORE_E_INVAL, "no billing or charge period date");
    }
    memcpy(c->period, t, 7);
    c->period[7] = 0;

    static const enum cloud_col money[3] = {CLOUD_COL_BILLED_COST, CLOUD_COL_EFFECTIVE_COST,
                                            CLOUD_COL_LIST_COST};
    int64_t *dst[3] = {&c->billed_n, &c->effective_n, &c->list_n};
    for (int i = 0; i < 3; i++) {
        const char *v = field(m, f, money[i]);
        *dst[i] = 0;
        if (v && cloud_parse_money(v, dst[i]))
            return core_err_set(err, CORE_E_INVAL, "%s '%.40s' is not a number",
                                col_names[money[i]], v);
        if (!v && i == 1)
            c->effective_n = c->billed_n;
    }
    const char *raw_cat = field(m, f, CLOUD_COL_CHARGE_CATEGORY);
    if (raw_cat && m->aux[AUX_SP_EFFECTIVE] >= 0 && m->aux[AUX_RI_EFFECTIVE] >= 0) {
        /* AWS: amortized cost lives in different columns per line item type */
        const char *v = NULL;
        if (strcmp(raw_cat, "SavingsPlanCoveredUsage") == 0)
            v = f[m->aux[AUX_SP_EFFECTIVE]];
        else if (strcmp(raw_cat, "DiscountedUsage") == 0)
            v = f[m->aux[AUX_RI_EFFECTIVE]];
        else if (strcmp(raw_cat, "SavingsPlanNegation") == 0 ||
                 strcmp(raw_cat, "SavingsPlanUpfrontFee") == 0)
            c->effective_n = 0;
        if (v && !cloud_is_null(v) && cloud_parse_money(v, &c->effective_n))
            return core_err_set(err, CORE_E_INVAL, "EffectiveCost '%.40s' is not a number", v);
    }
    c->charge_category = raw_cat ? charge_category(raw_cat) : NULL;
    c->currency = field(m, f, CLOUD_COL_BILLING_CURRENCY);
    c->provider = field(m, f, CLOUD_COL_PROVIDER_NAME);
    if (!c->provider)
        c->provider = m->fmt->provider;
    c->billing_account = field(m, f, CLOUD_COL_BILLING_ACCOUNT_ID);
    c->sub_account = field(m, f, CLOUD_COL_SUB_ACCOUNT_ID);
    c->service_name = field(m, f, CLOUD_COL_SERVICE_NAME);
    c->service_category = field(m, f, CLOUD_COL_SERVICE_CATEGORY);
    c->region = field(m, f, CLOUD_COL_REGION_ID);
    c->resource_id = field(m, f, CLOUD_COL_RESOURCE_ID);
    c->sku = field(m, f, CLOUD_COL_SKU_ID);
    if (commitment_fields(m, f, raw_cat, c, err))
        return CORE_E_INVAL;

    /* Tags: the tags column, then one column per tag. */
    c->tags_json = "{}";
    c->tag_team = c->tag_service = c->tag_env = c->tag_cost_center = NULL;
    const char *tv = field(m, f, CLOUD_COL_TAGS);
    bool has_cols = false;
    for (size_t i = 0; i < m->ntags && !has_cols; i++)
        has_cols = !cloud_is_null(f[m->tag_cols[i]]);
    if (!tv && !has_cols)
        return 0;
    json_t *obj = json_object();
    if (!obj)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    if (tv)
        tags_from_text(obj, tv);
    for (size_t i = 0; i < m->ntags; i++)
        if (!cloud_is_null(f[m->tag_cols[i]]))
            json_object_set_new(obj, m->tag_keys[i], json_string(f[m->tag_cols[i]]));
    size_t off[5] = {0};
    bool have[5] = {false};
    int rc = 0;
    char *js = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    if (!js || core_buf_add(&c->scratch, js, strlen(js) + 1)) {
        rc = core_err_set(err, CORE_E_TOO_BIG, "tags too large");
        goto out;
    }
    have[4] = true;
    const char *k;
    json_t *x;
    json_object_foreach(obj, k, x)
    {
        int r = tag_role(k);
        if (r < 0 || have[r])
            continue;
        char num[64];
        const char *s = json_string_value(x);
        if (!s && (json_is_integer(x) || json_is_real(x) || json_is_boolean(x))) {
            char *d = json_dumps(x, JSON_ENCODE_ANY);
            snprintf(num, sizeof(num), "%s", d ? d : "");
            free(d);
            s = num;
        }
        if (!s || !*s)
            continue;
        off[r] = c->scratch.len;
        if (core_buf_add(&c->scratch, s, strlen(s) + 1)) {
            rc = core_err_set(err, CORE_E_TOO_BIG, "tags too large");
            goto out;
        }
        have[r] = true;
    }
    c->tags_json = c->scratch.data + off[4];
    const char **roles[4] = {&c->tag_team, &c->tag_service, &c->tag_env, &c->tag_cost_center};
    for (int r = 0; r < 4; r++)
        *roles[r] = have[r] ? c->scratch.data + off[r] : NULL;
out:
    free(js);
    json_decref(obj);
    return rc;
}
