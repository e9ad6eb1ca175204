/* Time, hashing, randomness and file helpers. */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t core_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void core_time_format(int64_t ms, char *out, size_t outsz)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void core_sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + i * 2, 3, "%02x", md[i]);
    out[64] = 0;
}

int core_random_bytes(void *out, size_t n)
{
    return RAND_bytes(out, (int)n) == 1 ? 0 : CORE_E_IO;
}

int core_random_hex(char *out, size_t nbytes)
{
    unsigned char buf[64];
    if (nbytes > sizeof(buf))
        return CORE_E_INVAL;
    int rc = core_random_bytes(buf, nbytes);
    if (rc)
        return rc;
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + i * 2, 3, "%02x", buf[i]);
    out[nbytes * 2] = 0;
    return 0;
}

bool core_str_eq_ct(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    unsigned char d = 0;
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

int core_file_read(const char *path, size_t max, char **out, size_t *len, struct core_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return core_err_set(err, errno == ENOENT ? CORE_E_NOTFOUND : CORE_E_IO,
                            "cannot open '%s': %s", path, strerror(errno));
    struct core_buf b;
    core_buf_init(&b, max);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = core_buf_add(&b, chunk, n);
        if (rc) {
            core_err_set(err, rc, "'%s' is larger than %zu bytes", path, max);
            break;
        }
    }
    if (!rc && ferror(f))
        rc = core_err_set(err, CORE_E_IO, "cannot read '%s'", path);
    fclose(f);
    if (rc) {
        core_buf_release(&b);
        return rc;
    }
    *out = core_buf_detach(&b, len);
    if (!*out)
        return core_err_set(err, CORE_E_NOMEM, "out of memory reading '%s'", path);
    return 0;
}

int core_file_write_atomic(const char *path, const void *data, size_t len, int mode,
                           struct core_err *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return core_err_set(err, CORE_E_IO, "cannot create '%s': %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            unlink(tmp);
            return core_err_set(err, CORE_E_IO, "cannot write '%s': %s", tmp, strerror(errno));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return core_err_set(err, CORE_E_IO, "cannot sync '%s'", tmp);
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return core_err_set(err, CORE_E_IO, "cannot rename to '%s': %s", path, strerror(errno));
    }
    return 0;
}

int core_mkdir_p(const char *path, int mode, struct core_err *err)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return core_err_set(err, CORE_E_INVAL, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char save = buf[i];
            buf[i] = 0;
            if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
                return core_err_set(err, CORE_E_IO, "cannot create directory '%s': %s", buf,
                                    strerror(errno));
            buf[i] = save;
        }
    }
    return 0;
}
