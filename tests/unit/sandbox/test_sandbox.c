/* Unit tests for the sandbox: isolation (what a step sees) and containment (what it can do). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "sandbox/sandbox.h"

#define MiB (1024LL * 1024)

struct fixture {
    char dir[64];       /* host temp dir */
    char ws[128];       /* workspace (tmpfs when root) */
    bool ws_tmpfs;
    struct sandbox_caps caps;
    int out_fd;         /* memfd collecting the command's output */
    char *out;          /* output of the last run */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/pave-sbx-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->ws, sizeof(f->ws), "%s/ws", f->dir);
    struct core_err err = {0};
    if (sandbox_workspace_create(f->ws, 64 * MiB, &f->ws_tmpfs, &err) != 0)
        return -1;
    sandbox_probe(&f->caps);
    f->out_fd = memfd_create("sandbox-out", MFD_CLOEXEC);
    *state = f;
    return f->out_fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    struct core_err err = {0};
    int rc = sandbox_workspace_remove(f->ws, &err);
    if (rc)
        fprintf(stderr, "workspace_remove: %s\n", err.msg);
    /* a case that failed half-way may have left its own workspace mounted below dir */
    const char *subs[] = {"small", "plain"};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        char sub[200];
        snprintf(sub, sizeof(sub), "%s/%s", f->dir, subs[i]);
        sandbox_workspace_remove(sub, NULL);
    }
    sandbox_workspace_remove(f->dir, NULL);
    close(f->out_fd);
    free(f->out);
    free(f);
    return rc;
}

static void need_bwrap(struct fixture *f)
{
    if (!f->caps.bwrap) {
        print_message("skipped: %s\n", f->caps.detail);
        skip();
    }
}

static void default_spec(struct fixture *f, struct sandbox_spec *spec, const char *const *argv,
                         const struct sandbox_mount *m)
{
    memset(spec, 0, sizeof(*spec));
    spec->argv = argv;
    spec->workdir = "/workspace";
    spec->mounts = m;
    spec->nmounts = 1;
    spec->out_fd = f->out_fd;
    spec->name = "unit";
    spec->limits.timeout_ms = 60000; /* safety net only */
}

/* Runs spec; leaves the command's output in f->out. */
static int run(struct fixture *f, const struct sandbox_spec *spec, struct sandbox_result *res)
{
    struct core_err err = {0};
    assert_int_equal(ftruncate(f->out_fd, 0), 0);
    assert_int_equal(lseek(f->out_fd, 0, SEEK_SET), 0);
    int rc = sandbox_run(spec, res, &err);
    if (rc)
        print_message("sandbox_run: %s\n", err.msg);
    free(f->out);
    off_t len = lseek(f->out_fd, 0, SEEK_END);
    f->out = calloc(1, (size_t)len + 1);
    assert_non_null(f->out);
    assert_int_equal(pread(f->out_fd, f->out, (size_t)len, 0), len);
    return rc;
}

/* Runs `sh -c script` with the default spec plus tweaks by the caller through spec_out. */
static int run_sh(struct fixture *f, const char *script, struct sandbox_result *res)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct sandbox_spec spec;
    default_spec(f, &spec, argv, &m);
    return run(f, &spec, res);
}

/* ---- finding a run's cgroup from outside ---------------------------------------------- */

static char found_cg[1024];
static const char *want_cg_prefix;

/* Only this process's groups count ("<name>-<child pid>-<owner pid>"): other test runs on the
 * machine may have groups with the same name prefix at the same time. */
static bool owned_by_us(const char *name)
{
    char suffix[32];
    snprintf(suffix, sizeof(suffix), "-%d", (int)getpid());
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcmp(name + n - k, suffix) == 0;
}

static int find_cg_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    if (type == FTW_D && strncmp(path + ftw->base, want_cg_prefix, strlen(want_cg_prefix)) == 0 &&
        owned_by_us(path + ftw->base)) {
        snprintf(found_cg, sizeof(found_cg), "%s", path);
        return 1;
    }
    return 0;
}

/* Directory of a live cgroup whose name starts with prefix, or NULL; under root when given
 * (v1: one controller's tree), else anywhere below /sys/fs/cgroup. */
