/* sandbox: bubblewrap command line, process lifecycle, timeout, workspaces. See sandbox.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "sandbox/sandbox_int.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* spec->files[i] reaches bwrap as fd FILE_FD_BASE + i (fds 0-3 are stdin, stdout, stderr and the
 * exec-error pipe). */
#define FILE_FD_BASE 4

/* Host system directories shown read-only (or recreated as the same symlink). */
static const char *const system_dirs[] = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                          "/libx32"};

/* The only parts of /etc a step sees: what libc, the dynamic loader, TLS clients and shells need.
 * An allow-list rather than /etc minus secrets, so /etc/shadow, /etc/gshadow, /etc/ssl/private,
 * ssh host keys and whatever a future package drops into /etc stay invisible by construction. */
static const char *const etc_files[] = {
    "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf",
    "/etc/host.conf", "/etc/gai.conf", "/etc/protocols", "/etc/services", "/etc/networks",
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
    "/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/ca-certificates", "/etc/ca-certificates.conf",
    "/etc/pki/tls/certs", "/etc/pki/ca-trust", "/etc/localtime", "/etc/timezone",
    "/etc/mime.types", "/etc/os-release", "/etc/debian_version", "/etc/locale.alias",
    "/etc/bash.bashrc", "/etc/profile", "/etc/inputrc", "/etc/gitconfig", "/etc/magic",
};

/* ---- a growable NULL-terminated string vector ------------------------------------------ */

struct strv {
    char **v;
    size_t n, cap;
};

static void strv_release(struct strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        core_free(s->v[i]);
    core_free(s->v);
    memset(s, 0, sizeof(*s));
}

static int strv_add(struct strv *s, const char *str)
{
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **v = core_realloc(s->v, cap * sizeof(*v));
        if (!v)
            return CORE_E_NOMEM;
        s->v = v;
        s->cap = cap;
    }
    char *copy = core_strdup(str);
    if (!copy)
        return CORE_E_NOMEM;
    s->v[s->n++] = copy;
    s->v[s->n] = NULL;
    return 0;
}

static int strv_add3(struct strv *s, const char *a, const char *b, const char *c)
{
    int rc = strv_add(s, a);
    if (!rc && b)
        rc = strv_add(s, b);
    if (!rc && c)
        rc = strv_add(s, c);
    return rc;
}

/* ---- small helpers ---------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Finds an executable named prog in a colon-separated path list. */
static bool find_in_path(const char *prog, const char *path, char *out, size_t outsz)
{
    if (strchr(prog, '/')) {
        if ((size_t)snprintf(out, outsz, "%s", prog) >= outsz)
            return false;
        return access(out, X_OK) == 0;
    }
    const char *p = path;
    while (p && *p) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            int n = snprintf(out, outsz, "%.*s/%s", (int)len, p, prog);
            struct stat st;
            if (n > 0 && (size_t)n < outsz && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
                access(out, X_OK) == 0)
                return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Value of "KEY=" in a NULL-terminated env vector, or NULL. */
static const char *env_get(char *const *env, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], key, kl) == 0 && env[i][kl] == '=')
            return env[i] + kl + 1;
    return NULL;
}

/* ---- the child between fork and exec: async-signal-safe calls only ----------------------- */

struct child_plan {
    int sync_r;      /* parent writes one byte once the child is in its cgroups */
    int err_w;       /* close-on-exec; receives errno if anything before exec fails */
    int out_fd;      /* -1: /dev/null */
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *chdir_to; /* unisolated runs only; bwrap does --chdir itself */
    const int *file_fds;  /* nfiles memfds (close-on-exec), kept open as FILE_FD_BASE + i */
    size_t nfiles;
};

static void child_fail(int fd)
{
    int e = errno;
    ssize_t n = write(fd, &e, sizeof(e));
    (void)n;
    _exit(127);
}

