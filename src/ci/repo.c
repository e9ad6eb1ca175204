/* Hosted git repositories: creation, imports and the pipeline triggers of a push. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ci/ci.h"
#include "store/store.h"

extern char **environ;

/* Runs argv with stdin from in_fd (or /dev/null) and stdout to out_fd, or into `out` when
 * out_fd < 0; stderr is captured into errbuf (may be NULL). returns: exit status, -1 on error. */
int ci_spawn(const char *const *argv, const char *const *env, int in_fd, int out_fd,
               struct core_buf *out, struct core_buf *errbuf)
{
    int op[2] = {-1, -1}, ep[2] = {-1, -1};
    if ((out_fd < 0 && pipe2(op, O_CLOEXEC)) || pipe2(ep, O_CLOEXEC))
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd >= 0 ? out_fd : op[1], 1);
    posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv,
                          env ? (char *const *)env : environ);
    posix_spawn_file_actions_destroy(&fa);
    if (op[1] >= 0)
        close(op[1]);
    close(ep[1]);
    if (rc != 0) {
        if (op[0] >= 0)
            close(op[0]);
        close(ep[0]);
        return -1;
    }
    /* Drain both pipes without deadlocking: small outputs only (refs, one file, messages). */
    char buf[4096];
    ssize_t n;
    if (op[0] >= 0) {
        while ((n = read(op[0], buf, sizeof(buf))) > 0)
            if (out)
                core_buf_add(out, buf, (size_t)n);
        close(op[0]);
    }
    while ((n = read(ep[0], buf, sizeof(buf))) > 0)
        if (errbuf)
            core_buf_add(errbuf, buf, (size_t)n);
    close(ep[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int ci_repo_ensure(const char *dir, struct core_err *err)
{
    struct stat sb;
    if (stat(dir, &sb) == 0)
        return 0;
    const char *init[] = {"git", "init", "--bare", "-q", "-b", "main", dir, NULL};
    struct core_buf e;
    core_buf_init(&e, 4096);
    int rc = ci_spawn(init, NULL, -1, -1, NULL, &e);
    if (rc == 0) {
        const char *cfg[] = {"git", "--git-dir", dir, "config", "http.receivepack", "true", NULL};
        rc = ci_spawn(cfg, NULL, -1, -1, NULL, &e);
    }
    if (rc != 0)
        core_err_set(err, CORE_E_IO, "cannot create the repository: %s", e.data);
    core_buf_release(&e);
    return rc ? CORE_E_IO : 0;
}

/* Reads refs/heads as "ref sha" lines. */
void ci_repo_heads(const char *dir, struct core_buf *out)
{
    const char *argv[] = {"git", "--git-dir", dir, "for-each-ref", "--format=%(refname) %(objectname)",
                          "refs/heads", NULL};
    core_buf_init(out, 1 << 20);
    ci_spawn(argv, NULL, -1, -1, out, NULL);
}

static const char *find_ref(const char *heads, const char *ref, char *sha, size_t shasz)
{
    size_t rl = strlen(ref);
    for (const char *p = heads; p && *p;) {
        const char *nl = strchr(p, '\n');
        if (strncmp(p, ref, rl) == 0 && p[rl] == ' ') {
            size_t n = (nl ? (size_t)(nl - p) : strlen(p)) - rl - 1;
            if (n >= shasz)
                n = shasz - 1;
            memcpy(sha, p + rl + 1, n);
            sha[n] = 0;
            return sha;
        }
        p = nl ? nl + 1 : NULL;
    }
    return NULL;
}

void ci_repo_pushed(struct ci_runner *runner, const char *service, const char *actor,
                    const char *dir, const char *before)
{
    struct core_buf after;
    ci_repo_heads(dir, &after);
    for (char *save = NULL, *line = strtok_r(after.data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        if (!sp || strncmp(line, "refs/heads/", 11) != 0)
            continue;
        *sp = 0;
        const char *ref = line, *sha = sp + 1, *branch = line + 11;
        char old[64];
        if (find_ref(before, ref, old, sizeof(old)) && strcmp(old, sha) == 0)
            continue;
        bool had_old = find_ref(before, ref, old, sizeof(old)) != NULL;
        /* the pipeline as of the pushed commit decides whether this branch builds */
        char spec[128];
        snprintf(spec, sizeof(spec), "%s:%s", sha, CI_PIPELINE_PATH);
        const char *show[] = {"git", "--git-dir", dir, "show", spec, NULL};
        struct core_buf text;
        core_buf_init(&text, CI_PIPELINE_MAX);
        if (ci_spawn(show, NULL, -1, -1, &text, NULL) != 0) {
            log_info("git", "push without a pipeline", LOG_STR("service", service),
                     LOG_STR("branch", branch));
            core_buf_release(&text);
            continue;
        }
        struct ci_pipeline p;
        ci_pipeline_init(&p);
        struct core_err err = {0};
        /* An invalid file still queues a run: its log shows every problem with its position. */
        bool watched = ci_pipeline_parse(CI_PIPELINE_PATH, text.data, text.len, &p, NULL, &err)
                           ? strcmp(branch, "main") == 0
                           : ci_pipeline_watches(&p, branch);
        ci_pipeline_release(&p);
        core_buf_release(&text);
        if (!watched || !runner)
            continue;
        struct core_buf changed;
        core_buf_init(&changed, 1 << 20);
        if (had_old) {
            const char *diff[] = {"git", "--git-dir", dir, "diff", "--name-only", old, sha, NULL};
            ci_spawn(diff, NULL, -1, -1, &changed, NULL);
        } else {
            const char *ls[] = {"git", "--git-dir", dir, "ls-tree", "-r", "--name-only", sha, NULL};
            ci_spawn(ls, NULL, -1, -1, &changed, NULL);
        }
        char source[1500];
        snprintf(source, sizeof(source), "git:%s@%s", dir, sha);
        struct ci_submit sub = {.service = service, .actor = actor, .trigger = "push",
                                .branch = branch, .commit = sha, .source = source,
                                .changed = changed.data};
        int64_t id = 0;
        if (ci_run_submit(runner, &sub, &id, &err))
            log_warn("git", "cannot queue a run", LOG_STR("service", service),
                     LOG_STR("error", err.msg));
        core_buf_release(&changed);
    }
    core_buf_release(&after);
}

void ci_repo_path(const char *data_dir, const char *service, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/git/%s.git", data_dir, service);
}

int ci_repo_import(struct ci_runner *runner, const char *data_dir, const char *service,
                   const char *actor, const char *src_dir, const char *message,
                   struct core_err *err)
{
    char root[1100], dir[1300];
    snprintf(root, sizeof(root), "%s/git", data_dir);
    ci_repo_path(data_dir, service, dir, sizeof(dir));
    int rc = core_mkdir_p(root, 0700, err);
    if (!rc)
        rc = ci_repo_ensure(dir, err);
    if (rc)
        return rc;
    struct core_buf before, errbuf;
    ci_repo_heads(dir, &before);
    core_buf_init(&errbuf, 16 * 1024);
    if (before.len) {
        core_buf_release(&before);
        core_buf_release(&errbuf);
        return core_err_set(err, CORE_E_CONFLICT,
                            "the repository of '%s' already has commits; push to it instead",
                            service);
    }
    char author[300], email[300];
    snprintf(author, sizeof(author), "user.name=%s", actor);
    snprintf(email, sizeof(email), "user.email=%s@pave.invalid", actor);
    const char *init[] = {"git", "-C", src_dir, "init", "-q", "-b", "main", NULL};
    const char *add[] = {"git", "-C", src_dir, "add", "-A", NULL};
    const char *commit[] = {"git", "-C", src_dir, "-c", author, "-c", email, "commit", "-q",
                            "-m", message, NULL};
    const char *push[] = {"git", "-C", src_dir, "push", "-q", dir, "main", NULL};
    if (ci_spawn(init, NULL, -1, -1, NULL, &errbuf) || ci_spawn(add, NULL, -1, -1, NULL, &errbuf) ||
        ci_spawn(commit, NULL, -1, -1, NULL, &errbuf) ||
        ci_spawn(push, NULL, -1, -1, NULL, &errbuf))
        rc = core_err_set(err, CORE_E_IO, "cannot create the first commit: %.300s", errbuf.data);
    if (!rc)
        ci_repo_pushed(runner, service, actor, dir, before.data);
    core_buf_release(&before);
    core_buf_release(&errbuf);
    return rc;
}