static const char *find_cgroup_in(const char *root, const char *prefix)
{
    found_cg[0] = '\0';
    want_cg_prefix = prefix;
    nftw(root, find_cg_cb, 16, FTW_PHYS);
    return found_cg[0] ? found_cg : NULL;
}

static const char *find_cgroup(const char *prefix)
{
    return find_cgroup_in("/sys/fs/cgroup/", prefix);
}

/* true when some process's command line contains needle */
static bool process_running(const char *needle)
{
    DIR *d = opendir("/proc");
    bool found = false;
    struct dirent *e;
    while (d && !found && (e = readdir(d))) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[n > 0 ? n : 0] = '\0';
        found = strstr(buf, needle) != NULL;
    }
    if (d)
        closedir(d);
    return found;
}

/* ---- cases ---------------------------------------------------------------------------- */

static void probe_fills_detail(void **state)
{
    struct fixture *f = *state;
    assert_true(f->caps.detail[0] != '\0');
    print_message("caps: %s\n", f->caps.detail);
    if (f->caps.bwrap)
        assert_true(f->caps.bwrap_path[0] == '/');
}

static void bad_spec_is_rejected(void **state)
{
    struct fixture *f = *state;
    struct sandbox_result res;
    struct core_err err = {0};
    const char *empty[] = {NULL};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct sandbox_spec spec;
    default_spec(f, &spec, empty, &m);
    assert_int_equal(sandbox_run(&spec, &res, &err), CORE_E_INVAL);
    const char *argv[] = {"true", NULL};
    const char *env[] = {"NOEQUALS", NULL};
    default_spec(f, &spec, argv, &m);
    spec.env = env;
    assert_int_equal(sandbox_run(&spec, &res, &err), CORE_E_INVAL);
    struct sandbox_mount rel = {"relative", "/x", false};
    default_spec(f, &spec, argv, &rel);
    assert_int_equal(sandbox_run(&spec, &res, &err), CORE_E_INVAL);
}

static void echo_output_reaches_out_fd(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    struct sandbox_result res;
    assert_int_equal(run_sh(f, "echo hello; echo oops >&2", &res), 0);
    assert_int_equal(res.exit_code, 0);
    assert_false(res.timed_out);
    assert_string_equal(f->out, "hello\noops\n");
    assert_true(strncmp(res.isolation, "bwrap", 5) == 0);
    if (f->caps.cgroup_version)
        assert_true(strstr(res.isolation, "+cgroup-v") != NULL);
}

static void exit_codes_propagate(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    struct sandbox_result res;
    assert_int_equal(run_sh(f, "exit 7", &res), 0);
    assert_int_equal(res.exit_code, 7);
    assert_int_equal(res.term_signal, 0);
    assert_int_equal(run_sh(f, "kill -TERM $$", &res), 0);
    assert_int_equal(res.exit_code, 128 + 15);
    assert_int_equal(res.term_signal, 15);
    /* a command that does not exist fails inside the sandbox, not in the caller */
    const char *argv[] = {"no-such-command-pave", NULL};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct sandbox_spec spec;
    default_spec(f, &spec, argv, &m);
    assert_int_equal(run(f, &spec, &res), 0);
    assert_int_not_equal(res.exit_code, 0);
}

static void env_is_only_what_the_spec_passes(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    setenv("PAVE_TEST_LEAK", "caller-secret", 1);
    const char *argv[] = {"sh", "-c", "env", NULL};
    const char *env[] = {"FOO=bar baz", NULL};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct sandbox_spec spec;
    default_spec(f, &spec, argv, &m);
    spec.env = env;
    struct sandbox_result res;
    assert_int_equal(run(f, &spec, &res), 0);
    assert_int_equal(res.exit_code, 0);
    assert_non_null(strstr(f->out, "FOO=bar baz\n"));
    assert_non_null(strstr(f->out, "HOME=/tmp\n"));
    assert_non_null(strstr(f->out, "PATH=/"));
    assert_null(strstr(f->out, "PAVE_TEST_LEAK"));
    assert_null(strstr(f->out, "caller-secret"));
    unsetenv("PAVE_TEST_LEAK");

    /* a PATH the spec gives wins over the default */
    const char *env2[] = {"PATH=/usr/bin", "HOME=/workspace", NULL};
    spec.env = env2;
    assert_int_equal(run(f, &spec, &res), 0);
    assert_non_null(strstr(f->out, "PATH=/usr/bin\n"));
    assert_non_null(strstr(f->out, "HOME=/workspace\n"));
}