static __attribute__((noreturn)) void child_exec(const struct child_plan *p)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* ignored signals stay ignored across exec; a step must see default dispositions */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);

    char b;
    ssize_t n;
    do
        n = read(p->sync_r, &b, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(127); /* the parent gave up (cgroup setup failed) */

    int errfd = fcntl(p->err_w, F_DUPFD, 10);
    if (errfd < 0)
        _exit(127);
    int out = p->out_fd >= 0 ? fcntl(p->out_fd, F_DUPFD, 10) : open("/dev/null", O_WRONLY);
    int in = open("/dev/null", O_RDONLY);
    if (out < 0 || in < 0)
        child_fail(errfd);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 || dup2(errfd, 3) < 0 ||
        fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
        child_fail(errfd);
    /* Files for bwrap --file: first out of the way (above the target range, so no memfd is
     * overwritten before it moved), then onto FILE_FD_BASE + i; dup2 clears close-on-exec on
     * exactly those. Everything above them is closed. */
    int high[SANDBOX_FILES_MAX];
    int first_closed = FILE_FD_BASE + (int)p->nfiles;
    for (size_t i = 0; i < p->nfiles; i++)
        if ((high[i] = fcntl(p->file_fds[i], F_DUPFD_CLOEXEC, first_closed)) < 0)
            child_fail(3);
    for (size_t i = 0; i < p->nfiles; i++)
        if (dup2(high[i], FILE_FD_BASE + (int)i) < 0)
            child_fail(3);
    if (syscall(SYS_close_range, (unsigned)first_closed, ~0U, 0U) != 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = first_closed; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
            close((int)fd);
    }
    if (p->chdir_to && chdir(p->chdir_to) != 0)
        child_fail(3);
    execve(p->path, p->argv, p->envp);
    child_fail(3);
    _exit(127);
}

/* ---- probing ---------------------------------------------------------------------------- */

/* The namespaces sandbox_run() asks for; probing uses the same set so a pass means runs work. */
static const char *const ns_flags[] = {"--unshare-user", "--unshare-pid", "--unshare-ipc",
                                       "--unshare-uts", "--unshare-cgroup-try"};

static bool bwrap_works(const char *bwrap)
{
    char *argv[16];
    size_t n = 0;
    argv[n++] = (char *)"bwrap";
    for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++)
        argv[n++] = (char *)ns_flags[i];
    argv[n++] = (char *)"--unshare-net";
    argv[n++] = (char *)"--die-with-parent";
    argv[n++] = (char *)"--ro-bind";
    argv[n++] = (char *)"/";
    argv[n++] = (char *)"/";
    argv[n++] = (char *)"--";
    argv[n++] = (char *)"true";
    argv[n] = NULL;
    char *envp[] = {(char *)"PATH=" DEFAULT_PATH, NULL};

    int sync[2], errp[2];
    if (pipe2(sync, O_CLOEXEC) != 0)
        return false;
    if (pipe2(errp, O_CLOEXEC) != 0) {
        close(sync[0]);
        close(sync[1]);
        return false;
    }
    struct child_plan plan = {sync[0], errp[1], -1, bwrap, argv, envp, NULL};
    pid_t pid = fork();
    if (pid == 0)
        child_exec(&plan);
    close(sync[0]);
    close(errp[1]);
    bool ok = false;
    if (pid > 0) {
        ssize_t w = write(sync[1], "x", 1);
        (void)w;
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    close(sync[1]);
    close(errp[0]);
    return ok;
}

static void probe_bwrap(struct sandbox_caps *caps)
{
    const char *path = getenv("PATH");
    char found[sizeof(caps->bwrap_path)];
    if (!find_in_path("bwrap", path && *path ? path : DEFAULT_PATH, found, sizeof(found)) &&
        !find_in_path("bwrap", DEFAULT_PATH, found, sizeof(found)))
        return;
    snprintf(caps->bwrap_path, sizeof(caps->bwrap_path), "%s", found);
    caps->bwrap = bwrap_works(found);
}

static void fill_caps(struct sandbox_caps *caps, const struct sandbox_cg_host *host)
{
    caps->cgroup_version = host->version;
    caps->memory = host->usable[SANDBOX_CG_MEMORY];
    caps->cpu = host->usable[SANDBOX_CG_CPU];
    caps->pids = host->usable[SANDBOX_CG_PIDS];
    snprintf(caps->detail, sizeof(caps->detail), "bwrap: %.180s; cgroup: %s%s%s%s",
             caps->bwrap ? caps->bwrap_path
                         : (caps->bwrap_path[0] ? "found but cannot create namespaces"
                                                : "not found"),
             host->version == 0 ? "none writable" : (host->version == 1 ? "v1" : "v2"),
             caps->memory ? " memory" : "", caps->cpu ? " cpu" : "", caps->pids ? " pids" : "");
}

