/*
 * cli: the `pave` command line. Commands are `pave <group> <verb> [flags]`, dispatched from one
 * table in commands.c (name, handler, one-line help), in the style of git's builtins: each group
 * lives in cmd_<group>.c and exposes `int cli_cmd_<group>(struct cli_ctx *, int argc, char **argv)`.
 *
 * Exit codes: 0 success, 1 failure (the server or the work said no), 2 usage error. Errors go to
 * stderr as one line "pave: <message>" plus hints; results go to stdout. Listings take
 * `-o table|json|yaml`.
 *
 * Client commands talk to the server over HTTP (libcurl). The server URL and token come from, in
 * order: PAVE_SERVER / PAVE_TOKEN, ~/.config/pave/config (written by `pave login`), and last the
 * local `pave up` defaults (http://127.0.0.1:7070 and ./.pave/admin.token).
 */
#ifndef PAVE_CLI_H
#define PAVE_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "core/core.h"

enum cli_exit {
    CLI_OK = 0,
    CLI_FAIL = 1,
    CLI_USAGE = 2,
};

enum cli_format {
    CLI_TABLE = 0,
    CLI_JSON,
    CLI_YAML,
};

struct cli_ctx {
    char server[512];
    char token[128];
    const char *token_source; /* where the token came from, for error hints */
    enum cli_format format;
};

/* Entry point from main(). */
int cli_main(int argc, char **argv);

/* Loads server and token (see the header comment). Never fails; fields may stay empty. */
void cli_ctx_load(struct cli_ctx *ctx);
/* Path of the user config file into out. */
void cli_config_path(char *out, size_t outsz);

/* Performs one API call. `body` may be NULL. On a 2xx answer returns CLI_OK and *out (may be
 * NULL when the caller does not want it) receives the parsed JSON (caller decrefs). On an error
 * answer prints the server's message and details to stderr and returns CLI_FAIL. */
int cli_api(struct cli_ctx *ctx, const char *method, const char *path, const char *body,
            size_t body_len, const char *content_type, json_t **out);
/* cli_api() with a JSON body: body is taken (decref'd here); NULL sends nothing. An encoding
 * failure is reported as out of memory (CLI_FAIL). */
int cli_api_json(struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
                 json_t **out);
/* POSTs {"comment": comment} ({} when comment is NULL) to path, the verb URL of a state change
 * (".../ID/ack", ".../ID/approve"), and prints the reply: the object with -o json|yaml, else
 * "<what> <id> <state>". returns: CLI_OK or the cli_api() error. */
int cli_post_state_change(struct cli_ctx *ctx, const char *path, const char *comment,
                          const char *what, long long id);
/* Opens the store for commands that work on it directly, without a server (pave cost, pave
 * org): store_url when given, else sqlite:DATA_DIR/pave.db (DATA_DIR is created). Prints the
 * error. returns: CLI_OK or CLI_FAIL. */
struct store;
int cli_open_store(const char *data_dir, const char *store_url, struct store **st);
/* Writes one CSV field to stdout, quoted (RFC 4180) when it holds a comma, quote or line break.
 * NULL writes nothing. */
void cli_csv_field(const char *s);
/* Same, but without printing; returns the HTTP status (or -1 on transport error, with msg). */
int cli_http(struct cli_ctx *ctx, const char *method, const char *path, const char *body,
             size_t body_len, const char *content_type, struct core_buf *resp, char *errmsg,
             size_t errsz);

/* Streams a GET response body to `fn` as it arrives (for followed logs). returns: the HTTP
 * status, or -1 on a transport error (message in errmsg). */
typedef void (*cli_stream_fn)(void *arg, const char *data, size_t len);
int cli_http_stream(struct cli_ctx *ctx, const char *path, cli_stream_fn fn, void *arg,
                    char *errmsg, size_t errsz);

/* Output */
struct cli_column {
    const char *header;
    const char *field; /* dotted path into each item */
};
/* Prints a list: a table of the given columns, or the whole JSON/YAML. */
void cli_print_list(const struct cli_ctx *ctx, json_t *items, const struct cli_column *cols);
/* Prints one object: key/value lines for table, else JSON/YAML. */
void cli_print_object(const struct cli_ctx *ctx, json_t *obj);
void cli_print_yaml(json_t *v, int indent, bool in_seq);

/* Parses "-o FORMAT" / "--output FORMAT" / "-o=..." at argv[*i]; returns 1 if consumed,
 * 0 if not an output flag, -1 on a bad value (message printed). */
int cli_parse_output(struct cli_ctx *ctx, int argc, char **argv, int *i);

/* Flag parsing shared by every command. A value option has `value`; a switch has `flag`. */
struct cli_opt {
    const char *name; /* long name without dashes: "file" for --file */
    char short_name;  /* 'f' for -f, 0 if none */
    const char **value;
    bool *flag;
};
/* Parses argv[1..] into opts and positional args (at most maxpos). Accepts "--name value",
 * "--name=value", "-f value", "-o FORMAT" (always), and "--" to end flags. Prints a message and
 * returns CLI_USAGE on unknown flags, missing values or too many positionals. */
int cli_parse(struct cli_ctx *ctx, int argc, char **argv, const struct cli_opt *opts,
              char **pos, int maxpos, int *npos);

/* Prints "pave: message" to stderr. */
void cli_error(const char *fmt, ...) CORE_PRINTF(1, 2);
/* True if argv has -h or --help (before "--"). */
bool cli_wants_help(int argc, char **argv);

/* One verb of a command with verbs ("pave policy apply", "pave org tree"...). */
struct cli_verb {
    const char *name;
    int (*run)(struct cli_ctx *ctx, int argc, char **argv); /* argv[0] is the verb */
};
/* Runs the verb argv[1] names from verbs (ended by a NULL name). No verb: usage to stderr and
 * CLI_USAGE; -h/--help as the verb, or anywhere after an unknown one: usage and CLI_OK. An
 * unknown verb is refused with "unknown verb 'WHAT WORD'" and the closest verb, or the list of
 * them and a pointer to 'pave WHAT --help', and CLI_USAGE. */
int cli_run_verb(struct cli_ctx *ctx, int argc, char **argv, const char *what,
                 const char *usage, const struct cli_verb *verbs);

int cli_cmd_up(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_server(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_catalog(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_team(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_user(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_env(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_token(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_login(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_whoami(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_audit(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_cost(struct cli_ctx *ctx, int argc, char **argv);
/* `pave cost scan` (cmd_cost_scan.c), dispatched from cli_cmd_cost. */
int cli_cmd_cost_scan(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_org(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_completion(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_version(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_build(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_init(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_templates(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_runs(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_secret(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_artifacts(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_render(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_deploy(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_status(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_rollback(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_scale(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_deployments(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_agent(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_logs(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_policy(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_security(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_ca(struct cli_ctx *ctx, int argc, char **argv);

/* The command table, for help and completion. */
struct cli_command {
    const char *name;
    int (*fn)(struct cli_ctx *, int, char **);
    const char *summary;
    const char *verbs; /* space-separated verbs for completion, "" if none */
};
extern const struct cli_command cli_commands[];

#endif
