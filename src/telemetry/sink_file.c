/* Sinks that write standard JSON lines to a file (`file`, appended, optionally fsync'ed per
 * batch) or to the process's stdout (`stdout`). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "telemetry/telemetry_int.h"

struct fsink {
    int fd;
    bool own_fd, fsync_each;
    char *path;
    pthread_mutex_t mu;
};

/* Writes each event's line and a newline. The engine encodes a batch's lines into one buffer,
 * each followed by its '\n' (see process() in engine.c): when the next event starts right after
 * this one's newline, the two go out as one piece, so a batch is usually one iovec rather than
 * two per line. The byte after a line is only looked at when the next line begins just past
 * it, i.e. when it lies between two lines of the same buffer. */
static int write_all(int fd, const struct tel_events *b, struct core_err *err, const char *what)
{
    struct iovec iov[1024];
    size_t i = 0;
    while (i < b->n) {
        int k = 0;
        while (i < b->n && k + 2 <= 1024) {
            const char *start = b->ev[i].line, *end = start + b->ev[i].len;
            for (i++; i < b->n && b->ev[i].line == end + 1 && *end == '\n'; i++)
                end = b->ev[i].line + b->ev[i].len;
            iov[k].iov_base = (void *)start;
            iov[k++].iov_len = (size_t)(end - start);
            iov[k].iov_base = (void *)"\n";
            iov[k++].iov_len = 1;
        }
        int first = 0;
        while (first < k) {
            ssize_t w = writev(fd, iov + first, k - first);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return core_err_set(err, CORE_E_IO, "writing %s: %s", what, strerror(errno));
            while (first < k && (size_t)w >= iov[first].iov_len) {
                w -= (ssize_t)iov[first].iov_len;
                first++;
            }
            if (first < k && w > 0) {
                iov[first].iov_base = (char *)iov[first].iov_base + w;
                iov[first].iov_len -= (size_t)w;
            }
        }
    }
    return 0;
}

static int file_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                       struct core_err *err)
{
    static const char *const keys[] = {"type", "name", "when", "buffer", "path", "fsync", NULL};
    const char *path = NULL;
    bool fs = false;
    int rc = tel_cfg_keys(e, cfg, "the file sink", keys, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "path", NULL, &path, err);
    if (!rc)
        rc = tel_cfg_bool(e, cfg, "fsync", false, &fs, err);
    if (rc)
        return rc;
    if (!path || path[0] != '/')
        return tel_cfg_error(e, cfg, err, "the file sink needs an absolute path");
    struct fsink *f = core_calloc(1, sizeof(*f));
    if (!f)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    f->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (f->fd < 0) {
        rc = tel_cfg_error(e, core_node_get(cfg, "path"), err, "cannot open '%s': %s", path,
                           strerror(errno));
        core_free(f);
        return rc;
    }
    f->own_fd = true;
    f->fsync_each = fs;
    f->path = core_strdup(path);
    pthread_mutex_init(&f->mu, NULL);
    *state = f;
    return 0;
}

static enum tel_sink_result file_write(void *state, const struct tel_events *b,
                                       struct core_err *err)
{
    struct fsink *f = state;
    pthread_mutex_lock(&f->mu);
    int rc = write_all(f->fd, b, err, f->path ? f->path : "stdout");
    if (!rc && f->fsync_each && fdatasync(f->fd) != 0)
        rc = core_err_set(err, CORE_E_IO, "fsync %s: %s", f->path, strerror(errno));
    pthread_mutex_unlock(&f->mu);
    return rc ? TEL_SINK_RETRY : TEL_SINK_OK;
}

static void file_destroy(void *state)
{
    struct fsink *f = state;
    if (!f)
        return;
    if (f->own_fd)
        close(f->fd);
    pthread_mutex_destroy(&f->mu);
    core_free(f->path);
    core_free(f);
}

const struct tel_sink_ops tel_sink_file = {"file", file_create, file_write, file_destroy};

static int stdout_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                         struct core_err *err)
{
    static const char *const keys[] = {"type", "name", "when", "buffer", NULL};
    int rc = tel_cfg_keys(e, cfg, "the stdout sink", keys, err);
    if (rc)
        return rc;
    struct fsink *f = core_calloc(1, sizeof(*f));
    if (!f)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    f->fd = 1;
    pthread_mutex_init(&f->mu, NULL);
    *state = f;
    return 0;
}

const struct tel_sink_ops tel_sink_stdout = {"stdout", stdout_create, file_write, file_destroy};