void sandbox_probe(struct sandbox_caps *caps)
{
    struct sandbox_cg_host host;
    memset(caps, 0, sizeof(*caps));
    probe_bwrap(caps);
    sandbox_cg_detect(&host);
    fill_caps(caps, &host);
}

/* ---- building the command line ----------------------------------------------------------- */

/* true when path is dir or lies below it (both normalised, no trailing '/'). */
static bool path_within(const char *path, const char *dir, size_t dirlen)
{
    while (dirlen > 1 && dir[dirlen - 1] == '/')
        dirlen--;
    if (dirlen == 1 && dir[0] == '/')
        return true;
    return strncmp(path, dir, dirlen) == 0 && (path[dirlen] == '\0' || path[dirlen] == '/');
}

/* Length of the directory part of an absolute file path ("/run/secrets/x" -> 12). */
static size_t parent_len(const char *path)
{
    size_t n = (size_t)(strrchr(path, '/') - path);
    return n ? n : 1;
}

/* An absolute, normalised path below one of the roots secrets may live in. */
static bool file_path_ok(const char *p)
{
    static const char *const roots[] = {"/run/", "/var/run/secrets/"};
    bool under = false;
    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
        under = under || strncmp(p, roots[i], strlen(roots[i])) == 0;
    size_t len = strlen(p);
    if (!under || len >= 1024 || p[len - 1] == '/')
        return false;
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return false;
    for (const char *seg = p + 1;; ) { /* every component: non-empty, not "." nor ".." */
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        if (!end)
            return true;
        seg = end + 1;
    }
}

int sandbox_files_check(const struct sandbox_file *files, size_t nfiles, struct core_err *err)
{
    if (nfiles && !files)
        return core_err_set(err, CORE_E_INVAL, "sandbox: %zu files but no file list", nfiles);
    if (nfiles > SANDBOX_FILES_MAX)
        return core_err_set(err, CORE_E_TOO_BIG, "sandbox: %zu files, at most %d allowed", nfiles,
                            SANDBOX_FILES_MAX);
    for (size_t i = 0; i < nfiles; i++) {
        const struct sandbox_file *f = &files[i];
        /* the path is not secret and may be quoted; the contents never are */
        if (!f->inside || !file_path_ok(f->inside))
            return core_err_set(err, CORE_E_INVAL,
                                "sandbox: file path '%.200s' must be a normalised absolute path "
                                "below /run/ or /var/run/secrets/",
                                f->inside ? f->inside : "(null)");
        if (f->len > SANDBOX_FILE_MAX_BYTES)
            return core_err_set(err, CORE_E_TOO_BIG, "sandbox: file '%.200s' is %zu bytes, at "
                                "most %d allowed", f->inside, f->len, SANDBOX_FILE_MAX_BYTES);
        if (f->len && !f->data)
            return core_err_set(err, CORE_E_INVAL, "sandbox: file '%.200s' has no data",
                                f->inside);
        for (size_t j = 0; j < i; j++) {
            const char *a = files[j].inside, *b = f->inside;
            if (path_within(a, b, strlen(b)) || path_within(b, a, strlen(a)))
                return core_err_set(err, CORE_E_INVAL,
                                    "sandbox: file '%.200s' clashes with file '%.200s'", b, a);
        }
    }
    return 0;
}