static void platform_data_dir_and_shadow_are_invisible(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    char data[160], secret[200], script[512];
    snprintf(data, sizeof(data), "%s/data", f->dir);
    snprintf(secret, sizeof(secret), "%s/secret.key", data);
    assert_int_equal(mkdir(data, 0700), 0);
    FILE *fp = fopen(secret, "w");
    assert_non_null(fp);
    fputs("TOPSECRET\n", fp);
    fclose(fp);

    struct sandbox_result res;
    snprintf(script, sizeof(script), "cat %s", secret);
    assert_int_equal(run_sh(f, script, &res), 0);
    assert_int_not_equal(res.exit_code, 0);
    assert_null(strstr(f->out, "TOPSECRET"));

    assert_int_equal(run_sh(f, "cat /etc/shadow", &res), 0);
    assert_int_not_equal(res.exit_code, 0);
    assert_null(strstr(f->out, "root:"));
    assert_int_equal(run_sh(f, "ls /etc; ls /", &res), 0);
    assert_null(strstr(f->out, "shadow"));
    assert_null(strstr(f->out, "root\n"));
    assert_null(strstr(f->out, "home\n"));
    /* the things programs need are there */
    assert_int_equal(run_sh(f, "grep -q '^root:' /etc/passwd && ls /usr/bin >/dev/null", &res), 0);
    assert_int_equal(res.exit_code, 0);
}

static void writes_only_in_writable_places(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    struct sandbox_result res;
    assert_int_equal(run_sh(f, "touch /usr/pave-x", &res), 0);
    assert_int_not_equal(res.exit_code, 0);
    assert_int_equal(run_sh(f, "touch /pave-x", &res), 0);
    assert_int_not_equal(res.exit_code, 0);
    assert_int_equal(run_sh(f, "echo hi > /etc/passwd", &res), 0);
    assert_int_not_equal(res.exit_code, 0);
    assert_int_equal(run_sh(f, "echo data > /workspace/out.txt && echo tmp > /tmp/t && pwd",
                            &res),
                     0);
    assert_int_equal(res.exit_code, 0);
    assert_string_equal(f->out, "/workspace\n");
    char path[200];
    snprintf(path, sizeof(path), "%s/out.txt", f->ws);
    assert_int_equal(access(path, F_OK), 0);

    /* a read-only mount from the spec stays read-only */
    const char *argv[] = {"sh", "-c", "cat /src/out.txt && touch /src/new", NULL};
    struct sandbox_mount ro = {f->ws, "/src", false};
    struct sandbox_spec spec;
    default_spec(f, &spec, argv, &ro);
    spec.workdir = "/src";
    assert_int_equal(run(f, &spec, &res), 0);
    assert_non_null(strstr(f->out, "data\n"));
    assert_int_not_equal(res.exit_code, 0);
    snprintf(path, sizeof(path), "%s/new", f->ws);
    assert_int_not_equal(access(path, F_OK), 0);
}

