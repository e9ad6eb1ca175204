/* The portal's /cost pages: spend by team (direct, allocated by split rules and
 * unallocated) as a bar chart, untagged spend by account and service, the
 * daily trend, budgets with forecast and state, commitment coverage and
 * utilization with the purchase recommendation and its assumptions, and
 * anomalies with what moved; /cost.csv exports the team report. Charts are
 * inline SVG built from numbers we print ourselves (no script); every text
 * from the data goes through out_h(). The reports come from
 * src/cloud/analysis.c as JSON. */
#include <stdlib.h>
#include <string.h>

#include "cloud/cloud.h"
#include "portal/portal_int.h"
#include "store/store.h"

#define CSV_TYPE "text/csv; charset=utf-8"
#define TOP_ROWS 10

static const char cost_css[] =
    "<style>\n"
    ".cost-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax("
    "22rem,1fr));gap:1rem}\n"
    ".cost-cards{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0}\n"
    ".cost-cards .card{padding:.8rem 1.2rem;min-width:10rem}\n"
    ".cost-cards .big{display:block;font-size:1.5rem;font-weight:700}\n"
    ".chart{background:var(--card);border:1px solid "
    "var(--line);border-radius:10px;"
    "width:100%;height:auto}\n"
    ".chart text{font-size:11px;fill:#5b6675}\n"
    ".bar-direct{fill:#3b6fd8}.bar-alloc{fill:#9db8ef}.bar-unalloc{fill:#"
    "c9a227}\n"
    ".line{fill:none;stroke:#3b6fd8;stroke-width:2}.area{fill:#3b6fd8;fill-"
    "opacity:.15}\n"
    ".eff-line{fill:none;stroke:#1b6b34;stroke-width:1.5;stroke-dasharray:4 "
    "3}\n"
    ".axis{stroke:#c3ccd7;stroke-width:1}\n"
    ".legend "
    "span{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;"
    "margin:0 .3rem 0 .8rem;vertical-align:middle}\n"
    ".budget-over{background:#fdecea}.budget-at-risk{background:#fff3dc}\n"
    ".badge-ok{background:#e3f4e8;color:#1b6b34}.badge-at-risk{background:#"
    "fff3dc;color:#8a5a00}"
    ".badge-over{background:#fdecea;color:#9c2118}\n"
    "tr.unallocated td{font-style:italic}\n"
    ".cost-grid td{overflow-wrap:anywhere}\n"
    "#recommendation{margin-top:1.2rem}\n"
    "</style>\n";

/* ---- helpers ---- */