static int validate(const struct sandbox_spec *spec, struct core_err *err)
{
    if (!spec || !spec->argv || !spec->argv[0] || !spec->argv[0][0])
        return core_err_set(err, CORE_E_INVAL, "sandbox: empty argv");
    for (size_t i = 0; spec->env && spec->env[i]; i++)
        if (!strchr(spec->env[i], '=') || spec->env[i][0] == '=')
            return core_err_set(err, CORE_E_INVAL, "sandbox: env entry '%s' is not K=V",
                                spec->env[i]);
    for (size_t i = 0; i < spec->nmounts; i++) {
        const struct sandbox_mount *m = &spec->mounts[i];
        if (!m->host || !m->inside || m->host[0] != '/' || m->inside[0] != '/')
            return core_err_set(err, CORE_E_INVAL, "sandbox: mount %zu needs absolute paths", i);
        if (strcmp(m->inside, "/") == 0)
            return core_err_set(err, CORE_E_INVAL, "sandbox: cannot mount over /");
    }
    if (spec->workdir && spec->workdir[0] != '/')
        return core_err_set(err, CORE_E_INVAL, "sandbox: workdir '%s' is not absolute",
                            spec->workdir);
    int rc = sandbox_files_check(spec->files, spec->nfiles, err);
    if (rc)
        return rc;
    /* a files tmpfs must neither hide a mount nor be created inside one (a writable bind would
     * get the directory on the host's disk) */
    for (size_t i = 0; i < spec->nfiles; i++) {
        const char *fp = spec->files[i].inside;
        size_t dl = parent_len(fp);
        for (size_t j = 0; j < spec->nmounts; j++) {
            const char *mi = spec->mounts[j].inside;
            if (path_within(mi, fp, dl) || path_within(fp, mi, strlen(mi)))
                return core_err_set(err, CORE_E_INVAL,
                                    "sandbox: file '%.200s' overlaps mount '%.200s'", fp, mi);
        }
    }
    const struct sandbox_limits *l = &spec->limits;
    if (l->cpu_millicores < 0 || l->memory_bytes < 0 || l->pids < 0 || l->timeout_ms < 0)
        return core_err_set(err, CORE_E_INVAL, "sandbox: negative limit");
    return 0;
}

/* The command's environment: exactly spec->env, plus PATH and HOME defaults. It is handed to
 * bwrap through execve's envp (bwrap passes it on), never through argv, so values a step gets
 * (tokens) do not show in the host's process list. */
static int build_env(const struct sandbox_spec *spec, struct strv *env)
{
    int rc = 0;
    for (size_t i = 0; spec->env && spec->env[i] && !rc; i++)
        rc = strv_add(env, spec->env[i]);
    if (!rc && !env_get(env->v, "PATH"))
        rc = strv_add(env, "PATH=" DEFAULT_PATH);
    if (!rc && !env_get(env->v, "HOME"))
        rc = strv_add(env, "HOME=/tmp");
    return rc;
}

static int add_system_dirs(struct strv *a)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof(system_dirs) / sizeof(system_dirs[0]) && !rc; i++) {
        const char *d = system_dirs[i];
        struct stat st;
        if (lstat(d, &st) != 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlink(d, target, sizeof(target) - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            rc = strv_add3(a, "--symlink", target, d);
        } else if (S_ISDIR(st.st_mode)) {
            rc = strv_add3(a, "--ro-bind", d, d);
        }
    }
    for (size_t i = 0; i < sizeof(etc_files) / sizeof(etc_files[0]) && !rc; i++) {
        struct stat st;
        if (stat(etc_files[i], &st) == 0)
            rc = strv_add3(a, "--ro-bind", etc_files[i], etc_files[i]);
    }
    if (!rc)
        rc = strv_add3(a, "--symlink", "../proc/self/mounts", "/etc/mtab");
    return rc;
}

/* true when files[i]'s directory gets the tmpfs: no other file's directory is above it and no
 * earlier file has the same directory. */
static bool is_top_dir(const struct sandbox_file *files, size_t nfiles, size_t i)
{
    const char *p = files[i].inside;
    size_t pl = parent_len(p);
    for (size_t j = 0; j < nfiles; j++) {
        const char *q = files[j].inside;
        size_t ql = parent_len(q);
        if (ql < pl && path_within(p, q, ql))
            return false; /* q's directory is a proper ancestor of p's */
        if (j < i && ql == pl && strncmp(p, q, pl) == 0)
            return false; /* same directory, already counted */
    }
    return true;
}

/* One tmpfs per top directory, then the files (mode 0400, contents read by bwrap from the
 * memfds), then the tmpfs goes read-only. All of it before the root's --remount-ro: bwrap has to
 * mkdir the mount points on the still writable root tmpfs. The root remount is not recursive, so
 * it would not make these tmpfs read-only by itself. */