static void network_off_by_default_on_when_asked(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    /* a listener of the test process on loopback: reachable only from the host's namespace */
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ls >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(ls, 8), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
    char script[256];
    snprintf(script, sizeof(script),
             "exec 3<>/dev/tcp/127.0.0.1/%d && echo connected", ntohs(sa.sin_port));
    const char *argv[] = {"bash", "-c", script, NULL};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct sandbox_spec spec;
    default_spec(f, &spec, argv, &m);
    struct sandbox_result res;

    assert_int_equal(run(f, &spec, &res), 0);
    assert_int_not_equal(res.exit_code, 0);
    assert_null(strstr(f->out, "connected"));
    assert_int_equal(run_sh(f, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", &res), 0);
    assert_string_equal(f->out, "lo\n");

    spec.network = true;
    assert_int_equal(run(f, &spec, &res), 0);
    assert_int_equal(res.exit_code, 0);
    assert_non_null(strstr(f->out, "connected"));
    close(ls);
}

static void fork_bomb_is_contained(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    if (!f->caps.pids) {
        print_message("skipped: no pids cgroup controller (%s)\n", f->caps.detail);
        skip();
    }
    const char *argv[] = {"sh", "-c", "bomb(){ bomb|bomb& }; bomb; sleep 600", NULL};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct sandbox_spec spec;
    default_spec(f, &spec, argv, &m);
    spec.name = "bombtest";
    spec.limits.pids = 64;
    /* generous: on a loaded machine the bomb needs a while to reach the limit */
    spec.limits.timeout_ms = 12000;
    spec.out_fd = -1; /* the shells' "fork failed" chatter is not interesting */
    struct sandbox_result res;
    struct core_err err = {0};
    assert_int_equal(sandbox_run(&spec, &res, &err), 0);
    assert_true(res.pids_limited || res.timed_out);
    assert_true(res.pids_limited);
    assert_true(res.timed_out);
    assert_null(find_cgroup("bombtest-")); /* removed, which the kernel allows only when empty */
    assert_false(process_running("bomb; sleep 600"));
}

static void memory_hog_is_oom_killed(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    if (!f->caps.memory) {
        print_message("skipped: no memory cgroup controller (%s)\n", f->caps.detail);
        skip();
    }
    const char *argv[] = {"awk", "BEGIN { s = \"xxxxxxxx\"; while (1) s = s s }", NULL};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct sandbox_spec spec;
    default_spec(f, &spec, argv, &m);
    spec.name = "memtest";
    spec.limits.memory_bytes = 64 * MiB;
    struct sandbox_result res;
    assert_int_equal(run(f, &spec, &res), 0);
    assert_true(res.oom_killed);
    assert_int_not_equal(res.exit_code, 0);
    assert_false(res.timed_out);
    assert_null(find_cgroup("memtest-"));
}

static void hung_step_times_out_and_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    const char *argv[] = {"sh", "-c", "sleep 987654 & sleep 987653", NULL};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct sandbox_spec spec;
    default_spec(f, &spec, argv, &m);
    spec.name = "hangtest";
    spec.limits.timeout_ms = 1000;
    struct sandbox_result res;
    assert_int_equal(run(f, &spec, &res), 0);
    assert_true(res.timed_out);
    assert_int_not_equal(res.exit_code, 0);
    assert_false(process_running("sleep 98765"));
    assert_null(find_cgroup("hangtest-"));
}

static void background_processes_die_with_the_step(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    struct sandbox_result res;
    assert_int_equal(run_sh(f, "sleep 876543 >/dev/null 2>&1 & echo started", &res), 0);
    assert_int_equal(res.exit_code, 0);
    assert_false(process_running("sleep 876543"));
}

static void disk_filler_hits_workspace_cap(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    if (geteuid() != 0) {
        print_message("skipped: size-capped workspaces need root (tmpfs mount)\n");
        skip();
    }
    char ws[160];
    snprintf(ws, sizeof(ws), "%s/small", f->dir);
    bool tmpfs = false;
    struct core_err err = {0};
    assert_int_equal(sandbox_workspace_create(ws, 8 * MiB, &tmpfs, &err), 0);
    if (!tmpfs) {
        sandbox_workspace_remove(ws, NULL);
        print_message("skipped: cannot mount tmpfs here\n");
        skip();
    }
    const char *argv[] = {"dd", "if=/dev/zero", "of=/workspace/big", "bs=1M", "count=100", NULL};
    struct sandbox_mount m = {ws, "/workspace", true};
    struct sandbox_spec spec;
    default_spec(f, &spec, argv, &m);
    struct sandbox_result res;
    assert_int_equal(run(f, &spec, &res), 0);
    assert_int_not_equal(res.exit_code, 0);
    assert_non_null(strstr(f->out, "No space left on device"));
    char big[200];
    snprintf(big, sizeof(big), "%s/big", ws);
    struct stat st;
    assert_int_equal(stat(big, &st), 0);
    assert_true(st.st_size <= 8 * MiB);
    assert_int_equal(sandbox_workspace_remove(ws, &err), 0);
    assert_int_not_equal(access(ws, F_OK), 0);
}

struct cpu_run {
    struct fixture *f;
    struct sandbox_spec spec;
    struct sandbox_result res;
    int rc;
};

static void *cpu_thread(void *arg)
{
    struct cpu_run *r = arg;
    struct core_err err = {0};
    r->rc = sandbox_run(&r->spec, &r->res, &err);
    return NULL;
}

static void cpu_limit_is_applied(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    if (!f->caps.cpu) {
        print_message("skipped: no cpu cgroup controller (%s)\n", f->caps.detail);
        skip();
    }
    /* the step waits for a file the test creates after reading its cgroup's quota */
    const char *argv[] = {"sh", "-c", "while [ ! -e /workspace/go ]; do sleep 0.05; done", NULL};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct cpu_run r = {.f = f};
    default_spec(f, &r.spec, argv, &m);
    r.spec.name = "cputest";
    r.spec.limits.cpu_millicores = 250;
    r.spec.out_fd = -1;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cpu_thread, &r), 0);
    const char *dir = NULL;
    const char *root = f->caps.cgroup_version == 1 ? "/sys/fs/cgroup/cpu/" : "/sys/fs/cgroup/";
    for (int i = 0; i < 3000 && !(dir = find_cgroup_in(root, "cputest-")); i++)
        usleep(10000);
    char quota[64] = "";
    if (dir) {
        char path[1200];
        bool v1 = f->caps.cgroup_version == 1;
        snprintf(path, sizeof(path), "%s/%s", dir, v1 ? "cpu.cfs_quota_us" : "cpu.max");
        FILE *fp = fopen(path, "r");
        if (fp) {
            if (!fgets(quota, sizeof(quota), fp))
                quota[0] = '\0';
            fclose(fp);
        }
    }
    char go[200];
    snprintf(go, sizeof(go), "%s/go", f->ws);
    FILE *fp = fopen(go, "w");
    assert_non_null(fp);
    fclose(fp);
    pthread_join(th, NULL);
    unlink(go);
    assert_non_null(dir);
    assert_string_equal(quota, f->caps.cgroup_version == 1 ? "25000\n" : "25000 100000\n");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.res.exit_code, 0);
    assert_null(find_cgroup("cputest-"));
}