static const char *js(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int64_t money_n(const json_t *o, const char *k)
{
    int64_t n = 0;
    const char *s = js(o, k);
    if (s)
        cloud_parse_money(s, &n);
    return n;
}

/* A money string of the report at 2 decimals. */
static void out_money(struct page *pg, const json_t *o, const char *k)
{
    char b[48];
    cloud_money_format(money_n(o, k), 2, b, sizeof(b));
    out_h(pg, b);
}

static void out_nano(struct page *pg, int64_t n)
{
    char b[48];
    cloud_money_format(n, 2, b, sizeof(b));
    out_h(pg, b);
}

static void out_pct(struct page *pg, const json_t *v)
{
    if (json_is_number(v))
        out_f(pg, "%.1f%%", json_number_value(v));
    else
        out_s(pg, "<span class=\"muted\">n/a</span>");
}

static bool valid_period(const char *p)
{
    return strlen(p) == 7 && p[4] == '-' && strspn(p, "0123456789-") == 7;
}

/* ---- sections ---- */

static void team_section(struct page *pg, const json_t *rep, const char *period)
{
    const json_t *items = json_object_get(rep, "items");
    size_t n = json_array_size(items), i;
    json_t *it;
    out_s(pg, "<section id=\"teams\">\n<h2>Spend by team</h2>\n<p "
              "class=\"muted\">Direct spend "
              "comes from each charge's <code>team</code> tag (or the catalog "
              "owner of its "
              "<code>service</code> tag); allocated spend is shared spend spread "
              "by the split "
              "rules (<code>pave cost split apply FILE</code>); unallocated is "
              "what no tag or "
              "rule assigns.</p>\n");
    /* bar chart: one row per team, direct then allocated stacked */
    int64_t max = 1;
    json_array_foreach(items, i, it)
    {
        int64_t t = money_n(it, "direct_billed") + money_n(it, "allocated_billed");
        if (t > max)
            max = t;
    }
    const int w = 760, left = 170, right = 90, row = 26, top = 10;
    int h = top * 2 + row * (int)(n ? n : 1);
    out_f(pg,
          "<svg class=\"chart\" id=\"team-chart\" viewBox=\"0 0 %d %d\" "
          "role=\"img\" "
          "aria-labelledby=\"team-chart-title\">",
          w, h);
    out_s(pg, "<title id=\"team-chart-title\">Billed spend by team: direct, "
              "allocated and "
              "unallocated</title>\n");
    json_array_foreach(items, i, it)
    {
        const char *team = js(it, "team");
        bool un = team && strcmp(team, CLOUD_UNALLOCATED) == 0;
        int64_t d = money_n(it, "direct_billed"), a = money_n(it, "allocated_billed");
        double span = (double)(w - left - right);
        double wd = d > 0 ? span * (double)d / (double)max : 0;
        double wa = a > 0 ? span * (double)a / (double)max : 0;
        double y = top + (double)i * row;
        out_f(pg, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", left - 6, y + 17);
        char label[32];
        /* long names are cut for the label; the bar's <title> has the whole name.
         * Cut on a UTF-8 character boundary. */
        size_t len = team ? strlen(team) : 0;
        if (len > 24) {
            size_t k = 22;
            while (k > 0 && ((unsigned char)team[k] & 0xC0) == 0x80)
                k--;
            snprintf(label, sizeof(label), "%.*s\xE2\x80\xA6", (int)k, team);
            out_h(pg, label);
        } else {
            out_h(pg, team);
        }
        out_s(pg, "</text>");
        out_f(pg,
              "<rect class=\"%s\" x=\"%d\" y=\"%.1f\" width=\"%.1f\" "
              "height=\"%d\"><title>",
              un ? "bar-unalloc" : "bar-direct", left, y + 4, wd, row - 8);
        out_h(pg, team);
        out_s(pg, ": direct ");
        out_nano(pg, d);
        out_s(pg, "</title></rect>");
        if (wa > 0) {
            out_f(pg,
                  "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                  "height=\"%d\"><title>",
                  un ? "bar-unalloc" : "bar-alloc", left + wd, y + 4, wa, row - 8);
            out_h(pg, team);
            out_s(pg, ": allocated ");
            out_nano(pg, a);
            out_s(pg, "</title></rect>");
        }
        out_f(pg, "<text x=\"%.1f\" y=\"%.1f\">", left + wd + wa + 6, y + 17);
        out_nano(pg, d + a);
        out_s(pg, "</text>\n");
    }
    out_s(pg, "</svg>\n<p class=\"legend muted\"><span class=\"bar-direct\" "
              "style=\"background:#3b6fd8\"></span>direct<span "
              "style=\"background:#9db8ef\">"
              "</span>allocated<span "
              "style=\"background:#c9a227\"></span>unallocated</p>\n");
    out_s(pg, "<table id=\"team-table\">\n<thead><tr><th>Team</th><th "
              "class=\"num\">Direct</th>"
              "<th class=\"num\">Allocated</th><th class=\"num\">Billed</th>"
              "<th class=\"num\">Effective</th><th "
              "class=\"num\">Rows</th></tr></thead>\n"
              "<tbody>\n");
    json_array_foreach(items, i, it)
    {
        const char *team = js(it, "team");
        bool un = team && strcmp(team, CLOUD_UNALLOCATED) == 0;
        out_s(pg, un ? "<tr class=\"unallocated\"><td>" : "<tr><td>");
        out_h(pg, team);
        out_s(pg, "</td><td class=\"num\">");
        out_money(pg, it, "direct_billed");
        out_s(pg, "</td><td class=\"num\">");
        out_money(pg, it, "allocated_billed");
        out_s(pg, "</td><td class=\"num\">");
        out_money(pg, it, "billed");
        out_s(pg, "</td><td class=\"num\">");
        out_money(pg, it, "effective");
        int64_t rows = 0;
        portal_jint(it, "rows", &rows);
        out_f(pg, "</td><td class=\"num\">%lld</td></tr>\n", (long long)rows);
    }
    out_s(pg, "</tbody>\n</table>\n<p id=\"exports\">Download: <a id=\"export-csv\" "
              "href=\"/cost.csv");
    if (period) {
        out_s(pg, "?period=");
        out_u(pg, period);
    }
    out_s(pg, "\">CSV</a> <span class=\"muted\">(also <code>pave cost report "
              "--by team --split "
              "-o csv</code>)</span></p>\n</section>\n");
}

static void breakdown_table(struct page *pg, const json_t *rep, const char *id, const char *label)
{
    const json_t *items = json_object_get(rep, "items");
    size_t n = json_array_size(items), i;
    json_t *it;
    out_s(pg, "<div>\n<h3>By ");
    out_s(pg, label);
    out_f(pg, "</h3>\n<table id=\"%s\">\n<thead><tr><th>", id);
    out_s(pg, label);
    out_s(pg, "</th><th class=\"num\">Billed</th><th "
              "class=\"num\">Effective</th></tr></thead>\n"
              "<tbody>\n");
    if (!n)
        out_s(pg, "<tr><td colspan=\"3\" class=\"empty\">No untagged spend.</td></tr>\n");
    json_array_foreach(items, i, it)
    {
        if (i == TOP_ROWS) {
            out_f(pg,
                  "<tr><td colspan=\"3\" class=\"muted\">and %zu more (<code>pave cost "
                  "untagged</code> lists all)</td></tr>\n",
                  n - TOP_ROWS);
            break;
        }
        out_s(pg, "<tr><td>");
        out_h(pg, js(it, "key"));
        out_s(pg, "</td><td class=\"num\">");
        out_money(pg, it, "billed");
        out_s(pg, "</td><td class=\"num\">");
        out_money(pg, it, "effective");
        out_s(pg, "</td></tr>\n");
    }
    out_s(pg, "</tbody>\n</table>\n</div>\n");
}

static void untagged_section(struct page *pg, const json_t *by_acct, const json_t *by_svc)
{
    out_s(pg, "<section id=\"untagged\">\n<h2>Untagged spend</h2>\n<p "
              "class=\"muted\">Charges "
              "without a <code>team</code> tag: <strong id=\"untagged-total\">");
    out_money(pg, by_acct, "total_billed");
    out_s(pg, "</strong> billed. Tag these resources or add a split rule.</p>\n"
              "<div class=\"cost-grid\">\n");
    breakdown_table(pg, by_acct, "untagged-accounts", "Account");
    breakdown_table(pg, by_svc, "untagged-services", "Service");
    out_s(pg, "</div>\n</section>\n");
}

/* Daily billed (area + line) and effective (dashed) cost with axis labels. */
static void trend_section(struct page *pg, const json_t *trend)
{
    const json_t *items = json_object_get(trend, "items");
    size_t n = json_array_size(items), i;
    json_t *it;
    out_s(pg, "<section id=\"trend\">\n<h2>Daily trend</h2>\n");
    if (n < 2) {
        out_s(pg, "<p class=\"muted\">Not enough days of data for a "
                  "trend.</p>\n</section>\n");
        return;
    }
    /* the scale runs from the lowest value (credits can make a day negative)
     * or 0 to the highest */
    int64_t max = 1, min = 0;
    json_array_foreach(items, i, it)
    {
        int64_t b = money_n(it, "billed"), e = money_n(it, "effective");
        max = b > max ? b : max;
        max = e > max ? e : max;
        min = b < min ? b : min;
        min = e < min ? e : min;
    }
    double range = (double)max - (double)min;
    const int w = 760, h = 240, ml = 70, mr = 16, mt = 12, mb = 34;
    double pw = w - ml - mr, ph = h - mt - mb;
    out_f(pg,
          "<svg class=\"chart\" id=\"trend-chart\" viewBox=\"0 0 %d %d\" "
          "role=\"img\" "
          "aria-labelledby=\"trend-chart-title\">",
          w, h);
    out_s(pg, "<title id=\"trend-chart-title\">Daily billed cost from ");
    out_h(pg, js(json_array_get(items, 0), "date"));
    out_s(pg, " to ");
    out_h(pg, js(json_array_get(items, n - 1), "date"));
    out_s(pg, " (solid) and effective cost (dashed)</title>\n");
    /* axes (the x axis at 0) and y labels at the bottom, middle and top */
    double y0 = mt + ph - ph * (0.0 - (double)min) / range;
    out_f(pg, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>", ml, mt, ml, h - mb);
    out_f(pg, "<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", ml, y0,
          w - mr, y0);
    for (int k = 0; k <= 2; k++) {
        double y = mt + ph - ph * k / 2.0;
        out_f(pg, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", ml - 6, y + 4);
        out_nano(pg, min + (int64_t)(range * k / 2.0));
        out_s(pg, "</text>");
    }
    /* x labels: first, middle, last date */
    size_t lab[3] = {0, n / 2, n - 1};
    for (int k = 0; k < 3; k++) {
        double x = ml + pw * (double)lab[k] / (double)(n - 1);
        out_f(pg, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">", x, h - mb + 18,
              k == 0   ? "start"
              : k == 1 ? "middle"
                       : "end");
        out_h(pg, js(json_array_get(items, lab[k]), "date"));
        out_s(pg, "</text>");
    }
    out_s(pg, "\n<path class=\"area\" d=\"");
    json_array_foreach(items, i, it)
    {
        double x = ml + pw * (double)i / (double)(n - 1);
        double y = mt + ph - ph * ((double)money_n(it, "billed") - (double)min) / range;
        out_f(pg, "%s%.1f %.1f ", i ? "L" : "M", x, y);
    }
    out_f(pg, "L%.1f %.1f L%d %.1f Z\"/>\n<polyline class=\"line\" points=\"", ml + pw, y0, ml, y0);
    json_array_foreach(items, i, it)
    {
        double x = ml + pw * (double)i / (double)(n - 1);
        double y = mt + ph - ph * ((double)money_n(it, "billed") - (double)min) / range;
        out_f(pg, "%.1f,%.1f ", x, y);
    }
    out_s(pg, "\"/>\n<polyline class=\"eff-line\" points=\"");
    json_array_foreach(items, i, it)
    {
        double x = ml + pw * (double)i / (double)(n - 1);
        double y = mt + ph - ph * ((double)money_n(it, "effective") - (double)min) / range;
        out_f(pg, "%.1f,%.1f ", x, y);
    }
    out_s(pg, "\"/>\n</svg>\n</section>\n");
}

static void budgets_section(struct page *pg, const json_t *b)
{
    const json_t *items = json_object_get(b, "items");
    size_t i;
    json_t *it;
    out_s(pg, "<section id=\"budgets\">\n<h2>Budgets</h2>\n");
    if (!json_array_size(items)) {
        out_s(pg, "<p class=\"muted\">No budgets yet: <code>pave cost budget set TEAM "
                  "AMOUNT</code> or <code>PUT /api/v1/cost/budgets/TEAM</code>.</p>\n"
                  "</section>\n");
        return;
    }
    int64_t day = 0, dim = 0;
    portal_jint(b, "as_of_day", &day);
    portal_jint(b, "days_in_month", &dim);
    out_s(pg, "<p class=\"muted\">");
    out_h(pg, js(b, "period"));
    out_f(pg,
          ", month to date as of day %lld of %lld (the latest charge stored); "
          "the forecast "
          "runs the daily rate to month end.</p>\n",
          (long long)day, (long long)dim);
    out_s(pg, "<table id=\"budget-table\">\n<thead><tr><th>Team</th><th "
              "class=\"num\">Budget"
              "</th><th class=\"num\">Actual</th><th class=\"num\">Forecast</th>"
              "<th class=\"num\">Used</th><th>State</th></tr></thead>\n<tbody>\n");
    json_array_foreach(items, i, it)
    {
        const char *state = js(it, "state");
        bool over = state && strcmp(state, CLOUD_BUDGET_OVER) == 0;
        bool risk = state && strcmp(state, CLOUD_BUDGET_AT_RISK) == 0;
        out_s(pg, over   ? "<tr class=\"budget-over\">"
                  : risk ? "<tr class=\"budget-at-risk\">"
                         : "<tr>");
        out_s(pg, "<td>");
        out_h(pg, js(it, "team"));
        out_s(pg, "</td><td class=\"num\">");
        out_money(pg, it, "budget");
        out_s(pg, "</td><td class=\"num\">");
        out_money(pg, it, "actual");
        out_s(pg, "</td><td class=\"num\">");
        out_money(pg, it, "forecast");
        out_s(pg, "</td><td class=\"num\">");
        out_pct(pg, json_object_get(it, "used_pct"));
        out_s(pg, over   ? "</td><td><span class=\"state badge-over\">over budget</span>"
                  : risk ? "</td><td><span class=\"state badge-at-risk\">at risk</span>"
                         : "</td><td><span class=\"state badge-ok\">ok</span>");
        if (js(it, "alert")) {
            out_s(pg, "<br><span class=\"muted\">");
            out_h(pg, js(it, "alert"));
            out_s(pg, "</span>");
        }
        out_s(pg, "</td></tr>\n");
    }
    out_s(pg, "</tbody>\n</table>\n</section>\n");
}

static void commitments_section(struct page *pg, const json_t *c, const json_t *rec)
{
    const json_t *types = json_object_get(c, "types");
    size_t i;
    json_t *it;
    out_s(pg, "<section id=\"commitments\">\n<h2>Commitments</h2>\n<p>Coverage <strong "
              "id=\"coverage\">");
    out_pct(pg, json_object_get(c, "coverage_pct"));
    out_s(pg, "</strong>: ");
    out_money(pg, c, "covered_ondemand_equiv");
    out_s(pg, " of ");
    out_money(pg, c, "eligible_ondemand_equiv");
    out_s(pg, " commitment-eligible usage (compute and database, at on-demand "
              "prices) ran on "
              "reservations or savings plans; ");
    out_money(pg, c, "ondemand");
    out_s(pg, " ran on demand.</p>\n");
    if (json_array_size(types)) {
        out_s(pg, "<table id=\"commitment-table\">\n<thead><tr><th>Type</th>"
                  "<th class=\"num\">Commitments</th><th class=\"num\">Used</th>"
                  "<th class=\"num\">Unused</th><th class=\"num\">Utilization</th></tr>"
                  "</thead>\n<tbody>\n");
        json_array_foreach(types, i, it)
        {
            int64_t nc = 0;
            portal_jint(it, "commitments", &nc);
            out_s(pg, "<tr><td>");
            out_h(pg, js(it, "type"));
            out_f(pg, "</td><td class=\"num\">%lld</td><td class=\"num\">", (long long)nc);
            out_money(pg, it, "used");
            out_s(pg, "</td><td class=\"num\">");
            out_money(pg, it, "unused");
            out_s(pg, "</td><td class=\"num\">");
            out_pct(pg, json_object_get(it, "utilization_pct"));
            out_s(pg, "</td></tr>\n");
        }
        out_s(pg, "</tbody>\n</table>\n");
    } else {
        out_s(pg, "<p class=\"muted\">No reservations or savings plans in the "
                  "data.</p>\n");
    }
    out_s(pg, "<h3 id=\"recommendation\">Recommendation</h3>\n<p class=\"card\">");
    out_h(pg, js(rec, "recommendation") ? js(rec, "recommendation")
                                        : "No recommendation: no dated charges are stored.");
    out_s(pg, "</p>\n");
    if (js(rec, "baseline_daily")) {
        out_s(pg, "<p class=\"muted\">Baseline daily on-demand eligible spend ");
        out_money(pg, rec, "baseline_daily");
        out_s(pg, " (mean ");
        out_money(pg, rec, "mean_daily");
        out_s(pg, "); annual savings ");
        out_money(pg, rec, "annual_savings");
        out_s(pg, ".</p>\n");
    }
    out_s(pg, "<p>Assumptions:</p>\n<ul id=\"assumptions\">\n");
    json_array_foreach(json_object_get(rec, "assumptions"), i, it)
    {
        out_s(pg, "<li>");
        out_h(pg, json_string_value(it));
        out_s(pg, "</li>\n");
    }
    out_s(pg, "</ul>\n</section>\n");
}

static void anomalies_section(struct page *pg, const json_t *a, const char *period)
{
    const json_t *items = json_object_get(a, "items");
    size_t i, shown = 0;
    json_t *it;
    out_s(pg, "<section id=\"anomalies\">\n<h2>Anomalies</h2>\n<p "
              "class=\"muted\">Days when a "
              "service's spend rose well above its trailing 7-day mean, with "
              "what moved most.</p>"
              "\n<ul>\n");
    json_array_foreach(items, i, it)
    {
        const char *d = js(it, "date");
        if (period && (!d || strncmp(d, period, 7) != 0))
            continue;
        if (++shown > 20)
            break;
        out_s(pg, "<li>");
        out_h(pg, js(it, "explanation"));
        out_s(pg, "</li>\n");
    }
    if (!shown)
        out_s(pg, "<li class=\"muted\">None in this period.</li>\n");
    out_s(pg, "</ul>\n</section>\n");
}

static void no_data_page(struct page *pg)
{
    out_s(pg, "<section id=\"no-data\" class=\"card\">\n<p>No billing data is "
              "stored yet. Import "
              "a provider's cost export (FOCUS, AWS CUR, Azure, GCP or OCI, "
              "plain or gzip):</p>\n"
              "<pre>pave cost import FILE</pre>\n<p class=\"muted\">Then this "
              "page shows spend by "
              "team, untagged spend, the trend, budgets, commitments and "
              "anomalies. The demo "
              "(<code>make up</code>) imports the samples in "
              "<code>tests/data/billing</code>."
              "</p>\n</section>\n");
}

/* The period: ?period=YYYY-MM, else the default month with data ("" when
 * none; cloud_default_period()). returns: 0, or CORE_E_INVAL for a malformed
 * value. */
static int pick_period(struct page *pg, const json_t *months, char out[16])
{
    char q[PARAM_MAX];
    out[0] = 0;
    if (pg->req->query && portal_form_value(pg->req->query, "period", q, sizeof(q)))
        return CORE_E_INVAL;
    if (pg->req->query && q[0]) {
        if (!valid_period(q))
            return CORE_E_INVAL;
        memcpy(out, q, 8);
        return 0;
    }
    (void)months;
    if (cloud_default_period(pg->p->st, out, &pg->err) || !valid_period(out))
        out[0] = 0;
    return 0;
}

static int cost_page(struct page *pg)
{
    struct store *st = pg->p->st;
    json_t *months = NULL, *team = NULL, *ua = NULL, *us = NULL, *trend = NULL, *bud = NULL,
           *com = NULL, *rec = NULL, *anom = NULL;
    char period[16];
    int rc = 0;
    if (!(months = cloud_cost_trend(st, NULL, true, -1, &pg->err)))
        return pg->err.code ? pg->err.code : CORE_E_NOMEM;
    if (pick_period(pg, months, period)) {
        json_decref(months);
        return portal_bad_request(pg, "The period could not be read: use ?period=YYYY-MM.");
    }
    pg->nav = "cost";
    portal_page_begin(pg, 200, "Cost");
    out_s(pg, cost_css);
    out_s(pg, "<h1>Cost</h1>\n");
    if (!json_array_size(json_object_get(months, "items"))) {
        no_data_page(pg);
        portal_page_end(pg);
        json_decref(months);
        return 0;
    }
    const char *p = period[0] ? period : NULL;
    if (!(team = cloud_cost_team_report(st, p, true, &pg->err)) ||
        !(ua = cloud_cost_untagged(st, p, false, &pg->err)) ||
        !(us = cloud_cost_untagged(st, p, true, &pg->err)) ||
        !(trend = cloud_cost_trend(st, p, false, -1, &pg->err)) ||
        !(bud = cloud_budget_list(st, p, false, &pg->err)) ||
        !(com = cloud_cost_commitments(st, p, &pg->err)) ||
        !(rec = cloud_cost_recommend(st, 30, 30, 10, &pg->err)) ||
        !(anom = cloud_cost_anomalies(st, 7, 3, &pg->err))) {
        rc = pg->err.code ? pg->err.code : CORE_E_NOMEM;
        goto out;
    }
    /* period selector */
    out_s(pg, "<form id=\"period-form\" class=\"filters\" method=\"get\" "
              "action=\"/cost\">\n"
              "<label for=\"period\">Period</label>\n<select id=\"period\" "
              "name=\"period\">");
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(months, "items"), i, it)
    {
        const char *d = js(it, "date");
        out_s(pg, "<option value=\"");
        out_h(pg, d);
        out_s(pg, d && strcmp(d, period) == 0 ? "\" selected>" : "\">");
        out_h(pg, d);
        out_s(pg, "</option>");
    }
    out_s(pg, "</select>\n<button type=\"submit\">Show</button>\n</form>\n");
    out_s(pg, "<div class=\"cost-cards\" id=\"totals\">\n<div "
              "class=\"card\"><span class=\"big\" "
              "id=\"total-billed\">");
    out_money(pg, team, "total_billed");
    out_s(pg, "</span>billed");
    if (js(team, "currency")) {
        out_s(pg, " (");
        out_h(pg, js(team, "currency"));
        out_s(pg, ")");
    }
    out_s(pg, "</div>\n<div class=\"card\"><span class=\"big\" "
              "id=\"total-effective\">");
    out_money(pg, team, "total_effective");
    out_s(pg, "</span>effective (amortized)</div>\n<div class=\"card\"><span "
              "class=\"big\">");
    out_money(pg, ua, "total_billed");
    out_s(pg, "</span>untagged</div>\n<div class=\"card\"><span class=\"big\">");
    out_pct(pg, json_object_get(com, "coverage_pct"));
    out_s(pg, "</span>commitment coverage</div>\n</div>\n");
    team_section(pg, team, p);
    budgets_section(pg, bud);
    untagged_section(pg, ua, us);
    trend_section(pg, trend);
    commitments_section(pg, com, rec);
    anomalies_section(pg, anom, p);
    portal_page_end(pg);
out:
    json_decref(months);
    json_decref(team);
    json_decref(ua);
    json_decref(us);
    json_decref(trend);
    json_decref(bud);
    json_decref(com);
    json_decref(rec);
    json_decref(anom);
    return rc;
}

static void csv_cell(struct page *pg, const char *s)
{
    if (!s)
        return;
    /* a leading = + - @ would be a formula in a spreadsheet */
    bool quote = strpbrk(s, ",\"\r\n") || strchr("=+-@", s[0]);
    if (!quote) {
        out_s(pg, s);
        return;
    }
    out_s(pg, "\"");
    if (strchr("=+-@", s[0]) && s[0])
        out_s(pg, "'");
    for (const char *c = s; *c && !pg->rc; c++) {
        char two[3] = {*c, *c == '"' ? '"' : 0, 0};
        out_s(pg, two);
    }
    out_s(pg, "\"");
}

/* GET /cost.csv?period=: the team report with split rules applied. */
static int cost_csv(struct page *pg)
{
    char period[PARAM_MAX] = "";
    if (pg->req->query && portal_form_value(pg->req->query, "period", period, sizeof(period)))
        return portal_bad_request(pg, "The period could not be read: use ?period=YYYY-MM.");
    if (period[0] && !valid_period(period))
        return portal_bad_request(pg, "The period could not be read: use ?period=YYYY-MM.");
    json_t *r = cloud_cost_team_report(pg->p->st, period[0] ? period : NULL, true, &pg->err);
    if (!r)
        return pg->err.code ? pg->err.code : CORE_E_NOMEM;
    out_s(pg, "team,direct_billed,allocated_billed,billed,direct_effective,"
              "allocated_effective,"
              "effective,rows,currency\n");
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(r, "items"), i, it)
    {
        static const char *const k[] = {"direct_billed",    "allocated_billed",    "billed",
                                        "direct_effective", "allocated_effective", "effective"};
        csv_cell(pg, js(it, "team"));
        for (size_t j = 0; j < 6; j++) {
            out_s(pg, ",");
            out_s(pg, js(it, k[j]) ? js(it, k[j]) : "");
        }
        int64_t rows = 0;
        portal_jint(it, "rows", &rows);
        out_f(pg, ",%lld,", (long long)rows);
        csv_cell(pg, js(r, "currency"));
        out_s(pg, "\n");
    }
    json_decref(r);
    pg->resp->status = 200;
    pg->resp->content_type = CSV_TYPE;
    return pg->rc;
}

int portal_cost_route(struct page *pg)
{
    const char *path = pg->req->path;
    if (strcmp(path, "/cost") == 0 || strcmp(path, "/cost/") == 0)
        return pg->is_get ? cost_page(pg) : portal_method_not_allowed(pg);
    if (strcmp(path, "/cost.csv") == 0)
        return pg->is_get ? cost_csv(pg) : portal_method_not_allowed(pg);
    return portal_not_found(pg);
}