static int add_files(const struct sandbox_spec *spec, struct strv *a)
{
    int rc = 0;
    char dir[1024], fd[16];
    for (size_t i = 0; i < spec->nfiles && !rc; i++) {
        if (!is_top_dir(spec->files, spec->nfiles, i))
            continue;
        snprintf(dir, sizeof(dir), "%.*s", (int)parent_len(spec->files[i].inside),
                 spec->files[i].inside);
        rc = strv_add3(a, "--tmpfs", dir, NULL);
    }
    for (size_t i = 0; i < spec->nfiles && !rc; i++) {
        snprintf(fd, sizeof(fd), "%d", FILE_FD_BASE + (int)i);
        rc = strv_add3(a, "--perms", "0400", NULL);
        if (!rc)
            rc = strv_add3(a, "--file", fd, spec->files[i].inside);
    }
    for (size_t i = 0; i < spec->nfiles && !rc; i++) {
        if (!is_top_dir(spec->files, spec->nfiles, i))
            continue;
        snprintf(dir, sizeof(dir), "%.*s", (int)parent_len(spec->files[i].inside),
                 spec->files[i].inside);
        rc = strv_add3(a, "--remount-ro", dir, NULL);
    }
    return rc;
}

static int build_bwrap_argv(const struct sandbox_spec *spec, struct strv *a)
{
    int rc = strv_add(a, "bwrap");
    for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]) && !rc; i++)
        rc = strv_add(a, ns_flags[i]);
    if (!rc && !spec->network)
        rc = strv_add(a, "--unshare-net");
    if (!rc)
        rc = strv_add3(a, "--hostname", "pave-sandbox", NULL);
    /* --die-with-parent: the sandbox's init dies with the outer bwrap we kill on timeout, and a
     * dying pid namespace init takes every process inside with it. --new-session: no TIOCSTI. */
    if (!rc)
        rc = strv_add3(a, "--die-with-parent", "--new-session", NULL);
    if (!rc)
        rc = strv_add3(a, "--cap-drop", "ALL", NULL);
    if (!rc)
        rc = add_system_dirs(a);
    if (!rc)
        rc = strv_add3(a, "--proc", "/proc", NULL);
    if (!rc)
        rc = strv_add3(a, "--dev", "/dev", NULL);
    if (!rc)
        rc = strv_add3(a, "--tmpfs", "/tmp", NULL);
    if (!rc)
        rc = strv_add3(a, "--tmpfs", "/var/tmp", NULL);
    for (size_t i = 0; i < spec->nmounts && !rc; i++) {
        const struct sandbox_mount *m = &spec->mounts[i];
        rc = strv_add3(a, m->writable ? "--bind" : "--ro-bind", m->host, m->inside);
    }
    if (!rc)
        rc = add_files(spec, a);
    /* the root tmpfs bwrap builds on is writable unless remounted; nothing but the spec's
     * writable mounts, /tmp and /var/tmp may take writes */
    if (!rc)
        rc = strv_add3(a, "--remount-ro", "/", NULL);
    if (!rc)
        rc = strv_add3(a, "--chdir", spec->workdir ? spec->workdir : "/", NULL);
    if (!rc)
        rc = strv_add(a, "--");
    for (size_t i = 0; spec->argv[i] && !rc; i++)
        rc = strv_add(a, spec->argv[i]);
    return rc;
}

/* Unisolated runs: the spec's workdir names a path inside the (absent) sandbox; map it through
 * the mounts to the host path. */
static void host_workdir(const struct sandbox_spec *spec, char *out, size_t outsz)
{
    const char *wd = spec->workdir ? spec->workdir : "/";
    snprintf(out, outsz, "%s", wd);
    size_t best = 0;
    for (size_t i = 0; i < spec->nmounts; i++) {
        const struct sandbox_mount *m = &spec->mounts[i];
        size_t il = strlen(m->inside);
        while (il > 1 && m->inside[il - 1] == '/')
            il--;
        if (il > best && strncmp(wd, m->inside, il) == 0 && (wd[il] == '\0' || wd[il] == '/')) {
            snprintf(out, outsz, "%s%s", m->host, wd + il);
            best = il;
        }
    }
}

