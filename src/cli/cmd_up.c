/* `pave up` and `pave server`: run the platform in the foreground until SIGINT/SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "artifact/artifact.h"
#include "auth/auth.h"
#include "catalog/catalog.h"
#include "cloud/cloud.h"
#include "deploy/deploy.h"
#include "ci/ci.h"
#include "cli/cli.h"
#include "pki/pki.h"
#include "policy/policy.h"
#include "secret/secret.h"
#include "security/security.h"
#include "portal/portal.h"
#include "registry/registry.h"
#include "store/store.h"
#include "telemetry/telemetry.h"

#define FIM_PATHS_MAX 32

struct server_opts {
    const char *data_dir;
    const char *listen;
    const char *store_url;
    bool demo;
    bool write_token;
    const char *ci_workers;
    bool allow_unisolated;
    const char *ingress;        /* ADDR:PORT of the load balancer, "off", NULL: off */
    const char *service_ports;  /* first service-discovery port */
    bool stop_workloads;        /* on exit, stop replicas and HAProxy too */
    bool ingress_optional;      /* pave up: a load balancer that cannot start only warns */
    const char *telemetry;      /* pipeline config (YAML); NULL: DATA/telemetry.yaml or defaults */
    const char *acme_http_port; /* ACME http-01 validation port (default 80) */
    const char *acme_domain;    /* ACME default policy also allows *.<domain> */
    const char *ingress_tls;    /* ADDR:PORT of the load balancer's TLS frontend, "off", NULL */
    const char *cert_lifetime;  /* service certificates' lifetime (default 24h) */
    const char *alert_webhook;  /* new security alerts are POSTed here; NULL: none */
    const char *alert_file;     /* ... and appended here (default DATA/security/alerts.jsonl) */
    const char *sigma_rules;    /* detection rules besides the built-in ones; NULL: none */
    const char *fim_path;       /* last --fim-path (cli_parse); every one is in fim_paths */
    const char *fim_paths[FIM_PATHS_MAX]; /* --fim-path, repeatable: watched files and dirs */
    size_t nfim_paths;
    const char *fim_interval;   /* --fim-interval MS: file integrity scan period (10000) */
};

static int parse_listen(const char *listen, char *addr, size_t addrsz, int *port)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= addrsz)
        return -1;
    memcpy(addr, listen, (size_t)(colon - listen));
    addr[colon - listen] = 0;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

/* The background checks: the policy scan and the budget check (a team at risk or over its
 * budget gets one cost alert per month, docs/cost.md), one round at start, then every 5 minutes,
 * until stopped. */
#define POLICY_SCAN_EVERY_MS (5 * 60 * 1000)

struct policy_scanner {
    struct policy_engine *pe;
    struct store *st;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    bool running;
};