/* ---- files (secrets) ------------------------------------------------------------------ */

#define SECRET_A "pave-unit-s3cr3t-db-pw"
#define SECRET_B "pave-unit-k3y-api"
#define SECRET_C "pave-unit-other-root"

static void files_arrive_on_readonly_tmpfs(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    /* 1 MiB (the maximum) with NULs in it, to see binary contents arrive whole */
    size_t big_len = SANDBOX_FILE_MAX_BYTES;
    unsigned char *big = malloc(big_len);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (unsigned char)(i % 251);
    struct sandbox_file files[] = {
        {"/run/secrets/db-password", SECRET_A, strlen(SECRET_A)},
        {"/run/secrets/api-key", SECRET_B, strlen(SECRET_B)},
        {"/run/secrets/sub/big", big, big_len},
        {"/var/run/secrets/kubernetes.io/token", SECRET_C, strlen(SECRET_C)},
        {"/run/secrets/empty", NULL, 0},
    };
    const char *script =
        "cat /run/secrets/db-password; echo; cat /run/secrets/api-key; echo;"
        "cat /var/run/secrets/kubernetes.io/token; echo;"
        "stat -c '%a %s %n' /run/secrets/db-password /run/secrets/api-key /run/secrets/sub/big "
        "/var/run/secrets/kubernetes.io/token /run/secrets/empty;"
        "od -An -tu1 -N4 -j251 /run/secrets/sub/big;"
        "stat -f -c '%T %n' /run/secrets /var/run/secrets;"
        "grep -c ' /run/secrets ro,' /proc/self/mountinfo;"
        "touch /run/secrets/new 2>/dev/null && echo secrets-writable;"
        "touch /run/new 2>/dev/null && echo run-writable;"
        "env | grep -c pave-unit;"
        "ls -l /proc/$$/fd/ | grep -c pave-sandbox-file"; /* bwrap closed the memfds */
    const char *argv[] = {"sh", "-c", script, NULL};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct sandbox_spec spec;
    default_spec(f, &spec, argv, &m);
    spec.files = files;
    spec.nfiles = sizeof(files) / sizeof(files[0]);
    struct sandbox_result res;
    assert_int_equal(run(f, &spec, &res), 0);
    free(big);
    print_message("%s", f->out);
    assert_string_equal(f->out, SECRET_A "\n" SECRET_B "\n" SECRET_C "\n"
                                "400 22 /run/secrets/db-password\n"
                                "400 17 /run/secrets/api-key\n"
                                "400 1048576 /run/secrets/sub/big\n"
                                "400 20 /var/run/secrets/kubernetes.io/token\n"
                                "400 0 /run/secrets/empty\n"
                                "   0   1   2   3\n"
                                "tmpfs /run/secrets\n"
                                "tmpfs /var/run/secrets\n"
                                "1\n"
                                "0\n"
                                "0\n");
    assert_int_equal(res.exit_code, 1); /* the last `grep -c` found nothing */
    /* nothing was created on the host */
    assert_int_not_equal(access("/run/secrets/db-password", F_OK), 0);
    assert_int_not_equal(access("/var/run/secrets/kubernetes.io/token", F_OK), 0);
}

