/* ingress internals shared by ingress.c and haproxy_cfg.c (and the module's unit test). */
#ifndef PAVE_INGRESS_INT_H
#define PAVE_INGRESS_INT_H

#include <stdbool.h>
#include <stddef.h>

struct core_buf;
struct core_err;

#define INGRESS_MAX_SERVERS 1024
#define INGRESS_MAX_PATHS 64
#define INGRESS_MAX_CALLERS 256
#define INGRESS_DEFAULT_HEALTH_PATH "/healthz"

struct ingress_service {
    char *name;   /* DNS label; backend is "be_<name>" */
    char *host;   /* NULL = any host */
    char **paths; /* path prefixes; none = any path */
    size_t npaths;
    char *health_path; /* NULL = "/healthz" */
    int internal_port; /* 0 = no internal frontend */
    int *caller_ports; /* frontends of declared callers */
    size_t ncaller_ports;
    bool strict;       /* the internal frontend refuses (403); caller ports only */
    bool *used;   /* per slot, max_servers entries */
};

/* Everything haproxy.cfg is rendered from. Strings borrowed. */
struct ingress_cfg_input {
    const char *listen_addr;
    int listen_port;
    const char *admin_sock;
    const char *pid_file;
    const char *state_file;
    int max_servers;
    const struct ingress_service *services;
    size_t nservices;
    /* TLS termination (fe_https); tls_port 0: none */
    const char *tls_addr;
    int tls_port;
    const char *tls_default; /* default certificate file (cert+chain+key) */
    const char *tls_crt_list; /* crt-list file: one certificate per line, with SNI filters */
};

/* Validators for anything that ends up in haproxy.cfg or on the Runtime API. */
int ingress_check_service(const char *s, struct core_err *err);
int ingress_check_host(const char *s, struct core_err *err);
int ingress_check_path(const char *s, struct core_err *err);
/* Health check URI: starts with '/', [A-Za-z0-9] and -._~/?=&%+:@, only, max 256. */
int ingress_check_health_path(const char *s, struct core_err *err);

/* A certificate file named in a crt-list or on the Runtime API: absolute, at most 1024 bytes,
 * no whitespace, control characters, quotes, '#', '\\' or '$'. */
int ingress_check_file(const char *s, struct core_err *err);

/* Renders haproxy.cfg into out, validating every input first (nothing hostile is written). */
int ingress_cfg_render(const struct ingress_cfg_input *in, struct core_buf *out,
                       struct core_err *err);

/* Runs `haproxy -c -q -f path`; on failure the message carries haproxy's first alert line. */
int ingress_cfg_check(const char *haproxy_bin, const char *path, struct core_err *err);

#endif