static void *policy_scan_loop(void *arg)
{
    struct policy_scanner *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        pthread_mutex_unlock(&s->lock);
        struct core_err err = {0};
        if (policy_scan(s->pe, NULL, &err))
            log_warn("policy", "scan failed", LOG_STR("error", err.msg));
        core_err_clear(&err);
        json_t *budgets = cloud_budget_list(s->st, NULL, true, &err);
        if (!budgets)
            log_warn("cost", "budget check failed", LOG_STR("error", err.msg));
        json_decref(budgets);
        pthread_mutex_lock(&s->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += POLICY_SCAN_EVERY_MS / 1000;
        while (!s->stop && pthread_cond_timedwait(&s->cond, &s->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void policy_scanner_stop(struct policy_scanner *s)
{
    if (!s->running)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    s->running = false;
}

/* The default pipeline of the server (the engine's defaults, src/telemetry/engine.c) with the
 * detections: the sigma transform with the built-in rules and --sigma-rules, the detect
 * transform (built-in detections, src/security/detect.c), and the security sink for the
 * records sigma tags. Used when there is no telemetry config file. */
static char *default_pipeline(const char *sigma_rules)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    core_buf_adds(&b, "sources: [{type: replicas}, {type: platform}, {type: audit}]\n"
                      "transforms:\n  - {type: enrich}\n  - {type: redact}\n"
                      "  - {type: sigma, builtin: true");
    if (sigma_rules) {
        /* a YAML single-quoted scalar: quotes are doubled */
        core_buf_adds(&b, ", rules: '");
        for (const char *p = sigma_rules; *p; p++)
            *p == '\'' ? core_buf_adds(&b, "''") : core_buf_addc(&b, *p);
        core_buf_adds(&b, "'");
    }
    core_buf_adds(&b, "}\n  - {type: detect}\nsinks:\n  - {type: store}\n"
                      "  - {type: security, when: {attribute: security.rule_ids}}\n");
    return core_buf_detach(&b, NULL);
}

/* The alert book, the rules for listing and the default pipeline text. returns: 0, or non-zero
 * after printing why. */
static int start_detections(const struct server_opts *o, struct store *st,
                            struct security_alerts **alerts, struct security_sigma_set **rules,
                            char **tel_text)
{
    struct core_err err = {0};
    char file[4200];
    if (o->alert_file)
        snprintf(file, sizeof(file), "%s", o->alert_file);
    else
        snprintf(file, sizeof(file), "%s/security/alerts.jsonl", o->data_dir);
    struct security_alert_opts ao = {.webhook_url = o->alert_webhook, .file_path = file};
    if (!(*alerts = security_alerts_open(st, &ao, &err))) {
        cli_error("cannot start security alerts: %s (check --alert-webhook and --alert-file)",
                  err.msg);
        return -1;
    }
    if (!(*rules = security_sigma_set_new()) || security_sigma_add_builtin(*rules, &err) ||
        (o->sigma_rules && security_sigma_add_path(*rules, o->sigma_rules, &err))) {
        cli_error("cannot load the detection rules: %s (--sigma-rules takes a Sigma rule file "
                  "or a directory of them)",
                  err.msg[0] ? err.msg : "out of memory");
        return -1;
    }
    for (size_t i = 0; i < security_sigma_rejected_count(*rules); i++)
        log_warn("security", "sigma rule not loaded",
                 LOG_STR("rule", security_sigma_rejected(*rules, i)->source),
                 LOG_STR("reason", security_sigma_rejected(*rules, i)->reason));
    if (!(*tel_text = default_pipeline(o->sigma_rules))) {
        cli_error("out of memory");
        return -1;
    }
    return 0;
}

/* The demo's billing data (docs/cost.md): the samples in tests/data/billing, found through
 * PAVE_DEMO_BILLING, the working directory (make up runs from the repository) or next to the
 * binary's build directory; imported only into a store without charges. A demo without them
 * still starts. */
static void demo_billing(struct store *st)
{
    char dir[4096] = "", exe[4096];
    const char *env = getenv("PAVE_DEMO_BILLING");
    struct stat sb;
    if (env && *env)
        snprintf(dir, sizeof(dir), "%s", env);
    else if (stat("tests/data/billing/focus1.0_sample_1000.csv", &sb) == 0)
        snprintf(dir, sizeof(dir), "tests/data/billing");
    else {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        char *slash;
        if (n > 0) {
            exe[n] = 0;
            if ((slash = strrchr(exe, '/'))) {
                *slash = 0;
                snprintf(dir, sizeof(dir), "%.4000s/../tests/data/billing", exe);
            }
        }
    }
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/focus1.0_sample_1000.csv", dir);
    if (!dir[0] || stat(probe, &sb) != 0) {
        log_info("up", "no demo billing samples found; /cost stays empty until pave cost import");
        return;
    }
    struct core_err err = {0};
    if (cloud_demo_load(st, dir, &err))
        log_warn("up", "demo billing import failed", LOG_STR("error", err.msg));
}

/* The demo organization (demo/org.yaml): accounts and OUs with SCP and tag policies, the
 * accounts the billing samples charge, so `pave org can` and `pave org tags check` answer. */
static void demo_org(struct store *st)
{
    struct core_err err = {0};
    if (cloud_org_demo_load(st, &err))
        log_warn("up", "demo organization failed to load", LOG_STR("error", err.msg));
}

/* Every --fim-path of argv (cli_parse keeps only the last) and --fim-interval, checked.
 * returns: CLI_OK or CLI_USAGE after saying why. */
static int fim_opts(int argc, char **argv, struct server_opts *o)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--fim-path") && i + 1 < argc)
            v = argv[++i];
        else if (!strncmp(argv[i], "--fim-path=", 11))
            v = argv[i] + 11;
        if (!v)
            continue;
        if (!v[0] || o->nfim_paths == FIM_PATHS_MAX) {
            cli_error("--fim-path takes a file or directory, at most %d of them",
                      FIM_PATHS_MAX);
            return CLI_USAGE;
        }
        o->fim_paths[o->nfim_paths++] = v;
    }
    if (o->fim_interval) {
        char *end = NULL;
        long ms = strtol(o->fim_interval, &end, 10);
        if (!end || *end || ms < 100 || ms > 86400000) {
            cli_error("invalid --fim-interval '%s': milliseconds from 100 to 86400000, e.g. "
                      "10000",
                      o->fim_interval);
            return CLI_USAGE;
        }
    }
    return CLI_OK;
}

/* File integrity (the --fim-path paths, and the deployed bundles when deployments run) and the
 * workload watch of the replicas (docs/security.md). returns: 0, or non-zero after printing
 * why. */
static int start_integrity(const struct server_opts *o, struct store *st,
                           struct security_alerts *alerts, struct deploy_controller *dc,
                           struct security_fim **fim, struct security_watch **watch)
{
    struct core_err err = {0};
    char bundles[4200];
    snprintf(bundles, sizeof(bundles), "%s/bundles", o->data_dir);
    int interval = o->fim_interval ? (int)strtol(o->fim_interval, NULL, 10) : 10000;
    struct security_fim_opts fo = {.paths = o->fim_paths, .npaths = o->nfim_paths,
                                   .bundles_dir = dc ? bundles : NULL, .interval_ms = interval};
    if (!(*fim = security_fim_start(st, alerts, &fo, &err))) {
        cli_error("cannot start file integrity monitoring: %s (check --fim-path)", err.msg);
        return -1;
    }
    if (dc && !(*watch = security_watch_start(st, alerts, dc, 2000, &err))) {
        cli_error("cannot start the workload watch: %s", err.msg);
        return -1;
    }
    return 0;
}

static int run_server(const struct server_opts *o)
{
    struct core_err err = {0};
    struct store *st = NULL;
    struct catalog *cat = NULL;
    struct portal *portal = NULL;
    struct api_server *srv = NULL;
    struct secret_box *box = NULL;
    struct ci_runner *runner = NULL;
    struct registry *reg = NULL;
    struct artifact_signer *signer = NULL;
    struct deploy_controller *dc = NULL;
    struct tel_engine *tel = NULL;
    struct policy_engine *pol = NULL;
    struct security_alerts *alerts = NULL;
    struct security_fim *fim = NULL;       /* file integrity (needs the alert book) */
    struct security_watch *watch = NULL;   /* replicas' processes and ports (needs deploy) */
    struct security_sigma_set *rules = NULL; /* the loaded detection rules, for listing */
    char *tel_text = NULL;                   /* the default pipeline with the detections */
    struct policy_gates gates = {0}; /* the guard rails every gate asks (docs/policy.md) */
    struct acme *acme = NULL;
    struct pki *pki = NULL;
    struct policy_scanner scanner = {.lock = PTHREAD_MUTEX_INITIALIZER,
                                     .cond = PTHREAD_COND_INITIALIZER};
    int rc = CLI_FAIL;
    char addr[64];
    int port;
    if (parse_listen(o->listen, addr, sizeof(addr), &port)) {
        cli_error("invalid --listen '%s': use ADDRESS:PORT, e.g. 127.0.0.1:7070", o->listen);
        return CLI_USAGE;
    }
    if (core_mkdir_p(o->data_dir, 0700, &err)) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    chmod(o->data_dir, 0700);
    /* Everything below works with absolute paths (sandbox mounts, CGI environments). */
    char abs_dir[4096];
    if (!realpath(o->data_dir, abs_dir)) {
        cli_error("cannot resolve the data directory '%s'", o->data_dir);
        return CLI_FAIL;
    }
    struct server_opts resolved = *o;
    resolved.data_dir = abs_dir;
    o = &resolved;
    char url[4200];
    if (o->store_url)
        snprintf(url, sizeof(url), "%s", o->store_url);
    else
        snprintf(url, sizeof(url), "sqlite:%s/pave.db", o->data_dir);
    if (store_open(&st, url, &err)) {
        cli_error("%s", err.msg);
        goto out;
    }
    if (!(cat = catalog_new(st, &err)) || catalog_env_defaults(cat, &err)) {
        cli_error("%s", err.msg);
        goto out;
    }
    if (o->demo && catalog_demo_load(cat, &err)) {
        cli_error("cannot load the demo organization: %s", err.msg);
        goto out;
    }
    if (o->demo)
        demo_billing(st);
    if (o->demo)
        demo_org(st);
    if (!(pol = policy_engine_open(st, cat, &err)) ||
        (o->demo && policy_engine_load_defaults(pol, &err))) {
        cli_error("cannot start policies: %s", err.msg);
        goto out;
    }
    /* The internal CA: a demo start creates it the first time; otherwise it is optional until
     * 'pave ca init' has run. */
    struct pki_config kcfg = {.data_dir = o->data_dir, .st = st};
    if (!(pki = pki_open(&kcfg, &err)) && err.code == CORE_E_NOTFOUND && o->demo) {
        if (pki_init(&kcfg, "Paved Demo", PKI_KEY_EC_P256, false, &err) == 0) {
            struct store_audit_event ev = {.actor = "system", .action = "pki.init",
                                           .kind = "ca", .object = "Paved Demo"};
            store_audit_append(st, &ev, NULL);
            pki = pki_open(&kcfg, &err);
        }
    }
    if (!pki && err.code != CORE_E_NOTFOUND) {
        cli_error("cannot open the certificate authority: %s", err.msg);
        goto out;
    }
    core_err_clear(&err);
    if (!(reg = registry_new(st, cat, o->data_dir, &err))) {
        cli_error("cannot start the registry: %s", err.msg);
        goto out;
    }
    char token[AUTH_TOKEN_LEN + 1] = "";
    bool created = false;
    if (auth_bootstrap(st, cat, token, &created, &err)) {
        cli_error("cannot create the admin token: %s", err.msg);
        goto out;
    }
    char token_path[4200];
    snprintf(token_path, sizeof(token_path), "%s/admin.token", o->data_dir);
    if (created && o->write_token) {
        char line[AUTH_TOKEN_LEN + 2];
        snprintf(line, sizeof(line), "%s\n", token);
        if (core_file_write_atomic(token_path, line, strlen(line), 0600, &err)) {
            cli_error("%s", err.msg);
            goto out;
        }
    }
    char key_path[4200];
    snprintf(key_path, sizeof(key_path), "%s/secret.key", o->data_dir);
    if (!(box = secret_box_open(key_path, &err))) {
        cli_error("%s", err.msg);
        goto out;
    }
    char signing_path[4200];
    snprintf(signing_path, sizeof(signing_path), "%s/signing.key", o->data_dir);
    if (!(signer = artifact_signer_open(signing_path, &err))) {
        cli_error("%s", err.msg);
        goto out;
    }
    /* Block the stop signals before the server starts its threads, so only sigwait sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    long workers = o->ci_workers ? strtol(o->ci_workers, NULL, 10) : 2;
    if (workers < 1 || workers > 8) {
        cli_error("--ci-workers must be 1 to 8");
        rc = CLI_USAGE;
        goto out;
    }
    gates = (struct policy_gates){.pe = pol, .cat = cat, .reg = reg, .signer = signer};
    catalog_set_gate(cat, policy_gate_catalog_cb, &gates);
    registry_set_gate(reg, policy_gate_registry_cb, &gates);
    struct ci_runner_config rcfg = {.data_dir = o->data_dir, .concurrency = (int)workers,
                                    .allow_unisolated = o->allow_unisolated, .registry = reg,
                                    .signer = signer, .gate = policy_gate_pipeline_cb,
                                    .gate_arg = &gates};
    if (!(runner = ci_runner_start(&rcfg, st, cat, box, &err))) {
        cli_error("cannot start the pipeline runner: %s", err.msg);
        goto out;
    }
    if (o->ingress && strcmp(o->ingress, "off") != 0) {
        char iaddr[64], self[4096];
        int iport = 0;
        long base = o->service_ports ? strtol(o->service_ports, NULL, 10) : DEPLOY_PORT_BASE;
        if (parse_listen(o->ingress, iaddr, sizeof(iaddr), &iport) || iport == 0) {
            cli_error("invalid --ingress '%s': use ADDRESS:PORT, e.g. 127.0.0.1:8080, or off",
                      o->ingress);
            rc = CLI_USAGE;
            goto out;
        }
        if (base < 1024 || base > 65000) {
            cli_error("--service-ports must be a port from 1024 to 65000");
            rc = CLI_USAGE;
            goto out;
        }
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        self[n > 0 ? n : 0] = 0;
        char taddr[64] = "";
        int tport = 0;
        int64_t life = 0;
        if (o->ingress_tls && strcmp(o->ingress_tls, "off") != 0 &&
            (parse_listen(o->ingress_tls, taddr, sizeof(taddr), &tport) || tport == 0)) {
            cli_error("invalid --ingress-tls '%s': use ADDRESS:PORT, e.g. 127.0.0.1:8443, or off",
                      o->ingress_tls);
            rc = CLI_USAGE;
            goto out;
        }
        if (o->cert_lifetime &&
            (core_parse_duration_ms(o->cert_lifetime, &life) || life < 10000)) {
            cli_error("invalid --cert-lifetime '%s': a duration of at least 10s, e.g. 24h",
                      o->cert_lifetime);
            rc = CLI_USAGE;
            goto out;
        }
        if (tport && !pki) {
            fprintf(stderr, "pave: no CA ('pave ca init'): the load balancer serves no TLS\n");
            tport = 0;
        }
        struct deploy_config dcfg = {.data_dir = o->data_dir, .self_exe = self, .st = st,
                                     .cat = cat, .reg = reg, .secrets = box,
                                     .listen_addr = iaddr, .ingress_port = iport,
                                     .port_base = (int)base,
                                     .allow_unisolated = o->allow_unisolated,
                                     .pki = pki, .cert_lifetime_ms = life,
                                     .tls_addr = tport ? taddr : NULL, .tls_port = tport};
        dc = deploy_start(&dcfg, &err);
        if (!dc && tport && o->ingress_optional) {
            /* pave up: a taken TLS port should not cost the deployments */
            fprintf(stderr, "pave: no TLS frontend on %s (%s); continuing without it\n",
                    o->ingress_tls, err.msg);
            dcfg.tls_port = 0;
            dcfg.tls_addr = NULL;
            dc = deploy_start(&dcfg, &err);
        }
        if (!dc) {
            cli_error("cannot start deployments: %s (install haproxy with scripts/install-deps, "
                      "free the port or pick another with --ingress ADDR:PORT, or run with "
                      "--ingress off)",
                      err.msg);
            if (!o->ingress_optional)
                goto out;
            fprintf(stderr, "pave: continuing without deployments\n");
        } else {
            deploy_set_gate(dc, policy_gate_deploy_cb, &gates);
        }
    }
    if (start_detections(o, st, &alerts, &rules, &tel_text))
        goto out;
    if (start_integrity(o, st, alerts, dc, &fim, &watch))
        goto out;
    char tel_path[4200];
    snprintf(tel_path, sizeof(tel_path), "%s/telemetry.yaml", o->data_dir);
    struct tel_engine_config tcfg = {
        .data_dir = o->data_dir,
        .config_path = o->telemetry                  ? o->telemetry
                       : access(tel_path, R_OK) == 0 ? tel_path
                                                     : NULL,
        .cat = cat,
        .alerts = alerts,
        .st = st,
    };
    if (!tcfg.config_path)
        tcfg.config_text = tel_text;
    if (!(tel = tel_engine_start(&tcfg, &err))) {
        cli_error("cannot start the observability pipeline: %s (see docs/telemetry.md)",
                  err.msg);
        goto out;
    }
    struct portal_deps pdeps = {.st = st, .cat = cat, .runner = runner, .data_dir = o->data_dir,
                                .registry = reg, .signer = signer, .deploy = dc,
                                .policy = pol, .pki = pki};
    pdeps.rules = rules;
    if (!(portal = portal_new(&pdeps, &err))) {
        cli_error("%s", err.msg);
        goto out;
    }
    struct api_config cfg = {.listen_addr = addr, .port = port};
    struct api_deps deps = {.st = st, .cat = cat, .portal = portal, .runner = runner,
                            .secrets = box, .signer = signer, .data_dir = o->data_dir,
                            .registry = reg, .deploy = dc, .telemetry = tel, .policy = pol,
                            .pki = pki};
    deps.alerts = alerts;
    deps.rules = rules;
    deps.fim = fim;
    /* ACME (RFC 8555) at /acme/ whenever the CA is open */
    if (deps.pki) {
        long hp = o->acme_http_port ? strtol(o->acme_http_port, NULL, 10) : 80;
        if (hp < 1 || hp > 65535) {
            cli_error("--acme-http-port must be a port from 1 to 65535");
            goto out;
        }
        struct acme_config acfg = {.pki = deps.pki, .st = st, .http_port = (int)hp,
                                   .platform_domain = o->acme_domain};
        if (!(acme = acme_new(&acfg, &err))) {
            cli_error("cannot start the ACME server: %s", err.msg);
            goto out;
        }
        deps.acme = acme;
    }
    if (!(srv = api_server_start(&cfg, &deps, &err))) {
        cli_error("%s", err.msg);
        goto out;
    }
    int bound = api_server_port(srv);
    if (pki) {
        /* certificates point relying parties at this server's public CRL */
        char crl_url[160];
        bool any_addr = !addr[0] || !strcmp(addr, "0.0.0.0");
        snprintf(crl_url, sizeof(crl_url), "http://%s:%d/pki/crl.der",
                 any_addr ? "127.0.0.1" : addr, bound);
        if (pki_set_crl_url(pki, crl_url, &err))
            log_warn("pki", "no CRL distribution point", LOG_STR("error", err.msg));
    }
    scanner.pe = pol;
    scanner.st = st;
    if (pthread_create(&scanner.thread, NULL, policy_scan_loop, &scanner) == 0)
        scanner.running = true;
    else
        log_warn("policy", "cannot start the background scan");
    if (dc) {
        /* the "pave" scrape target of DATA/monitoring: loopback when bound to every address */
        char self[128];
        bool any = !addr[0] || !strcmp(addr, "0.0.0.0") || !strcmp(addr, "::");
        snprintf(self, sizeof(self), "%s:%d", any ? "127.0.0.1" : addr, bound);
        deploy_set_api_addr(dc, self);
    }
    log_info("server", "listening", LOG_STR("address", addr), LOG_INT("port", bound),
             LOG_STR("store", store_backend_name(st)), LOG_STR("data_dir", o->data_dir));
    printf("Paved %s is running.\n", PAVE_VERSION);
    printf("  Portal:   http://%s:%d/\n", addr, bound);
    printf("  API:      http://%s:%d/api/v1\n", addr, bound);
    printf("  Git:      http://%s:%d/git/<service>.git (user: anything, password: a token)\n",
           addr, bound);
    printf("  Data dir: %s\n", o->data_dir);
    printf("  Pipelines: %ld worker(s), isolation %s\n", workers, ci_runner_isolation(runner));
    if (dc)
        printf("  Load balancer: http://%s (HAProxy); deploy with 'pave deploy SERVICE --env ENV'\n",
               o->ingress);
    if (dc && deploy_tls_port(dc))
        printf("  TLS:      port %d, certificates from the platform CA\n", deploy_tls_port(dc));
    if (pki)
        printf("  CA:       http://%s:%d/pki/ca.pem; ACME: http://%s:%d/acme/directory\n", addr,
               bound, addr, bound);
    if (created) {
        printf("  Admin token (shown once; only its hash is stored): %s\n", token);
        if (o->write_token)
            printf("  The admin token is also in %s (mode 0600).\n", token_path);
    } else if (o->write_token && access(token_path, R_OK) == 0) {
        printf("  Admin token: in %s\n", token_path);
    } else {
        printf("  Admin token: created on first start; create more with 'pave token create'.\n");
    }
    printf("Sign in to the portal with the token. Stop with Ctrl-C.\n");
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    log_info("server", "stopping", LOG_INT("signal", sig));
    rc = CLI_OK;
