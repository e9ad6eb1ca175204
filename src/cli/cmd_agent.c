/* `pave agent`: the telemetry pipeline on its own, as a logging agent on any host. The same
 * engine the server runs (docs/telemetry.md), configured by a YAML file, until SIGINT/SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "cli/cli.h"
#include "store/store.h"
#include "telemetry/telemetry.h"

static const char agent_usage[] =
    "usage: pave agent --config FILE [--data-dir DIR] [--store URL] [--workers N]\n\n"
    "Runs the observability pipeline alone: the sources, transforms and sinks of FILE\n"
    "(docs/telemetry.md), with checkpoints, disk buffers and dead letters under DIR\n"
    "(default ./.pave-agent). With --store (the platform's state store, e.g.\n"
    "sqlite:/srv/pave/pave.db) records are enriched with the owning team from the catalog.\n"
    "Stops on SIGINT or SIGTERM after draining what it can within 10 s; disk buffers keep\n"
    "the rest for the next start. Check a config with --check.\n\n"
    "flags:\n"
    "  --config FILE, -c FILE   the pipeline (YAML); required\n"
    "  --data-dir DIR, -d DIR   state directory\n"
    "  --store URL              state store for enrichment (optional)\n"
    "  --workers N              transform threads (default: cores, at most 4)\n"
    "  --check                  validate the config, build every component, then exit\n";

int cli_cmd_agent(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(agent_usage, stdout);
        return CLI_OK;
    }
    const char *config = NULL, *data_dir = ".pave-agent", *store_url = NULL, *workers = NULL;
    bool check = false;
    const struct cli_opt opts[] = {{"config", 'c', &config, NULL},
                                   {"data-dir", 'd', &data_dir, NULL},
                                   {"store", 0, &store_url, NULL},
                                   {"workers", 0, &workers, NULL},
                                   {"check", 0, NULL, &check},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos);
    if (rc)
        return rc;
    if (!config) {
        cli_error("agent needs --config FILE (see 'pave agent --help')");
        return CLI_USAGE;
    }
    long nw = workers ? strtol(workers, NULL, 10) : 0;
    if (workers && (nw < 1 || nw > 16)) {
        cli_error("--workers must be 1 to 16");
        return CLI_USAGE;
    }
    struct core_err err = {0};
    struct store *st = NULL;
    struct catalog *cat = NULL;
    struct tel_engine *e = NULL;
    rc = CLI_FAIL;
    if (core_mkdir_p(data_dir, 0700, &err)) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    if (store_url && (store_open(&st, store_url, &err) || !(cat = catalog_new(st, &err)))) {
        cli_error("%s", err.msg);
        goto out;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct tel_engine_config cfg = {.data_dir = data_dir, .config_path = config, .cat = cat,
                                    .tune_malloc = true,
                                    .workers = (int)nw};
    if (!(e = tel_engine_start(&cfg, &err))) {
        cli_error("%s", err.msg);
        goto out;
    }
    if (check) {
        printf("%s: ok\n", config);
        rc = CLI_OK;
        goto out;
    }
    log_info("agent", "pipeline running", LOG_STR("config", config),
             LOG_STR("data_dir", data_dir));
    int sig = 0;
    sigwait(&set, &sig);
    log_info("agent", "stopping", LOG_INT("signal", sig));
    rc = CLI_OK;
out:
    tel_engine_stop(e, check ? 0 : 10000);
    catalog_free(cat);
    store_close(st);
    return rc;
}
