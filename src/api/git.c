/* Git smart HTTP: `git http-backend` as CGI behind the platform's token auth; a push that moves
 * a watched branch queues a run (ci_repo_pushed). */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/api_int.h"
#include "ci/ci.h"
#include "schema/schema.h"
#include "store/store.h"

void api_git_handle(struct api_req *r, const char *repo, const char *rest)
{
    struct api_deps *d = api_ctx(r);
    struct core_err err = {0};
    struct catalog_service s;
    if (catalog_service_get(d->cat, repo, &s, &err)) {
        api_reply_err(r, &err);
        return;
    }
    char svc[16] = "";
    core_form_get(r->query, "service", svc, sizeof(svc));
    bool push = strcmp(rest, "/git-receive-pack") == 0 || strcmp(svc, "git-receive-pack") == 0;
    bool allowed = !push || api_can_change_team(r, s.team);
    char team[128];
    snprintf(team, sizeof(team), "%s", s.team);
    catalog_service_release(&s);
    if (!allowed) {
        char msg[300];
        snprintf(msg, sizeof(msg), "service '%s' belongs to team '%s'; user '%s' cannot push",
                 repo, team, r->who.user);
        api_reply_error(r, CORE_E_PERM, msg, NULL);
        return;
    }
    if (strcmp(rest, "/info/refs") != 0 && strcmp(rest, "/git-upload-pack") != 0 &&
        strcmp(rest, "/git-receive-pack") != 0 && strcmp(rest, "/HEAD") != 0) {
        api_reply_error(r, CORE_E_NOTFOUND, "only the smart HTTP protocol is served", NULL);
        return;
    }
    char root[1100], dir[1300];
    snprintf(root, sizeof(root), "%s/git", d->data_dir);
    ci_repo_path(d->data_dir, repo, dir, sizeof(dir));
    if (core_mkdir_p(root, 0700, &err) || ci_repo_ensure(dir, &err)) {
        api_reply_err(r, &err);
        return;
    }
    struct core_buf before;
    bool receiving = strcmp(rest, "/git-receive-pack") == 0 && strcmp(r->method, "POST") == 0;
    if (receiving)
        ci_repo_heads(dir, &before);
    /* CGI environment: nothing of ours, only what http-backend needs. */
    char e_root[1200], e_path[400], e_method[32], e_query[600], e_type[200], e_len[40],
        e_user[200], e_enc[100], e_proto[200];
    const char *ct = api_req_header(r, "Content-Type");
    const char *enc = api_req_header(r, "Content-Encoding");
    const char *proto = api_req_header(r, "Git-Protocol");
    snprintf(e_root, sizeof(e_root), "GIT_PROJECT_ROOT=%s", root);
    snprintf(e_path, sizeof(e_path), "PATH_INFO=/%s.git%s", repo, rest);
    snprintf(e_method, sizeof(e_method), "REQUEST_METHOD=%s", r->method);
    snprintf(e_query, sizeof(e_query), "QUERY_STRING=%s", r->query ? r->query : "");
    snprintf(e_type, sizeof(e_type), "CONTENT_TYPE=%s", ct ? ct : "");
    snprintf(e_len, sizeof(e_len), "CONTENT_LENGTH=%zu", r->upload_len);
    snprintf(e_user, sizeof(e_user), "REMOTE_USER=%s", r->who.user);
    snprintf(e_enc, sizeof(e_enc), "HTTP_CONTENT_ENCODING=%s", enc ? enc : "");
    snprintf(e_proto, sizeof(e_proto), "GIT_PROTOCOL=%s", proto ? proto : "");
    const char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "GIT_HTTP_EXPORT_ALL=1", e_root,
                         e_path, e_method, e_query, e_type, e_len, e_user, e_enc, e_proto,
                         "REMOTE_ADDR=127.0.0.1", "GATEWAY_INTERFACE=CGI/1.1", NULL};
    char outpath[1300];
    snprintf(outpath, sizeof(outpath), "%s/tmp/git-out-XXXXXX", d->data_dir);
    int out_fd = mkostemp(outpath, O_CLOEXEC);
    int in_fd = -1;
    if (r->upload_fd >= 0 && r->upload_path[0])
        in_fd = open(r->upload_path, O_RDONLY | O_CLOEXEC);
    if (out_fd < 0) {
        if (in_fd >= 0)
            close(in_fd);
        if (receiving)
            core_buf_release(&before);
        api_reply_error(r, CORE_E_IO, "cannot run git", NULL);
        return;
    }
    unlink(outpath);
    const char *argv[] = {"git", "http-backend", NULL};
    struct core_buf errbuf;
    core_buf_init(&errbuf, 64 * 1024);
    int status = ci_spawn(argv, env, in_fd, out_fd, NULL, &errbuf);
    if (in_fd >= 0)
        close(in_fd);
    if (status != 0)
        log_warn("git", "http-backend failed", LOG_STR("service", repo), LOG_INT("status", status),
                 LOG_STR("detail", errbuf.data));
    core_buf_release(&errbuf);
    /* Parse the CGI header block, then hand the rest of the file to the client. */
    char head[8192];
    ssize_t hn = pread(out_fd, head, sizeof(head) - 1, 0);
    if (hn <= 0) {
        close(out_fd);
        if (receiving)
            core_buf_release(&before);
        api_reply_error(r, CORE_E_IO, "git produced no answer", NULL);
        return;
    }
    head[hn] = 0;
    char *end = strstr(head, "\r\n\r\n");
    size_t skip = end ? (size_t)(end - head) + 4 : 0;
    if (!end && (end = strstr(head, "\n\n")))
        skip = (size_t)(end - head) + 2;
    if (!skip) {
        close(out_fd);
        if (receiving)
            core_buf_release(&before);
        api_reply_error(r, CORE_E_IO, "git answered without headers", NULL);
        return;
    }
    *end = 0;
    struct stat sb;
    fstat(out_fd, &sb);
    r->resp = MHD_create_response_from_fd_at_offset64((uint64_t)sb.st_size - skip, out_fd, skip);
    if (!r->resp) {
        close(out_fd);
        if (receiving)
            core_buf_release(&before);
        api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
        return;
    }
    r->status = 200;
    for (char *save = NULL, *line = strtok_r(head, "\r\n", &save); line;
         line = strtok_r(NULL, "\r\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = 0;
        const char *val = colon + 1;
        while (*val == ' ')
            val++;
        if (strcasecmp(line, "Status") == 0)
            r->status = atoi(val) > 0 ? atoi(val) : 500;
        else
            MHD_add_response_header(r->resp, line, val);
    }
    if (receiving) {
        if (r->status == 200)
            ci_repo_pushed(d->runner, repo, r->who.user, dir, before.data);
        core_buf_release(&before);
    }
}
