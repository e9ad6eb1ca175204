/* cgroup v1/v2 handling for the sandbox: detection, per-run groups, limits, kill, events. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"

static const char *const ctrl_names[SANDBOX_CG_NCTRL] = {"memory", "cpu", "pids"};

/* Writes s to path (no O_CREAT: cgroup files exist or the feature is absent).
 * returns: 0 or -errno. */
static int write_str(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(s);
    ssize_t n = write(fd, s, len);
    int rc = n == (ssize_t)len ? 0 : (n < 0 ? -errno : -EIO);
    close(fd);
    return rc;
}

/* Reads at most size-1 bytes of path into buf, NUL-terminated. returns: bytes or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off + 1 < size) {
        ssize_t n = read(fd, buf + off, size - 1 - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    buf[off] = '\0';
    close(fd);
    return (ssize_t)off;
}

static bool join(char *out, size_t outsz, const char *a, const char *b)
{
    int n = snprintf(out, outsz, "%s/%s", a, b);
    return n > 0 && (size_t)n < outsz;
}

/* true when the comma-separated list contains word exactly. */
static bool list_has(const char *list, const char *word)
{
    size_t wl = strlen(word);
    const char *p = list;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == wl && memcmp(p, word, wl) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* true when the space-separated list contains word exactly (cgroup.controllers format). */
static bool words_have(const char *list, const char *word)
{
    size_t wl = strlen(word);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\n')
            p++;
        size_t len = strcspn(p, " \n");
        if (len == wl && memcmp(p, word, wl) == 0)
            return true;
        p += len;
    }
    return false;
}

/* Own cgroup path for a v1 controller (ctrl != NULL) or the v2 hierarchy (ctrl == NULL). */
static bool own_path(const char *ctrl, char *out, size_t outsz)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = '\0';
        *c2 = '\0';
        const char *ctrls = c1 + 1;
        bool match = ctrl ? list_has(ctrls, ctrl) : (strcmp(line, "0") == 0 && *ctrls == '\0');
        if (match && (size_t)snprintf(out, outsz, "%s", c2 + 1) < outsz)
            found = true;
    }
    fclose(f);
    return found;
}

/* Finds the mount of a v1 controller (ctrl != NULL) or of cgroup2 (ctrl == NULL): mount point and
 * the root of the mount inside the hierarchy. */
static bool find_mount(const char *ctrl, char *mnt, size_t mntsz, char *root, size_t rootsz)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return false;
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        /* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
        char *fields[6];
        char *save = NULL;
        char *tok = strtok_r(line, " \n", &save);
        int n = 0;
        while (tok && n < 6) {
            fields[n++] = tok;
            tok = strtok_r(NULL, " \n", &save);
        }
        if (n < 6)
            continue;
        while (tok && strcmp(tok, "-") != 0)
            tok = strtok_r(NULL, " \n", &save);
        char *fstype = tok ? strtok_r(NULL, " \n", &save) : NULL;
        char *source = fstype ? strtok_r(NULL, " \n", &save) : NULL;
        char *super = source ? strtok_r(NULL, " \n", &save) : NULL;
        if (!super)
            continue;
        bool match = ctrl ? (strcmp(fstype, "cgroup") == 0 && list_has(super, ctrl))
                          : strcmp(fstype, "cgroup2") == 0;
        if (!match || strchr(fields[4], '\\'))
            continue;
        if ((size_t)snprintf(mnt, mntsz, "%s", fields[4]) < mntsz &&
            (size_t)snprintf(root, rootsz, "%s", fields[3]) < rootsz)
            found = true;
    }
    fclose(f);
    return found;
}

/* Directory of this process's own group in a hierarchy: mount point + (own path - mount root). */
static bool own_dir(const char *ctrl, char *out, size_t outsz)
{
    char mnt[512], root[512], own[512];
    if (!find_mount(ctrl, mnt, sizeof(mnt), root, sizeof(root)) ||
        !own_path(ctrl, own, sizeof(own)))
        return false;
    const char *rel = own;
    size_t rl = strlen(root);
    if (strcmp(root, "/") != 0) {
        if (strncmp(own, root, rl) != 0 || (own[rl] != '/' && own[rl] != '\0'))
            rel = "/"; /* our group is outside the mounted subtree; use the mount's root */
        else
            rel = own + rl;
    }
    int n = snprintf(out, outsz, "%s%s", mnt, strcmp(rel, "/") == 0 ? "" : rel);
    return n > 0 && (size_t)n < outsz;
}

