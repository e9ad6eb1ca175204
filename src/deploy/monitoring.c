/* Monitoring: what Prometheus needs to watch the deployed replicas, derived from the reconciler's
 * snapshot. Three generated files under DATA/monitoring (targets.json for file_sd, rules.yml,
 * prometheus.yml) and the replica gauges on the server's /metrics. Names that go into the files
 * (services, environments, teams: DNS labels) are checked once more here so a strange value can
 * never break the YAML or a PromQL selector. See docs/monitoring.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "deploy/deploy.h"
#include "deploy/deploy_int.h"

#define MON_FILE_MAX (8u << 20)
#define SERVICES_JOB "pave-services"
#define PAVE_JOB "pave"

/* Letters, digits, '.', '_' and '-' only: safe inside YAML quotes, JSON and PromQL strings. */
static bool plain_name(const char *s)
{
    if (!s || !*s || strlen(s) > 200)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

static const char *str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key)) ?: "";
}

/* ---- team and SLO of a service, cached ------------------------------------------------------ */

static const struct deploy_mon_service *service_info(struct deploy_controller *dc,
                                                     const char *service)
{
    struct deploy_monitoring *m = &dc->mon;
    int64_t now = core_now_ms();
    struct deploy_mon_service *e = NULL, *oldest = &m->cache[0];
    for (size_t i = 0; i < DEPLOY_MON_CACHE; i++) {
        struct deploy_mon_service *c = &m->cache[i];
        if (c->fetched_ms && strcmp(c->service, service) == 0) {
            e = c;
            break;
        }
        if (c->fetched_ms < oldest->fetched_ms)
            oldest = c;
    }
    if (e && now - e->fetched_ms < DEPLOY_MON_CACHE_MS)
        return e;
    if (!e) {
        e = oldest;
        memset(e, 0, sizeof(*e));
        snprintf(e->service, sizeof(e->service), "%s", service);
    }
    struct catalog_service s = {0};
    struct core_err err = {0};
    /* a failed read keeps what we knew (or nothing); retried after the cache period */
    if (catalog_service_get(dc->cfg.cat, service, &s, &err) == 0) {
        snprintf(e->team, sizeof(e->team), "%s", plain_name(s.team) ? s.team : "");
        e->availability = 0;
        json_error_t jerr;
        json_t *man = s.manifest ? json_loads(s.manifest, 0, &jerr) : NULL;
        json_t *a =
            json_object_get(json_object_get(json_object_get(man, "spec"), "slo"), "availability");
        if (json_is_number(a) && json_number_value(a) > 0 && json_number_value(a) < 100)
            e->availability = json_number_value(a);
        json_decref(man);
    }
    catalog_service_release(&s);
    e->fetched_ms = now;
    return e;
}

/* ---- the files ------------------------------------------------------------------------------- */

/* Replaces DIR/name with text unless it already holds exactly that. */
static void write_if_changed(const char *dir, const char *name, const char *text)
{
    char path[4400], *have = NULL;
    size_t len = 0, n = strlen(text);
    struct core_err err = {0};
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (core_file_read(path, MON_FILE_MAX, &have, &len, &err) == 0 && len == n &&
        memcmp(have, text, n) == 0) {
        core_free(have);
        return;
    }
    core_free(have);
    err = (struct core_err){0};
    if (core_file_write_atomic(path, text, n, 0644, &err))
        log_warn("deploy", "cannot write monitoring file", LOG_STR("path", path),
                 LOG_STR("error", err.msg));
    else
        log_debug("deploy", "monitoring file updated", LOG_STR("path", path));
}

static bool replica_scraped(json_t *r)
{
    if (json_is_true(json_object_get(r, "draining")))
        return false;
    if (json_is_true(json_object_get(r, "ready")))
        return true;
    const char *st = json_string_value(json_object_get(r, "state"));
    return !st || strcmp(st, "starting") == 0 || strcmp(st, "running") == 0;
}

static int by_instance(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    return strcmp(str_of(json_object_get(x, "labels"), "instance_name"),
                  str_of(json_object_get(y, "labels"), "instance_name"));
}