out:
    /* Stop what uses the others first: requests, then the portal, then runs in progress. */
    api_server_stop(srv);
    acme_free(acme); /* after the server: no request uses it any more */
    pki_close(pki);
    policy_scanner_stop(&scanner);
    tel_engine_stop(tel, 5000);
    security_watch_stop(watch); /* before the deploy controller it asks */
    security_fim_stop(fim);
    if (dc && o->stop_workloads) {
        deploy_stop_all(dc);
    } else if (dc) {
        deploy_stop(dc);
        printf("Deployed replicas and the load balancer keep running; the next start adopts "
               "them (stop everything with --stop-workloads).\n");
    }
    portal_free(portal);
    ci_runner_stop(runner);
    registry_free(reg);
    secret_box_free(box);
    artifact_signer_free(signer);
    policy_engine_free(pol);
    /* after the pipeline and the API, which raise and read alerts; drains the routing queue */
    security_alerts_free(alerts);
    security_sigma_set_free(rules);
    core_free(tel_text);
    catalog_free(cat);
    store_close(st);
    return rc;
}

int cli_cmd_server(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: pave server [--data-dir DIR] [--listen ADDR:PORT] [--store URL] [--demo]\n"
               "\n"
               "Runs the platform: the API under /api/v1, the portal at /, /healthz and\n"
               "/metrics. On first start it creates the admin user and prints an admin token\n"
               "once; only its hash is stored.\n\n"
               "  --data-dir DIR      state directory (default ./.pave)\n"
               "  --listen ADDR:PORT  address to bind (default 127.0.0.1:7070; port 0 = any)\n"
               "  --store URL         state store (default sqlite:DIR/pave.db)\n"
               "  --demo              load the demo organization and write the admin token to\n"
               "                      DIR/admin.token (mode 0600), as 'pave up' does\n"
               "  --ci-workers N      pipeline runs at once (default 2)\n"
               "  --allow-unisolated  run pipeline steps and deployed replicas without namespaces\n"
               "                      where bubblewrap is unavailable (default: they fail)\n"
               "  --ingress ADDR:PORT start the load balancer (HAProxy) there and enable\n"
               "                      deployments (default off; 'pave up' uses 127.0.0.1:8080)\n"
               "  --ingress-tls ADDR:PORT  the load balancer also terminates TLS there with\n"
               "                      service certificates (default off; 'pave up' uses\n"
               "                      127.0.0.1:8443; needs the CA)\n"
               "  --cert-lifetime D   lifetime of service certificates (default 24h; renewed\n"
               "                      at two thirds; see docs/deploy.md)\n"
               "  --service-ports N   first port of the per-service discovery addresses\n"
               "                      (<NAME>_URL; default 18000)\n"
               "  --telemetry-config FILE  the observability pipeline (default DIR/telemetry.yaml\n"
               "                      if present, else the defaults: docs/telemetry.md)\n"
               "  --sigma-rules PATH  detection rules (a Sigma file or a directory of them) run\n"
               "                      besides the built-in ones (docs/security.md)\n"
               "  --alert-webhook URL new security alerts are POSTed there as JSON\n"
               "  --alert-file PATH   ... and appended there as JSON lines (default\n"
               "                      DIR/security/alerts.jsonl)\n"
               "  --fim-path PATH     watch PATH (a file or a directory, recursively) for file\n"
               "                      integrity changes; repeatable. Deployed bundles are\n"
               "                      always watched when deployments run (docs/security.md)\n"
               "  --fim-interval MS   file integrity scan period (default 10000)\n"
               "  --stop-workloads    on exit also stop deployed replicas and HAProxy (by\n"
               "                      default they keep serving and the next start adopts them)\n"
               "  --acme-http-port N  port the ACME server validates http-01 challenges on\n"
               "                      (default 80; see docs/pki.md)\n"
               "  --acme-domain D     the ACME default policy also allows names under D\n"
               "                      (always: *.localhost, *.internal)\n");
        return CLI_OK;
    }
    struct server_opts o = {.data_dir = ".pave", .listen = "127.0.0.1:7070"};
    const struct cli_opt opts[] = {
        {"data-dir", 'd', &o.data_dir, NULL},
        {"listen", 'l', &o.listen, NULL},
        {"store", 0, &o.store_url, NULL},
        {"demo", 0, NULL, &o.demo},
        {"ci-workers", 0, &o.ci_workers, NULL},
        {"allow-unisolated", 0, NULL, &o.allow_unisolated},
        {"ingress", 0, &o.ingress, NULL},
        {"ingress-tls", 0, &o.ingress_tls, NULL},
        {"cert-lifetime", 0, &o.cert_lifetime, NULL},
        {"service-ports", 0, &o.service_ports, NULL},
        {"telemetry-config", 0, &o.telemetry, NULL},
        {"alert-webhook", 0, &o.alert_webhook, NULL},
        {"alert-file", 0, &o.alert_file, NULL},
        {"sigma-rules", 0, &o.sigma_rules, NULL},
        {"fim-path", 0, &o.fim_path, NULL},
        {"fim-interval", 0, &o.fim_interval, NULL},
        {"stop-workloads", 0, NULL, &o.stop_workloads},
        {"acme-http-port", 0, &o.acme_http_port, NULL},
        {"acme-domain", 0, &o.acme_domain, NULL},
        {NULL, 0, NULL, NULL},
    };
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos);
    if (rc || (rc = fim_opts(argc, argv, &o)))
        return rc;
    o.write_token = o.demo;
    return run_server(&o);
}