static bool make_pave_dir(const char *base)
{
    char dir[SANDBOX_CG_PATH_MAX];
    if (!join(dir, sizeof(dir), base, "pave"))
        return false;
    return mkdir(dir, 0755) == 0 || errno == EEXIST;
}

/* v2: enables the controllers we want in dir's cgroup.subtree_control; true if all that dir has
 * are enabled (EBUSY means dir holds processes and cannot delegate). */
static bool v2_enable(const char *dir)
{
    char path[SANDBOX_CG_PATH_MAX], list[512];
    if (!join(path, sizeof(path), dir, "cgroup.controllers") ||
        read_small(path, list, sizeof(list)) < 0)
        return false;
    if (!join(path, sizeof(path), dir, "cgroup.subtree_control"))
        return false;
    bool ok = true;
    for (int c = 0; c < SANDBOX_CG_NCTRL; c++) {
        char cmd[32];
        if (!words_have(list, ctrl_names[c]))
            continue;
        snprintf(cmd, sizeof(cmd), "+%s", ctrl_names[c]);
        if (write_str(path, cmd) != 0)
            ok = false;
    }
    return ok;
}

/* (Re)creates the "pave" parent under base; on v2 also hands the controllers to its children. */
static bool ensure_pave(const char *base, int version)
{
    char pave[SANDBOX_CG_PATH_MAX];
    if (!make_pave_dir(base) || !join(pave, sizeof(pave), base, "pave"))
        return false;
    if (version == 2)
        v2_enable(pave);
    return true;
}

static void detect_v2(struct sandbox_cg_host *host)
{
    char own[SANDBOX_CG_PATH_MAX], mnt[512], root[512];
    if (!own_dir(NULL, own, sizeof(own)) || !find_mount(NULL, mnt, sizeof(mnt), root, sizeof(root)))
        return;
    if (access(own, W_OK) != 0)
        return;
    /* Our own group may hold processes (the "no internal processes" rule forbids enabling
     * controllers for its children then); fall back to its parent, which cannot. */
    char base[SANDBOX_CG_PATH_MAX];
    snprintf(base, sizeof(base), "%s", own);
    if (!v2_enable(base) && strcmp(base, mnt) != 0) {
        char *slash = strrchr(base, '/');
        if (slash && (size_t)(slash - base) >= strlen(mnt))
            *slash = '\0';
        v2_enable(base);
    }
    if (!make_pave_dir(base))
        return;
    char pave[SANDBOX_CG_PATH_MAX], path[SANDBOX_CG_PATH_MAX], list[512];
    if (!join(pave, sizeof(pave), base, "pave"))
        return;
    v2_enable(pave);
    if (!join(path, sizeof(path), pave, "cgroup.subtree_control") ||
        read_small(path, list, sizeof(list)) < 0)
        return;
    host->version = 2;
    for (int c = 0; c < SANDBOX_CG_NCTRL; c++) {
        snprintf(host->base[c], sizeof(host->base[c]), "%s", base);
        host->usable[c] = words_have(list, ctrl_names[c]);
    }
}

void sandbox_cg_detect(struct sandbox_cg_host *host)
{
    memset(host, 0, sizeof(*host));
    /* Hybrid hosts mount the controllers on v1 and an empty v2 tree beside them: a controller
     * lives in exactly one hierarchy, so v1 wins whenever it has any of ours. */
    for (int c = 0; c < SANDBOX_CG_NCTRL; c++) {
        char dir[SANDBOX_CG_PATH_MAX];
        if (!own_dir(ctrl_names[c], dir, sizeof(dir)) || access(dir, W_OK) != 0 ||
            !make_pave_dir(dir))
            continue;
        snprintf(host->base[c], sizeof(host->base[c]), "%s", dir);
        host->usable[c] = true;
        host->version = 1;
    }
    if (host->version == 0)
        detect_v2(host);
}

static int set_limit(const char *dir, const char *file, const char *value, bool optional,
                     struct core_err *err)
{
    char path[SANDBOX_CG_PATH_MAX];
    if (!join(path, sizeof(path), dir, file))
        return core_err_set(err, CORE_E_INVAL, "cgroup path too long");
    int rc = write_str(path, value);
    if (rc == 0 || (optional && rc == -ENOENT))
        return 0;
    return core_err_set(err, CORE_E_IO, "cannot write %s to %s: %s", value, path, strerror(-rc));
}