/* true when the file's bytes contain needle */
static bool file_contains(const char *path, const char *needle)
{
    static char buf[1 << 16];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    return n > 0 && memmem(buf, (size_t)n, needle, strlen(needle)) != NULL;
}

/* Counts processes whose cmdline contains marker; names in leak (when still empty) a process's
 * cmdline or environ that holds the secret. */
static int scan_processes(const char *marker, const char *secret, char *leak, size_t leaksz)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        if (!leak[0] && file_contains(path, secret))
            snprintf(leak, leaksz, "%s", path);
        seen += file_contains(path, marker);
        snprintf(path, sizeof(path), "/proc/%s/environ", e->d_name);
        if (!leak[0] && file_contains(path, secret))
            snprintf(leak, leaksz, "%s", path);
    }
    closedir(d);
    return seen;
}

static void files_stay_out_of_argv_and_environ(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    /* waits for a file the test creates once it looked at every process on the machine */
    const char *argv[] = {"sh", "-c",
                          "cat /run/secrets/token >/dev/null && "
                          "while [ ! -e /workspace/go-files ]; do sleep 0.05; done; echo done",
                          NULL};
    struct sandbox_file file = {"/run/secrets/token", SECRET_A, strlen(SECRET_A)};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct cpu_run r = {.f = f};
    default_spec(f, &r.spec, argv, &m);
    r.spec.files = &file;
    r.spec.nfiles = 1;
    r.spec.name = "filestest";
    r.spec.out_fd = -1;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cpu_thread, &r), 0);
    /* the outer bwrap, bwrap's init in the pid namespace, and sh */
    int seen = 0;
    char leak[300] = "";
    for (int i = 0; i < 3000 && (seen = scan_processes("go-files", SECRET_A, leak, sizeof(leak))) < 3;
         i++)
        usleep(10000);
    char go[200];
    snprintf(go, sizeof(go), "%s/go-files", f->ws);
    FILE *fp = fopen(go, "w");
    assert_non_null(fp);
    fclose(fp);
    pthread_join(th, NULL);
    unlink(go);
    if (leak[0])
        fail_msg("secret found in %s", leak);
    assert_true(seen >= 3);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.res.exit_code, 0);
}

/* The maximum count: fds FILE_FD_BASE .. +255 all reach bwrap, each with its own contents. */
static void many_files_in_one_run(void **state)
{
    struct fixture *f = *state;
    need_bwrap(f);
    static struct sandbox_file files[SANDBOX_FILES_MAX];
    static char names[SANDBOX_FILES_MAX][40], data[SANDBOX_FILES_MAX][16];
    for (size_t i = 0; i < SANDBOX_FILES_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "/run/secrets/d%zu/f%zu", i % 7, i);
        snprintf(data[i], sizeof(data[i]), "v%zu;", i);
        files[i] = (struct sandbox_file){names[i], data[i], strlen(data[i])};
    }
    const char *argv[] = {"sh", "-c",
                          "ls /run/secrets/*/* | wc -l; "
                          "cat /run/secrets/d3/f255 /run/secrets/d0/f0 /run/secrets/d1/f1",
                          NULL};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct sandbox_spec spec;
    default_spec(f, &spec, argv, &m);
    spec.files = files;
    spec.nfiles = SANDBOX_FILES_MAX;
    struct sandbox_result res;
    assert_int_equal(run(f, &spec, &res), 0);
    assert_int_equal(res.exit_code, 0);
    assert_string_equal(f->out, "256\nv255;v0;v1;");
}