static void sanitize_name(const char *name, char *out, size_t outsz)
{
    if (!name || !*name)
        name = "run";
    size_t i = 0;
    for (; name[i] && i + 1 < outsz; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        out[i] = ok ? c : '_';
    }
    out[i] = '\0';
    if (out[0] == '.')
        out[0] = '_';
}

/* ---- running ------------------------------------------------------------------------------ */

static void close_fds(int *fds, size_t n)
{
    for (size_t i = 0; fds && i < n; i++)
        close_fd(&fds[i]);
}

/* Puts each file's contents in a sealed memfd (memory only, never the host's disk), positioned at
 * offset 0 for bwrap to read. fds[i] is -1 for those not created. */
static int make_file_fds(const struct sandbox_spec *spec, int *fds, struct core_err *err)
{
    for (size_t i = 0; i < spec->nfiles; i++)
        fds[i] = -1;
    for (size_t i = 0; i < spec->nfiles; i++) {
        const struct sandbox_file *f = &spec->files[i];
        fds[i] = memfd_create("pave-sandbox-file", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fds[i] < 0)
            return core_err_set(err, CORE_E_IO, "sandbox: memfd for '%.200s': %s", f->inside,
                                strerror(errno));
        const char *d = f->data;
        for (size_t off = 0; off < f->len;) {
            ssize_t n = write(fds[i], d + off, f->len - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return core_err_set(err, CORE_E_IO, "sandbox: writing '%.200s' to memfd: %s",
                                    f->inside, n < 0 ? strerror(errno) : "short write");
            off += (size_t)n;
        }
        if (fcntl(fds[i], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) !=
                0 ||
            lseek(fds[i], 0, SEEK_SET) != 0)
            return core_err_set(err, CORE_E_IO, "sandbox: sealing memfd for '%.200s': %s",
                                f->inside, strerror(errno));
    }
    return 0;
}

static void kill_tree(pid_t pid, const struct sandbox_cg *cg)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    sandbox_cg_kill(cg);
}