static int apply_limits(const struct sandbox_cg *cg, const struct sandbox_limits *lim,
                        struct core_err *err)
{
    char v[64];
    int rc = 0;
    const char *mem = cg->dir[SANDBOX_CG_MEMORY], *cpu = cg->dir[SANDBOX_CG_CPU];
    const char *pids = cg->dir[SANDBOX_CG_PIDS];
    if (lim->memory_bytes > 0) {
        snprintf(v, sizeof(v), "%lld", (long long)lim->memory_bytes);
        if (cg->version == 1) {
            /* memsw (memory+swap) must be >= the memory limit, so it goes second; it is absent
             * when swap accounting is off, and then swap cannot dodge the limit anyway. */
            if ((rc = set_limit(mem, "memory.limit_in_bytes", v, false, err)) ||
                (rc = set_limit(mem, "memory.memsw.limit_in_bytes", v, true, err)))
                return rc;
        } else if ((rc = set_limit(mem, "memory.max", v, false, err)) ||
                   (rc = set_limit(mem, "memory.swap.max", "0", true, err))) {
            return rc;
        }
    }
    if (lim->cpu_millicores > 0) {
        /* quota per 100 ms period; the kernel refuses quotas below 1 ms */
        long long quota = (long long)lim->cpu_millicores * 100;
        if (quota < 1000)
            quota = 1000;
        if (cg->version == 1) {
            snprintf(v, sizeof(v), "%lld", quota);
            if ((rc = set_limit(cpu, "cpu.cfs_period_us", "100000", false, err)) ||
                (rc = set_limit(cpu, "cpu.cfs_quota_us", v, false, err)))
                return rc;
        } else {
            snprintf(v, sizeof(v), "%lld 100000", quota);
            if ((rc = set_limit(cpu, "cpu.max", v, false, err)))
                return rc;
        }
    }
    if (lim->pids > 0) {
        snprintf(v, sizeof(v), "%lld", (long long)lim->pids);
        if ((rc = set_limit(pids, "pids.max", v, false, err)))
            return rc;
    }
    return 0;
}

/* Removes run groups left behind by a process that died before it could clean up (the daemon was
 * SIGKILLed mid-run). A group's name ends in "-<child pid>-<owner pid>"; only groups whose owner is
 * gone are touched, so runs of live processes (this one's other threads included) are safe. */
static void sweep_stale(const char *pave_dir, int version)
{
    DIR *d = opendir(pave_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *dash = strrchr(e->d_name, '-');
        char *end = NULL;
        long owner = dash ? strtol(dash + 1, &end, 10) : 0;
        if (owner <= 0 || !end || *end || owner == (long)getpid() ||
            kill((pid_t)owner, 0) == 0 || errno != ESRCH)
            continue;
        struct sandbox_cg stale;
        memset(&stale, 0, sizeof(stale));
        stale.version = version;
        if (join(stale.dir[0], sizeof(stale.dir[0]), pave_dir, e->d_name))
            sandbox_cg_destroy(&stale);
    }
    if (d)
        closedir(d);
}

int sandbox_cg_create(struct sandbox_cg *cg, const struct sandbox_cg_host *host, const char *name,
                      long tag, const struct sandbox_limits *lim, struct core_err *err)
{
    int rc = 0;
    memset(cg, 0, sizeof(*cg));
    cg->version = host->version;
    if (host->version == 0)
        return 0;
    char leaf[128];
    snprintf(leaf, sizeof(leaf), "pave/%s-%ld-%ld", name, tag, (long)getpid());
    for (int c = 0; c < SANDBOX_CG_NCTRL; c++) {
        if (!host->usable[c] && !(host->version == 2 && c == 0))
            continue;
        char pave[SANDBOX_CG_PATH_MAX];
        if (join(pave, sizeof(pave), host->base[c], "pave"))
            sweep_stale(pave, host->version);
        char dir[SANDBOX_CG_PATH_MAX];
        if (!join(dir, sizeof(dir), host->base[c], leaf)) {
            rc = core_err_set(err, CORE_E_INVAL, "cgroup path too long");
            goto out;
        }
        /* v2: one directory serves every controller; create it once */
        bool dup = false;
        for (int d = 0; d < c; d++)
            dup = dup || strcmp(cg->dir[d], dir) == 0;
        /* a concurrent destroy may remove the empty "pave" parent between our mkdirs */
        int mk = dup ? 0 : mkdir(dir, 0755);
        for (int i = 0; !dup && mk != 0 && errno == ENOENT && i < 3; i++)
            mk = ensure_pave(host->base[c], host->version) ? mkdir(dir, 0755) : -1;
        if (mk != 0) {
            rc = core_err_set(err, CORE_E_IO, "cannot create cgroup %s: %s", dir, strerror(errno));
            goto out;
        }
        snprintf(cg->dir[c], sizeof(cg->dir[c]), "%s", dir);
    }
    rc = apply_limits(cg, lim, err);
out:
    if (rc)
        sandbox_cg_destroy(cg);
    return rc;
}

