/* Request counters and latency histograms in Prometheus text format. */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"

static const double bucket_bounds[API_METRIC_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
};

void api_metrics_init(struct api_metrics *m)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    m->started_ms = core_now_ms();
}

void api_metrics_release(struct api_metrics *m)
{
    pthread_mutex_destroy(&m->lock);
}

static struct api_metric_route *slot(struct api_metrics *m, int route)
{
    if (route >= 0 && route < API_METRIC_ROUTES)
        return &m->routes[route];
    return route == API_ROUTE_PORTAL ? &m->routes[API_METRIC_ROUTES]
                                     : &m->routes[API_METRIC_ROUTES + 1];
}

void api_metrics_observe(struct api_metrics *m, int route, int status, double seconds)
{
    pthread_mutex_lock(&m->lock);
    struct api_metric_route *r = slot(m, route);
    for (int i = 0; i < API_METRIC_STATUSES; i++) {
        if (r->statuses[i] == status || r->statuses[i] == 0) {
            r->statuses[i] = status;
            r->counts[i]++;
            break;
        }
    }
    for (int i = 0; i < API_METRIC_BUCKETS; i++) {
        if (seconds <= bucket_bounds[i]) {
            r->buckets[i]++;
            break;
        }
    }
    r->n++;
    r->sum += seconds;
    pthread_mutex_unlock(&m->lock);
}

static void route_label(int idx, char *out, size_t outsz)
{
    const struct api_route *rt = idx < API_METRIC_ROUTES ? api_route_at((size_t)idx) : NULL;
    if (rt)
        snprintf(out, outsz, "%s %s", rt->method, rt->pattern);
    else if (idx == API_METRIC_ROUTES)
        snprintf(out, outsz, "portal");
    else
        snprintf(out, outsz, "other");
}

int api_metrics_render(struct api_metrics *m, struct core_buf *out)
{
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    rc |= core_buf_adds(out, "# HELP pave_http_requests_total HTTP requests by route and status.\n"
                             "# TYPE pave_http_requests_total counter\n");
    for (int i = 0; i < API_METRIC_ROUTES + 2; i++) {
        if (i < API_METRIC_ROUTES && i >= (int)api_route_count())
            continue;
        char label[160];
        route_label(i, label, sizeof(label));
        for (int s = 0; s < API_METRIC_STATUSES && m->routes[i].statuses[s]; s++)
            rc |= core_buf_addf(out, "pave_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                                label, m->routes[i].statuses[s],
                                (unsigned long long)m->routes[i].counts[s]);
    }
    rc |= core_buf_adds(out,
                        "# HELP pave_http_request_duration_seconds HTTP request latency by route.\n"
                        "# TYPE pave_http_request_duration_seconds histogram\n");
    for (int i = 0; i < API_METRIC_ROUTES + 2; i++) {
        struct api_metric_route *r = &m->routes[i];
        if (!r->n)
            continue;
        char label[160];
        route_label(i, label, sizeof(label));
        uint64_t cum = 0;
        for (int b = 0; b < API_METRIC_BUCKETS; b++) {
            cum += r->buckets[b];
            rc |= core_buf_addf(out,
                                "pave_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                                "%llu\n",
                                label, bucket_bounds[b], (unsigned long long)cum);
        }
        rc |= core_buf_addf(out,
                            "pave_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                            "%llu\n"
                            "pave_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                            "pave_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                            label, (unsigned long long)r->n, label, r->sum, label,
                            (unsigned long long)r->n);
    }
    rc |= core_buf_addf(out,
                        "# HELP pave_process_start_time_seconds Start time of the server.\n"
                        "# TYPE pave_process_start_time_seconds gauge\n"
                        "pave_process_start_time_seconds %lld\n",
                        (long long)(m->started_ms / 1000));
    pthread_mutex_unlock(&m->lock);
    return rc ? CORE_E_NOMEM : 0;
}