/* Waits for pid, killing the tree when the deadline (0 = none) passes or *cancel turns true. */
static int wait_child(pid_t pid, int64_t deadline, const struct sandbox_cg *cg, bool *timed_out,
                      const volatile int *cancel, bool *cancelled)
{
    int status = 0;
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            status = 0;
            break;
        }
        int64_t left = deadline ? deadline - mono_ms() : 1000;
        bool stop = cancel && *cancel;
        if (stop || (deadline && left <= 0)) {
            if (stop)
                *cancelled = true;
            else
                *timed_out = true;
            kill_tree(pid, cg);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        /* a cancel flag is polled at least every 100 ms */
        if (left > (cancel ? 100 : 1000))
            left = cancel ? 100 : 1000;
        if (pidfd >= 0) {
            struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
            poll(&pfd, 1, (int)left);
        } else {
            struct timespec ts = {0, (left < 10 ? left : 10) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    close_fd(&pidfd);
    return status;
}

int sandbox_run(const struct sandbox_spec *spec, struct sandbox_result *res, struct core_err *err)
{
    struct strv env = {0}, args = {0};
    struct sandbox_cg cg = {0};
    struct sandbox_cg_host host;
    struct sandbox_caps caps;
    int sync[2] = {-1, -1}, errp[2] = {-1, -1};
    int *file_fds = NULL;
    pid_t pid = -1;
    int rc;

    if (res)
        memset(res, 0, sizeof(*res));
    if (!res)
        return core_err_set(err, CORE_E_INVAL, "sandbox: no result");
    if ((rc = validate(spec, err)))
        return rc;

    memset(&caps, 0, sizeof(caps));
    if (spec->caps)
        caps = *spec->caps; /* probed once by the caller */
    else
        probe_bwrap(&caps);
    sandbox_cg_detect(&host);
    if (!caps.bwrap && !spec->allow_unisolated)
        return core_err_set(err, CORE_E_UNSUPPORTED,
                            "sandbox: bubblewrap unavailable (%s) and unisolated runs not allowed",
                            caps.bwrap_path[0] ? "cannot create namespaces" : "bwrap not found");
    if (!caps.bwrap && spec->nfiles)
        return core_err_set(err, CORE_E_UNSUPPORTED,
                            "sandbox: secret files need isolation, and bubblewrap is unavailable "
                            "(%s); refusing to run unisolated",
                            caps.bwrap_path[0] ? "cannot create namespaces" : "bwrap not found");
    const struct sandbox_limits *lim = &spec->limits;
    const char *missing = lim->memory_bytes && !host.usable[SANDBOX_CG_MEMORY] ? "memory"
                          : lim->cpu_millicores && !host.usable[SANDBOX_CG_CPU] ? "cpu"
                          : lim->pids && !host.usable[SANDBOX_CG_PIDS]          ? "pids"
                                                                                : NULL;
    if (missing && !spec->allow_unisolated)
        return core_err_set(err, CORE_E_UNSUPPORTED,
                            "sandbox: a %s limit was asked for but no writable %s cgroup exists",
                            missing, missing);
    struct sandbox_limits applied = *lim;
    if (!host.usable[SANDBOX_CG_MEMORY])
        applied.memory_bytes = 0;
    if (!host.usable[SANDBOX_CG_CPU])
        applied.cpu_millicores = 0;
    if (!host.usable[SANDBOX_CG_PIDS])
        applied.pids = 0;

    char exe[PATH_MAX], wd[PATH_MAX];
    const char *chdir_to = NULL;
    if (build_env(spec, &env) ||
        (caps.bwrap && build_bwrap_argv(spec, &args))) {
        rc = core_err_set(err, CORE_E_NOMEM, "sandbox: out of memory");
        goto out;
    }
    if (caps.bwrap) {
        snprintf(exe, sizeof(exe), "%s", caps.bwrap_path);
    } else {
        if (!find_in_path(spec->argv[0], env_get(env.v, "PATH"), exe, sizeof(exe))) {
            rc = core_err_set(err, CORE_E_NOTFOUND, "sandbox: %s: command not found",
                              spec->argv[0]);
            goto out;
        }
        for (size_t i = 0; spec->argv[i] && !rc; i++)
            rc = strv_add(&args, spec->argv[i]);
        if (rc) {
            rc = core_err_set(err, CORE_E_NOMEM, "sandbox: out of memory");
            goto out;
        }
        host_workdir(spec, wd, sizeof(wd));
        chdir_to = wd;
    }

    if (spec->nfiles) {
        if (!(file_fds = core_calloc(spec->nfiles, sizeof(*file_fds)))) {
            rc = core_err_set(err, CORE_E_NOMEM, "sandbox: out of memory");
            goto out;
        }
        if ((rc = make_file_fds(spec, file_fds, err)))
            goto out;
    }
    if (pipe2(sync, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        rc = core_err_set(err, CORE_E_IO, "sandbox: pipe: %s", strerror(errno));
        goto out;
    }
    struct child_plan plan = {sync[0],  errp[1],  spec->out_fd, exe,         args.v,
                              env.v,    chdir_to, file_fds,     spec->nfiles};
    int64_t t0 = mono_ms();
    pid = fork();
    if (pid < 0) {
        rc = core_err_set(err, CORE_E_IO, "sandbox: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child_exec(&plan);
    close_fd(&sync[0]);
    close_fd(&errp[1]);
    close_fds(file_fds, spec->nfiles); /* the child holds its own copies */
    setpgid(pid, pid); /* also done by the child; whoever is first wins, the other is a no-op */

    char name[72];
    sanitize_name(spec->name, name, sizeof(name));
    if ((rc = sandbox_cg_create(&cg, &host, name, (long)pid, &applied, err)) ||
        (rc = sandbox_cg_attach(&cg, pid, err)))
        goto out; /* closing sync[1] unwritten makes the child exit; out: reaps it */

    if (write(sync[1], "x", 1) != 1) {
        rc = core_err_set(err, CORE_E_IO, "sandbox: cannot release child: %s", strerror(errno));
        goto out;
    }
    close_fd(&sync[1]);
    int child_errno = 0;
    ssize_t n;
    do
        n = read(errp[0], &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(child_errno)) {
        rc = core_err_set(err, CORE_E_IO, "sandbox: cannot start %s: %s", exe,
                          strerror(child_errno));
        goto out;
    }

    int64_t deadline = lim->timeout_ms > 0 ? t0 + lim->timeout_ms : 0;
    int status = wait_child(pid, deadline, &cg, &res->timed_out, spec->cancel, &res->cancelled);
    pid = -1;
    res->duration_ms = mono_ms() - t0;
    if (WIFSIGNALED(status)) {
        res->term_signal = WTERMSIG(status);
        res->exit_code = 128 + res->term_signal;
    } else {
        res->exit_code = WEXITSTATUS(status);
        /* bwrap reports a command killed by signal N as exit 128+N */
        if (caps.bwrap && res->exit_code > 128 && res->exit_code <= 128 + 64)
            res->term_signal = res->exit_code - 128;
    }
    sandbox_cg_read_events(&cg, &res->oom_killed, &res->pids_limited);
    if (caps.bwrap && cg.version)
        snprintf(res->isolation, sizeof(res->isolation), "bwrap+cgroup-v%d", cg.version);
    else
        snprintf(res->isolation, sizeof(res->isolation), "%s", caps.bwrap ? "bwrap" : "none");
    rc = 0;
out:
    close_fd(&sync[1]);
    if (pid > 0) {
        kill_tree(pid, &cg);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    close_fd(&sync[0]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    close_fds(file_fds, spec->nfiles);
    core_free(file_fds);
    sandbox_cg_destroy(&cg);
    strv_release(&env);
    strv_release(&args);
    return rc;
}

/* ---- workspaces --------------------------------------------------------------------------- */

int sandbox_workspace_create(const char *dir, int64_t max_bytes, bool *is_tmpfs,
                             struct core_err *err)
{
    bool dummy;
    if (!is_tmpfs)
        is_tmpfs = &dummy;
    *is_tmpfs = false;
    if (!dir || dir[0] != '/')
        return core_err_set(err, CORE_E_INVAL, "sandbox: workspace path must be absolute");
    if (max_bytes < 0)
        return core_err_set(err, CORE_E_INVAL, "sandbox: negative workspace size");
    int rc = core_mkdir_p(dir, 0755, err);
    if (rc)
        return rc;
    if (geteuid() != 0 || max_bytes == 0)
        return 0;
    char opts[64];
    snprintf(opts, sizeof(opts), "size=%lld,mode=0755", (long long)max_bytes);
    if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
        return 0; /* root without CAP_SYS_ADMIN (a container): *is_tmpfs tells the caller */
    *is_tmpfs = true;
    return 0;
}

/* Removes everything below dirfd without following symlinks or crossing into other mounts. */
static int remove_tree(int dirfd, dev_t dev)
{
    int rc = 0;
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return -errno;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != dev) {
                rc = -EBUSY; /* a mount inside: never delete through it */
                continue;
            }
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int r = sub >= 0 ? remove_tree(sub, dev) : -errno;
            if (r)
                rc = r;
            if (unlinkat(dirfd, e->d_name, AT_REMOVEDIR) != 0 && !rc)
                rc = -errno;
        } else if (unlinkat(dirfd, e->d_name, 0) != 0 && !rc) {
            rc = -errno;
        }
    }
    closedir(d);
    return rc;
}

int sandbox_workspace_remove(const char *dir, struct core_err *err)
{
    if (!dir || dir[0] != '/' || strcmp(dir, "/") == 0)
        return core_err_set(err, CORE_E_INVAL, "sandbox: refusing to remove '%s'",
                            dir ? dir : "(null)");
    /* detach every mount stacked on dir; EINVAL means it is no longer a mount point */
    for (int i = 0; i < 16 && umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) == 0; i++)
        ;
    struct stat st;
    if (lstat(dir, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return core_err_set(err, CORE_E_IO, "sandbox: %s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return core_err_set(err, CORE_E_INVAL, "sandbox: %s is not a directory", dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return core_err_set(err, CORE_E_IO, "sandbox: %s: %s", dir, strerror(errno));
    int rc = remove_tree(fd, st.st_dev);
    if (rc)
        return core_err_set(err, CORE_E_IO, "sandbox: cannot empty %s: %s", dir, strerror(-rc));
    if (rmdir(dir) != 0)
        return core_err_set(err, CORE_E_IO, "sandbox: cannot remove %s: %s", dir,
                            strerror(errno));
    return 0;
}