int sandbox_cg_attach(const struct sandbox_cg *cg, pid_t pid, struct core_err *err)
{
    char v[32];
    snprintf(v, sizeof(v), "%ld", (long)pid);
    for (int c = 0; c < SANDBOX_CG_NCTRL; c++) {
        if (!cg->dir[c][0])
            continue;
        char path[SANDBOX_CG_PATH_MAX];
        if (!join(path, sizeof(path), cg->dir[c], "cgroup.procs"))
            return core_err_set(err, CORE_E_INVAL, "cgroup path too long");
        int rc = write_str(path, v);
        if (rc)
            return core_err_set(err, CORE_E_IO, "cannot join %s: %s", path, strerror(-rc));
    }
    return 0;
}

/* Sends SIGKILL to every pid listed in dir/cgroup.procs; returns how many were listed. */
static int kill_listed(const char *dir)
{
    char path[SANDBOX_CG_PATH_MAX];
    if (!join(path, sizeof(path), dir, "cgroup.procs"))
        return 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    int n = 0;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1) {
        if (pid > 0)
            kill((pid_t)pid, SIGKILL);
        n++;
    }
    fclose(f);
    return n;
}

void sandbox_cg_kill(const struct sandbox_cg *cg)
{
    for (int c = 0; c < SANDBOX_CG_NCTRL; c++) {
        if (!cg->dir[c][0])
            continue;
        if (cg->version == 2) {
            char path[SANDBOX_CG_PATH_MAX];
            if (join(path, sizeof(path), cg->dir[c], "cgroup.kill") && write_str(path, "1") == 0)
                continue;
        }
        kill_listed(cg->dir[c]);
    }
}

bool sandbox_cg_is_empty(const struct sandbox_cg *cg)
{
    for (int c = 0; c < SANDBOX_CG_NCTRL; c++) {
        char path[SANDBOX_CG_PATH_MAX], buf[64];
        if (!cg->dir[c][0] || !join(path, sizeof(path), cg->dir[c], "cgroup.procs"))
            continue;
        ssize_t n = read_small(path, buf, sizeof(buf));
        if (n > 0)
            return false;
    }
    return true;
}

/* Value of the line "key N" in a flat-keyed cgroup file, 0 when absent. */
static long long read_key(const char *dir, const char *file, const char *key)
{
    char path[SANDBOX_CG_PATH_MAX], buf[2048];
    if (!dir[0] || !join(path, sizeof(path), dir, file) || read_small(path, buf, sizeof(buf)) <= 0)
        return 0;
    size_t kl = strlen(key);
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ')
            return strtoll(line + kl + 1, NULL, 10);
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

void sandbox_cg_read_events(const struct sandbox_cg *cg, bool *oom_killed, bool *pids_limited)
{
    const char *memfile = cg->version == 1 ? "memory.oom_control" : "memory.events";
    *oom_killed = read_key(cg->dir[SANDBOX_CG_MEMORY], memfile, "oom_kill") > 0;
    *pids_limited = read_key(cg->dir[SANDBOX_CG_PIDS], "pids.events", "max") > 0;
}

void sandbox_cg_destroy(struct sandbox_cg *cg)
{
    /* Bounded: 2000 rounds of 5 ms. A pid namespace dies with its init, so this normally ends in
     * the first few rounds; the bound only keeps a wedged kernel from hanging the caller. */
    struct timespec pause = {0, 5 * 1000 * 1000};
    for (int round = 0; round < 2000 && !sandbox_cg_is_empty(cg); round++) {
        sandbox_cg_kill(cg);
        nanosleep(&pause, NULL);
    }
    for (int c = 0; c < SANDBOX_CG_NCTRL; c++) {
        if (!cg->dir[c][0])
            continue;
        bool dup = false;
        for (int d = 0; d < c; d++)
            dup = dup || strcmp(cg->dir[d], cg->dir[c]) == 0;
        /* rmdir may briefly see EBUSY while the last task finishes exiting */
        for (int i = 0; !dup && i < 200 && rmdir(cg->dir[c]) != 0 && errno == EBUSY; i++)
            nanosleep(&pause, NULL);
        /* drop the "pave" parent too once no run uses it, so the group we live in (which may
         * belong to whoever started us) can be removed by its owner; EBUSY means other runs */
        char *slash = dup ? NULL : strrchr(cg->dir[c], '/');
        if (slash) {
            *slash = '\0';
            rmdir(cg->dir[c]);
        }
    }
    memset(cg, 0, sizeof(*cg));
}