static void hostile_file_specs_are_refused(void **state)
{
    struct fixture *f = *state;
    static const char *const bad_paths[] = {
        "relative/x", "/run", "/run/", "/", "/etc/passwd", "/proc/self/environ", "/dev/shm/x",
        "/usr/bin/sh", "/tmp/x", "/workspace/x", "/run/../etc/shadow", "/run/secrets/../../etc/x",
        "/run/./x", "/run//x", "/run/secrets/", "/run/secrets/..", "/var/run/x",
        "/var/run/secrets", "/var/run/secrets/", "/run/a\nb", "/run/a\tb", "/runx/y",
        "/var/run/secretsx/y", "//run/x", NULL};
    const char *argv[] = {"true", NULL};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct sandbox_spec spec;
    struct sandbox_result res;
    struct core_err err;
    default_spec(f, &spec, argv, &m);
    for (size_t i = 0; bad_paths[i]; i++) {
        struct sandbox_file file = {bad_paths[i], SECRET_A, strlen(SECRET_A)};
        spec.files = &file;
        spec.nfiles = 1;
        memset(&err, 0, sizeof(err));
        int rc = sandbox_run(&spec, &res, &err);
        if (rc != CORE_E_INVAL)
            fail_msg("path '%s' gave %d", bad_paths[i] ? bad_paths[i] : "(null)", rc);
        assert_null(strstr(err.msg, SECRET_A));
        assert_int_equal(sandbox_files_check(&file, 1, NULL), CORE_E_INVAL);
    }
    /* NULL inside */
    struct sandbox_file nul = {NULL, SECRET_A, strlen(SECRET_A)};
    assert_int_equal(sandbox_files_check(&nul, 1, &err), CORE_E_INVAL);
    /* data missing, list missing */
    struct sandbox_file nodata = {"/run/secrets/x", NULL, 3};
    assert_int_equal(sandbox_files_check(&nodata, 1, &err), CORE_E_INVAL);
    assert_int_equal(sandbox_files_check(NULL, 1, &err), CORE_E_INVAL);
    assert_int_equal(sandbox_files_check(NULL, 0, &err), 0);
    /* too big: one byte over, and one file too many */
    static char huge[SANDBOX_FILE_MAX_BYTES + 1];
    struct sandbox_file big = {"/run/secrets/big", huge, sizeof(huge)};
    assert_int_equal(sandbox_files_check(&big, 1, &err), CORE_E_TOO_BIG);
    big.len = SANDBOX_FILE_MAX_BYTES;
    assert_int_equal(sandbox_files_check(&big, 1, &err), 0);
    static struct sandbox_file many[SANDBOX_FILES_MAX + 1];
    static char names[SANDBOX_FILES_MAX + 1][32];
    for (size_t i = 0; i <= SANDBOX_FILES_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "/run/secrets/f%zu", i);
        many[i] = (struct sandbox_file){names[i], "x", 1};
    }
    assert_int_equal(sandbox_files_check(many, SANDBOX_FILES_MAX, &err), 0);
    assert_int_equal(sandbox_files_check(many, SANDBOX_FILES_MAX + 1, &err), CORE_E_TOO_BIG);
    /* duplicates, and a file where another needs a directory */
    struct sandbox_file dup[] = {{"/run/secrets/a", "1", 1}, {"/run/secrets/a", "2", 1}};
    assert_int_equal(sandbox_files_check(dup, 2, &err), CORE_E_INVAL);
    struct sandbox_file clash[] = {{"/run/secrets/a", "1", 1}, {"/run/secrets/a/b", "2", 1}};
    assert_int_equal(sandbox_files_check(clash, 2, &err), CORE_E_INVAL);
    /* allowed places */
    struct sandbox_file good[] = {{"/run/x", "1", 1},
                                  {"/run/secrets/a/b", "2", 1},
                                  {"/var/run/secrets/k8s/token", "3", 1},
                                  {"/run/secrets/..x", "4", 1}};
    assert_int_equal(sandbox_files_check(good, 4, &err), 0);
    /* a file tmpfs may neither hide a spec mount nor sit inside one */
    struct sandbox_file sec = {"/run/secrets/x", SECRET_A, strlen(SECRET_A)};
    struct sandbox_mount over = {f->ws, "/run/secrets", true};
    struct sandbox_mount under = {f->ws, "/run/secrets/x/y", false};
    struct sandbox_mount above = {f->ws, "/run", true};
    const struct sandbox_mount *ms[] = {&over, &under, &above};
    for (size_t i = 0; i < 3; i++) {
        default_spec(f, &spec, argv, ms[i]);
        spec.files = &sec;
        spec.nfiles = 1;
        assert_int_equal(sandbox_run(&spec, &res, &err), CORE_E_INVAL);
        assert_null(strstr(err.msg, SECRET_A));
    }
}