int cli_cmd_up(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: pave up [--data-dir DIR] [--listen ADDR:PORT] [--ingress ADDR:PORT|off]\n"
               "               [--stop-workloads]\n\n"
               "Runs the whole platform on this machine with its embedded defaults: state in\n"
               "SQLite under ./.pave, API and portal on 127.0.0.1:7070, and a demo organization\n"
               "(teams payments and identity, three services, environments dev/staging/prod).\n"
               "The admin token is printed once on first start and kept in .pave/admin.token\n"
               "(mode 0600) so the CLI on this machine works without 'pave login'.\n"
               "The load balancer (HAProxy) listens on 127.0.0.1:8080 for 'pave deploy', and\n"
               "with service certificates on 127.0.0.1:8443 (--ingress-tls ADDR:PORT|off,\n"
               "--cert-lifetime D).\n"
               "Deployed replicas keep running when pave stops, unless --stop-workloads.\n"
               "Security: --sigma-rules PATH, --alert-webhook URL, --alert-file PATH,\n"
               "--fim-path PATH (repeatable), --fim-interval MS as for 'pave server'.\n");
        return CLI_OK;
    }
    struct server_opts o = {.data_dir = ".pave", .listen = "127.0.0.1:7070", .demo = true,
                            .write_token = true, .ingress = "127.0.0.1:8080",
                            .ingress_tls = "127.0.0.1:8443", .ingress_optional = true};
    const struct cli_opt opts[] = {
        {"data-dir", 'd', &o.data_dir, NULL},
        {"listen", 'l', &o.listen, NULL},
        {"ingress", 0, &o.ingress, NULL},
        {"ingress-tls", 0, &o.ingress_tls, NULL},
        {"cert-lifetime", 0, &o.cert_lifetime, NULL},
        {"stop-workloads", 0, NULL, &o.stop_workloads},
        {"alert-webhook", 0, &o.alert_webhook, NULL},
        {"alert-file", 0, &o.alert_file, NULL},
        {"sigma-rules", 0, &o.sigma_rules, NULL},
        {"fim-path", 0, &o.fim_path, NULL},
        {"fim-interval", 0, &o.fim_interval, NULL},
        {NULL, 0, NULL, NULL},
    };
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos);
    if (rc || (rc = fim_opts(argc, argv, &o)))
        return rc;
    return run_server(&o);
}