/* file_sd: [{"targets":["127.0.0.1:PORT"],"labels":{...}}], sorted so it is stable. */
static char *render_targets(struct deploy_controller *dc, json_t *snapshot, const char *api_addr)
{
    json_t *list = json_array();
    const char *key;
    json_t *t;
    json_object_foreach (snapshot, key, t) {
        const char *service = str_of(t, "service"), *env = str_of(t, "env");
        if (!plain_name(service) || !plain_name(env))
            continue;
        const struct deploy_mon_service *info = service_info(dc, service);
        size_t i;
        json_t *r;
        json_array_foreach (json_object_get(t, "replicas"), i, r) {
            int port = (int)json_integer_value(json_object_get(r, "port"));
            const char *name = str_of(r, "name");
            if (!replica_scraped(r) || port <= 0 || port > 65535 || !plain_name(name))
                continue;
            char addr[32];
            snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
            json_array_append_new(list, json_pack("{s:[s],s:{s:s,s:s,s:s,s:s,s:s}}", "targets",
                                                  addr, "labels", "service", service, "team",
                                                  info->team, "env", env, "instance_name", name,
                                                  "revision", str_of(r, "revision")));
        }
    }
    size_t n = json_array_size(list);
    json_t **v = n ? core_calloc(n, sizeof(*v)) : NULL;
    json_t *sorted = json_array();
    if (n && v) {
        for (size_t i = 0; i < n; i++)
            v[i] = json_array_get(list, i);
        qsort(v, n, sizeof(*v), by_instance);
        for (size_t i = 0; i < n; i++)
            json_array_append(sorted, v[i]);
    }
    core_free(v);
    json_decref(list);
    if (api_addr[0])
        json_array_append_new(sorted,
                              json_pack("{s:[s],s:{s:s,s:s}}", "targets", api_addr, "labels", "job",
                                        PAVE_JOB, "instance_name", "pave-server"));
    char *json = json_dumps(sorted, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(sorted);
    /* with a final newline, like every other text file */
    size_t len = json ? strlen(json) : 0;
    char *text = json ? core_malloc(len + 2) : NULL;
    if (text) {
        memcpy(text, json, len);
        memcpy(text + len, "\n", 2);
    }
    core_free(json);
    return text;
}

/* The error ratio of a service over a window, as a PromQL expression. The scrapes and health
 * checks of the platform itself are left out: they would dilute a small service's errors. */
static int add_error_ratio(struct core_buf *b, const char *sel, const char *window)
{
    return core_buf_addf(b,
                         "          (\n"
                         "            sum by (service, env) (rate(http_requests_total{%s,"
                         "code=~\"5..\",path!~\"/metrics|/healthz\"}[%s]))\n"
                         "            /\n"
                         "            sum by (service, env) (rate(http_requests_total{%s,"
                         "path!~\"/metrics|/healthz\"}[%s]))\n"
                         "          )",
                         sel, window, sel, window);
}

/* Multi-window burn-rate alert (the SRE workbook's): fires when the error budget burns at
 * `factor` times the sustainable rate over both the long and the short window. */
static int add_burn_rule(struct core_buf *b, const char *sel, const char *alert, double factor,
                         const char *longw, const char *shortw, const char *severity,
                         const char *team, double availability)
{
    double budget = (100.0 - availability) / 100.0;
    int rc = core_buf_addf(b, "      - alert: %s\n        expr: |\n", alert);
    rc |= add_error_ratio(b, sel, longw);
    rc |= core_buf_addf(b, " > (%g * %.6g)\n          and\n", factor, budget);
    rc |= add_error_ratio(b, sel, shortw);
    rc |= core_buf_addf(b, " > (%g * %.6g)\n", factor, budget);
    rc |= core_buf_addf(b,
                        "        for: 2m\n"
                        "        labels:\n"
                        "          severity: %s\n"
                        "          team: \"%s\"\n"
                        "        annotations:\n"
                        "          summary: '{{ $labels.service }} in {{ $labels.env }} burns its "
                        "error budget %gx too fast'\n"
                        "          description: 'More than %g%% of requests failed (5xx) over "
                        "the last %s and %s; the objective is %g%% availability.'\n",
                        severity, team, factor, factor * budget * 100.0, longw, shortw,
                        availability);
    return rc;
}

static int render_rules(struct deploy_controller *dc, json_t *snapshot, const char *api_addr,
                        struct core_buf *b)
{
    int rc = core_buf_adds(b, "# Generated by pave from its deployments; rewritten when they "
                              "change. docs/monitoring.md\n"
                              "groups:\n");
    if (api_addr[0])
        rc |= core_buf_adds(b, "  - name: pave-platform\n"
                               "    rules:\n"
                               "      - alert: PaveServerDown\n"
                               "        expr: 'up{job=\"" PAVE_JOB "\"} == 0'\n"
                               "        for: 1m\n"
                               "        labels:\n"
                               "          severity: page\n"
                               "        annotations:\n"
                               "          summary: 'the pave server at {{ $labels.instance }} "
                               "is down'\n"
                               /* certificates of the internal CA (pki_metrics): renewal is due
                                * at two thirds of the lifetime, so a sixth left means it was
                                * missed; long-lived ones get a week's notice */
                               "      - alert: PaveCertificateNotRenewed\n"
                               "        expr: |\n"
                               "          (pave_certificate_expiry_timestamp_seconds{job=\"" PAVE_JOB
                               "\"} - time())\n"
                               "          <\n"
                               "          (pave_certificate_expiry_timestamp_seconds{job=\"" PAVE_JOB
                               "\"} - pave_certificate_not_before_timestamp_seconds{job=\"" PAVE_JOB
                               "\"}) / 6\n"
                               "        for: 5m\n"
                               "        labels:\n"
                               "          severity: page\n"
                               "        annotations:\n"
                               "          summary: 'certificate {{ $labels.serial }} of "
                               "{{ $labels.owner }} was not renewed'\n"
                               "          description: 'It expires in {{ $value | "
                               "humanizeDuration }}, less than a sixth of its lifetime; it "
                               "should have been renewed at two thirds. See /ca in the "
                               "portal.'\n"
                               "      - alert: PaveCertificateExpiringSoon\n"
                               "        expr: |\n"
                               "          (pave_certificate_expiry_timestamp_seconds{job=\"" PAVE_JOB
                               "\"} - time()) < 7 * 86400\n"
                               "          and\n"
                               "          (pave_certificate_expiry_timestamp_seconds{job=\"" PAVE_JOB
                               "\"} - pave_certificate_not_before_timestamp_seconds{job=\"" PAVE_JOB
                               "\"}) > 30 * 86400\n"
                               "        for: 5m\n"
                               "        labels:\n"
                               "          severity: ticket\n"
                               "        annotations:\n"
                               "          summary: 'certificate {{ $labels.serial }} of "
                               "{{ $labels.owner }} expires within 7 days'\n"
                               "          description: 'It expires in {{ $value | "
                               "humanizeDuration }}. Renew or replace it (pave ca issue).'\n");
    const char *key;
    json_t *t;
    size_t groups = 0;
    json_object_foreach (snapshot, key, t) {
        const char *service = str_of(t, "service"), *env = str_of(t, "env");
        if (!plain_name(service) || !plain_name(env))
            continue;
        /* a target row exists for service discovery before the first deploy: nothing to watch */
        if (!json_integer_value(json_object_get(t, "desired_id")) &&
            !json_integer_value(json_object_get(t, "stable_id")) &&
            !json_array_size(json_object_get(t, "replicas")))
            continue;
        const struct deploy_mon_service *info = service_info(dc, service);
        char sel[300];
        snprintf(sel, sizeof(sel), "service=\"%s\",env=\"%s\"", service, env);
        rc |= core_buf_addf(b,
                            "  - name: pave-%s-%s\n"
                            "    rules:\n"
                            "      - alert: PaveTargetDown\n"
                            "        expr: 'up{job=\"" SERVICES_JOB "\",%s} == 0'\n"
                            "        for: 1m\n"
                            "        labels:\n"
                            "          severity: page\n"
                            "        annotations:\n"
                            "          summary: 'replica {{ $labels.instance_name }} of "
                            "{{ $labels.service }} in {{ $labels.env }} is down'\n"
                            "          description: 'Prometheus has not been able to scrape "
                            "{{ $labels.instance }} for a minute.'\n",
                            service, env, sel);
        rc |= core_buf_addf(b,
                            "      - alert: PaveCrashLooping\n"
                            "        expr: |\n"
                            "          max by (service, env, replica) "
                            "(pave_replica_crash_looping{job=\"" PAVE_JOB "\",%s}) > 0\n"
                            "          or\n"
                            "          sum by (service, env, replica) "
                            "(increase(pave_replica_restarts_total{job=\"" PAVE_JOB
                            "\",%s}[15m])) > 3\n"
                            "        for: 1m\n"
                            "        labels:\n"
                            "          severity: page\n"
                            "          team: \"%s\"\n"
                            "        annotations:\n"
                            "          summary: 'replica {{ $labels.replica }} of "
                            "{{ $labels.service }} in {{ $labels.env }} keeps crashing'\n"
                            "          description: 'See pave status {{ $labels.service }} --env "
                            "{{ $labels.env }} and the replica log.'\n",
                            sel, sel, info->team);
        if (info->availability > 0) {
            rc |= add_burn_rule(b, sel, "PaveErrorBudgetBurnFast", 14.4, "1h", "5m", "page",
                                info->team, info->availability);
            rc |= add_burn_rule(b, sel, "PaveErrorBudgetBurnSlow", 6, "6h", "30m", "ticket",
                                info->team, info->availability);
        }
        groups++;
    }
    if (!groups && !api_addr[0])
        rc |= core_buf_adds(b, "  []\n");
    return rc;
}

/* Single-quoted YAML scalar: a quote is doubled, nothing else is special. */
static int add_yaml_quoted(struct core_buf *b, const char *s)
{
    int rc = core_buf_addc(b, '\'');
    for (; *s; s++)
        rc |= *s == '\'' ? core_buf_adds(b, "''") : core_buf_addc(b, *s);
    return rc | core_buf_addc(b, '\'');
}

static int render_config(const char *dir, struct core_buf *b)
{
    char targets[4400], rules[4400];
    snprintf(targets, sizeof(targets), "%s/targets.json", dir);
    snprintf(rules, sizeof(rules), "%s/rules.yml", dir);
    int rc = core_buf_adds(b, "# Generated by pave. Run: prometheus --config.file=THIS_FILE "
                              "(docs/monitoring.md)\n"
                              "global:\n"
                              "  scrape_interval: 5s\n"
                              "  scrape_timeout: 4s\n"
                              "  evaluation_interval: 5s\n"
                              "rule_files:\n"
                              "  - ");
    rc |= add_yaml_quoted(b, rules);
    rc |= core_buf_adds(b, "\nscrape_configs:\n"
                           "  - job_name: " SERVICES_JOB "\n"
                           "    metrics_path: /metrics\n"
                           "    file_sd_configs:\n"
                           "      - refresh_interval: 5s\n"
                           "        files:\n"
                           "          - ");
    rc |= add_yaml_quoted(b, targets);
    rc |= core_buf_adds(b, "\n");
    return rc;
}

void deploy_monitoring_write(struct deploy_controller *dc, json_t *snapshot)
{
    char dir[4200], api_addr[sizeof(dc->mon.api_addr)];
    struct core_err err = {0};
    struct core_buf b;
    char *targets = NULL;
    core_buf_init(&b, MON_FILE_MAX);
    pthread_mutex_lock(&dc->mu);
    memcpy(api_addr, dc->mon.api_addr, sizeof(api_addr));
    pthread_mutex_unlock(&dc->mu);
    snprintf(dir, sizeof(dir), "%s/monitoring", dc->data_dir);
    if (core_mkdir_p(dir, 0700, &err)) {
        log_warn("deploy", "cannot create the monitoring directory", LOG_STR("dir", dir),
                 LOG_STR("error", err.msg));
        goto out;
    }
    /* targets and rules first: prometheus.yml names them, so they exist when it is there */
    if (!(targets = render_targets(dc, snapshot, api_addr)))
        goto out;
    write_if_changed(dir, "targets.json", targets);
    if (render_rules(dc, snapshot, api_addr, &b) == 0)
        write_if_changed(dir, "rules.yml", b.data);
    core_buf_clear(&b);
    if (render_config(dir, &b) == 0)
        write_if_changed(dir, "prometheus.yml", b.data);
out:
    core_free(targets);
    core_buf_release(&b);
}

void deploy_set_api_addr(struct deploy_controller *dc, const char *addr)
{
    if (!dc)
        return;
    pthread_mutex_lock(&dc->mu);
    snprintf(dc->mon.api_addr, sizeof(dc->mon.api_addr), "%s", addr ? addr : "");
    pthread_mutex_unlock(&dc->mu);
    deploy_wake(dc);
}

/* ---- the server's /metrics ------------------------------------------------------------------ */

enum replica_metric {
    METRIC_READY = 0,
    METRIC_CRASH_LOOPING,
    METRIC_RESTARTS,
    METRIC_COUNT,
};

static const char *const metric_head[METRIC_COUNT] = {
    "# HELP pave_replica_ready Whether a deployed replica passes its health "
    "check (1) or not.\n"
    "# TYPE pave_replica_ready gauge\n",
    "# HELP pave_replica_crash_looping Whether the supervisor gave up "
    "restarting a replica "
    "quickly (crash-loop or failed).\n"
    "# TYPE pave_replica_crash_looping gauge\n",
    "# HELP pave_replica_restarts_total Restarts of a replica by its "
    "supervisor.\n"
    "# TYPE pave_replica_restarts_total counter\n",
};
static const char *const metric_name[METRIC_COUNT] = {
    "pave_replica_ready", "pave_replica_crash_looping", "pave_replica_restarts_total"};

static long long metric_value(enum replica_metric m, json_t *r)
{
    const char *st = json_string_value(json_object_get(r, "state"));
    switch (m) {
    case METRIC_READY:
        return json_is_true(json_object_get(r, "ready"));
    case METRIC_CRASH_LOOPING:
        return st && (strcmp(st, "crash-loop") == 0 || strcmp(st, "failed") == 0);
    case METRIC_RESTARTS:
    case METRIC_COUNT:
        break;
    }
    return (long long)json_integer_value(json_object_get(r, "restarts"));
}

int deploy_metrics(struct deploy_controller *dc, struct core_buf *out)
{
    if (!dc)
        return 0;
    int rc = 0;
    const char *key;
    json_t *t;
    pthread_mutex_lock(&dc->mu);
    /* the text format wants every sample of a metric under its one TYPE line: a pass each */
    for (int m = 0; m < METRIC_COUNT; m++) {
        rc |= core_buf_adds(out, metric_head[m]);
        json_object_foreach (dc->snapshot, key, t) {
            const char *service = str_of(t, "service"), *env = str_of(t, "env");
            if (!plain_name(service) || !plain_name(env))
                continue;
            size_t i;
            json_t *r;
            json_array_foreach (json_object_get(t, "replicas"), i, r) {
                const char *name = str_of(r, "name"), *rev = str_of(r, "revision");
                if (!plain_name(name))
                    continue;
                rc |= core_buf_addf(out,
                                    "%s{service=\"%s\",env=\"%s\",replica=\"%s\","
                                    "revision=\"%s\"} %lld\n",
                                    metric_name[m], service, env, name, plain_name(rev) ? rev : "",
                                    metric_value(m, r));
            }
        }
    }
    rc |= core_buf_adds(out, "# HELP pave_deploy_replicas_wanted Replicas wanted per service "
                             "and environment.\n"
                             "# TYPE pave_deploy_replicas_wanted gauge\n");
    json_object_foreach (dc->snapshot, key, t) {
        const char *service = str_of(t, "service"), *env = str_of(t, "env");
        if (plain_name(service) && plain_name(env))
            rc |= core_buf_addf(
                out, "pave_deploy_replicas_wanted{service=\"%s\",env=\"%s\"} %lld\n", service, env,
                (long long)json_integer_value(json_object_get(t, "replicas_wanted")));
    }
    pthread_mutex_unlock(&dc->mu);
    return rc == 0 ? 0 : rc == CORE_E_NOMEM ? CORE_E_NOMEM : CORE_E_TOO_BIG;
}