static void files_refuse_unisolated_runs(void **state)
{
    struct fixture *f = *state;
    struct sandbox_caps none;
    memset(&none, 0, sizeof(none));
    snprintf(none.detail, sizeof(none.detail), "bwrap: not found");
    const char *argv[] = {"true", NULL};
    struct sandbox_mount m = {f->ws, "/workspace", true};
    struct sandbox_file file = {"/run/secrets/token", SECRET_A, strlen(SECRET_A)};
    struct sandbox_spec spec;
    default_spec(f, &spec, argv, &m);
    spec.caps = &none;
    spec.allow_unisolated = true;
    spec.files = &file;
    spec.nfiles = 1;
    struct sandbox_result res;
    struct core_err err = {0};
    assert_int_equal(sandbox_run(&spec, &res, &err), CORE_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "secret files need isolation"));
    assert_null(strstr(err.msg, SECRET_A));
    /* the same spec without files does run unisolated */
    spec.nfiles = 0;
    assert_int_equal(sandbox_run(&spec, &res, &err), 0);
    assert_string_equal(res.isolation, "none");
}

static void workspace_remove_handles_plain_dirs(void **state)
{
    struct fixture *f = *state;
    char ws[160], sub[200];
    snprintf(ws, sizeof(ws), "%s/plain", f->dir);
    bool tmpfs = true;
    struct core_err err = {0};
    assert_int_equal(sandbox_workspace_create(ws, 0, &tmpfs, &err), 0);
    assert_false(tmpfs);
    snprintf(sub, sizeof(sub), "%s/a/b", ws);
    assert_int_equal(core_mkdir_p(sub, 0755, &err), 0);
    snprintf(sub, sizeof(sub), "%s/a/link", ws);
    assert_int_equal(symlink("/etc", sub), 0);
    assert_int_equal(sandbox_workspace_remove(ws, &err), 0);
    assert_int_not_equal(access(ws, F_OK), 0);
    assert_int_equal(access("/etc/passwd", F_OK), 0);
    assert_int_equal(sandbox_workspace_remove(ws, &err), 0); /* already gone is fine */
    assert_int_equal(sandbox_workspace_remove("relative", &err), CORE_E_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(probe_fills_detail),
        cmocka_unit_test(bad_spec_is_rejected),
        cmocka_unit_test(echo_output_reaches_out_fd),
        cmocka_unit_test(exit_codes_propagate),
        cmocka_unit_test(env_is_only_what_the_spec_passes),
        cmocka_unit_test(platform_data_dir_and_shadow_are_invisible),
        cmocka_unit_test(writes_only_in_writable_places),
        cmocka_unit_test(network_off_by_default_on_when_asked),
        cmocka_unit_test(fork_bomb_is_contained),
        cmocka_unit_test(memory_hog_is_oom_killed),
        cmocka_unit_test(hung_step_times_out_and_leaves_nothing),
        cmocka_unit_test(background_processes_die_with_the_step),
        cmocka_unit_test(disk_filler_hits_workspace_cap),
        cmocka_unit_test(cpu_limit_is_applied),
        cmocka_unit_test(files_arrive_on_readonly_tmpfs),
        cmocka_unit_test(files_stay_out_of_argv_and_environ),
        cmocka_unit_test(many_files_in_one_run),
        cmocka_unit_test(hostile_file_specs_are_refused),
        cmocka_unit_test(files_refuse_unisolated_runs),
        cmocka_unit_test(workspace_remove_handles_plain_dirs),
    };
    return cmocka_run_group_tests_name("sandbox", tests, setup, teardown);
}
