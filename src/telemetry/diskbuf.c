/* The disk buffer of a sink: events appended as CRC-checked frames to segment files
 * (DIR/<n>.seg, 16 MiB each) and read back from a checkpoint (DIR/checkpoint, "SEG OFFSET")
 * that moves only after the sink delivered what was read. A crash loses nothing that was
 * appended: the next start replays from the checkpoint (at-least-once). Every open starts a new
 * writer segment, so a frame torn by a crash is only ever at the end of an old segment, where
 * the reader skips it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "telemetry/telemetry_int.h"

#define MAGIC 0x31425650u /* "PVB1" little-endian */
#define SEGMENT_MAX (16u << 20)
#define HDR 12            /* magic, payload length, crc32 */
#define FIXED 24          /* time, severity, 4 string lengths, line length */
#define FRAME_MAX (2u << 20) /* lines are capped at 1 MiB upstream */

struct tel_diskbuf {
    char *dir;
    pthread_mutex_t mu;
    int64_t max_bytes;
    /* writer */
    int wfd;
    uint64_t wseg;
    int64_t wsize;
    /* reader: the checkpoint, and where the last read ended */
    uint64_t rseg;
    int64_t roff;
    uint64_t next_seg;
    int64_t next_off;
    int64_t unread; /* bytes appended and not committed */
};

static void seg_path(const struct tel_diskbuf *db, uint64_t seg, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%020llu.seg", db->dir, (unsigned long long)seg);
}

/* Segment numbers present in the directory, sorted; returns count (at most max). */
static size_t list_segments(const char *dir, uint64_t *out, size_t max)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l != 24 || strcmp(e->d_name + 20, ".seg") != 0)
            continue;
        char *end = NULL;
        unsigned long long v = strtoull(e->d_name, &end, 10);
        if (end != e->d_name + 20)
            continue;
        if (n < max)
            out[n++] = v;
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
            uint64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static int open_writer(struct tel_diskbuf *db, struct core_err *err)
{
    char p[4400];
    seg_path(db, db->wseg, p, sizeof(p));
    if (db->wfd >= 0)
        close(db->wfd);
    db->wfd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    db->wsize = 0;
    if (db->wfd < 0)
        return core_err_set(err, CORE_E_IO, "cannot open '%s': %s", p, strerror(errno));
    return 0;
}

struct tel_diskbuf *tel_diskbuf_open(const char *dir, int64_t max_bytes, struct core_err *err)
{
    struct tel_diskbuf *db = core_calloc(1, sizeof(*db));
    if (!db) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&db->mu, NULL);
    db->wfd = -1;
    db->dir = core_strdup(dir);
    db->max_bytes = max_bytes > 0 ? max_bytes : (1LL << 30);
    if (!db->dir || core_mkdir_p(dir, 0700, err))
        goto fail;
    /* the checkpoint, then where reading and writing resume */
    char cp[4400], *text = NULL;
    size_t len = 0;
    snprintf(cp, sizeof(cp), "%s/checkpoint", dir);
    struct core_err e2 = {0};
    bool have_cp = false;
    if (core_file_read(cp, 128, &text, &len, &e2) == 0) {
        unsigned long long seg = 0;
        long long off = 0;
        if (sscanf(text, "%llu %lld", &seg, &off) == 2 && off >= 0) {
            db->rseg = seg;
            db->roff = off;
            have_cp = true;
        }
        core_free(text);
    }
    uint64_t segs[4096];
    size_t n = list_segments(dir, segs, 4096);
    if (n && (!have_cp || db->rseg < segs[0])) {
        db->rseg = segs[0];
        db->roff = 0;
    }
    db->wseg = (n ? segs[n - 1] : 0) + 1;
    if (db->wseg <= db->rseg)
        db->wseg = db->rseg + 1;
    if (!n) { /* nothing on disk: the reader starts at the writer's segment */
        db->rseg = db->wseg;
        db->roff = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (segs[i] < db->rseg)
            continue;
        char p[4400];
        struct stat st;
        seg_path(db, segs[i], p, sizeof(p));
        if (stat(p, &st) == 0)
            db->unread += st.st_size - (segs[i] == db->rseg ? db->roff : 0);
    }
    if (db->unread < 0)
        db->unread = 0;
    db->next_seg = db->rseg;
    db->next_off = db->roff;
    if (open_writer(db, err))
        goto fail;
    return db;
fail:
    tel_diskbuf_close(db);
    return NULL;
}

void tel_diskbuf_close(struct tel_diskbuf *db)
{
    if (!db)
        return;
    if (db->wfd >= 0)
        close(db->wfd);
    core_free(db->dir);
    pthread_mutex_destroy(&db->mu);
    core_free(db);
}

static void put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint16_t clamp16(size_t n)
{
    return n > 1024 ? 1024 : (uint16_t)n;
}

int tel_diskbuf_append(struct tel_diskbuf *db, const struct tel_events *evs,
                       struct core_err *err)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    int rc = 0;
    for (size_t i = 0; i < evs->n && !rc; i++) {
        const struct tel_event *ev = &evs->ev[i];
        const char *strs[4] = {ev->service, ev->env, ev->team, ev->instance};
        uint16_t ls[4];
        size_t payload = FIXED + ev->len;
        for (int k = 0; k < 4; k++) {
            ls[k] = clamp16(strs[k] ? strlen(strs[k]) : 0);
            payload += ls[k];
        }
        if (payload > FRAME_MAX)
            continue; /* cannot happen with lines capped upstream; never write a frame we refuse */
        unsigned char hdr[HDR + FIXED];
        put32(hdr, MAGIC);
        put32(hdr + 4, (uint32_t)payload);
        int64_t t = ev->time_ns;
        int32_t sev = ev->severity;
        memcpy(hdr + HDR, &t, 8);
        memcpy(hdr + HDR + 8, &sev, 4);
        for (int k = 0; k < 4; k++)
            memcpy(hdr + HDR + 12 + 2 * k, &ls[k], 2);
        put32(hdr + HDR + 20, ev->len);
        size_t at = b.len;
        rc = core_buf_add(&b, hdr, sizeof(hdr));
        for (int k = 0; k < 4 && !rc; k++)
            rc = core_buf_add(&b, strs[k] ? strs[k] : "", ls[k]);
        if (!rc)
            rc = core_buf_add(&b, ev->line, ev->len);
        if (!rc) {
            uLong crc = crc32(0L, (const Bytef *)b.data + at + HDR, (uInt)payload);
            put32((unsigned char *)b.data + at + 8, (uint32_t)crc);
        }
    }
    if (rc) {
        core_buf_release(&b);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&db->mu);
    if (b.len && db->unread + (int64_t)b.len > db->max_bytes) {
        pthread_mutex_unlock(&db->mu);
        core_buf_release(&b);
        return CORE_E_TOO_BIG;
    }
    if (db->wsize && db->wsize + (int64_t)b.len > SEGMENT_MAX) {
        db->wseg++;
        if ((rc = open_writer(db, err))) {
            pthread_mutex_unlock(&db->mu);
            core_buf_release(&b);
            return rc;
        }
    }
    size_t off = 0;
    while (off < b.len) {
        ssize_t w = write(db->wfd, b.data + off, b.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = core_err_set(err, CORE_E_IO, "disk buffer '%s': %s", db->dir, strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    db->wsize += (int64_t)off;
    db->unread += (int64_t)off;
    pthread_mutex_unlock(&db->mu);
    core_buf_release(&b);
    return rc;
}

int64_t tel_diskbuf_pending(struct tel_diskbuf *db)
{
    pthread_mutex_lock(&db->mu);
    int64_t v = db->unread;
    pthread_mutex_unlock(&db->mu);
    return v;
}

/* Next segment after seg that exists, or 0. */
static uint64_t next_segment(struct tel_diskbuf *db, uint64_t seg)
{
    uint64_t segs[4096];
    size_t n = list_segments(db->dir, segs, 4096);
    for (size_t i = 0; i < n; i++)
        if (segs[i] > seg)
            return segs[i];
    return 0;
}

int tel_diskbuf_read(struct tel_diskbuf *db, size_t max_events, size_t max_bytes,
                     struct tel_event **evp, size_t *np, char **bufp, struct core_err *err)
{
    *evp = NULL;
    *np = 0;
    *bufp = NULL;
    pthread_mutex_lock(&db->mu);
    uint64_t seg = db->rseg, wseg = db->wseg;
    int64_t off = db->roff;
    pthread_mutex_unlock(&db->mu);
    struct tel_event *ev = core_calloc(max_events + 1, sizeof(*ev));
    char *buf = core_malloc(max_bytes + 2 * FRAME_MAX + 64);
    size_t n = 0, used = 0;
    if (!ev || !buf) {
        core_free(ev);
        core_free(buf);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    size_t *line_off = core_calloc(max_events + 1, sizeof(size_t) * 5);
    if (!line_off) {
        core_free(ev);
        core_free(buf);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    while (n < max_events && used < max_bytes) {
        char p[4400];
        seg_path(db, seg, p, sizeof(p));
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            uint64_t nx = seg < wseg ? next_segment(db, seg) : 0;
            if (!nx)
                break;
            seg = nx;
            off = 0;
            continue;
        }
        bool seg_done = false;
        while (n < max_events && used < max_bytes) {
            unsigned char hdr[HDR];
            ssize_t r = pread(fd, hdr, HDR, off);
            if (r != HDR || get32(hdr) != MAGIC || get32(hdr + 4) < FIXED ||
                get32(hdr + 4) > FRAME_MAX) {
                /* end of data, a torn or corrupt tail: in an old segment, go on to the next */
                seg_done = seg < wseg;
                if (r > 0 && seg_done)
                    log_warn("telemetry", "disk buffer: skipping a torn or corrupt frame",
                             LOG_STR("segment", p), LOG_INT("offset", off));
                break;
            }
            uint32_t plen = get32(hdr + 4);
            char *payload = buf + used;
            if (pread(fd, payload, plen, off + HDR) != (ssize_t)plen ||
                (uint32_t)crc32(0L, (const Bytef *)payload, plen) != get32(hdr + 8)) {
                seg_done = seg < wseg;
                break;
            }
            uint16_t ls[4];
            uint32_t ll;
            memcpy(&ev[n].time_ns, payload, 8);
            int32_t sev;
            memcpy(&sev, payload + 8, 4);
            ev[n].severity = sev;
            memcpy(ls, payload + 12, 8);
            memcpy(&ll, payload + 20, 4);
            size_t need = (size_t)FIXED + ls[0] + ls[1] + ls[2] + ls[3] + ll;
            if (need != plen) {
                seg_done = seg < wseg;
                break;
            }
            /* strings must be NUL-terminated: copy them after the payload */
            size_t s_at = used + plen;
            size_t pos = FIXED;
            size_t *lo = &line_off[n * 5];
            for (int k = 0; k < 4; k++) {
                memcpy(buf + s_at, payload + pos, ls[k]);
                buf[s_at + ls[k]] = 0;
                lo[k] = s_at;
                s_at += ls[k] + 1;
                pos += ls[k];
            }
            lo[4] = used + pos;
            ev[n].len = ll;
            used = s_at;
            off += HDR + plen;
            n++;
        }
        close(fd);
        if (!seg_done)
            break;
        uint64_t nx = next_segment(db, seg);
        if (!nx)
            break;
        seg = nx;
        off = 0;
    }
    for (size_t i = 0; i < n; i++) {
        size_t *lo = &line_off[i * 5];
        ev[i].service = buf + lo[0];
        ev[i].env = buf + lo[1];
        ev[i].team = buf + lo[2];
        ev[i].instance = buf + lo[3];
        ev[i].line = buf + lo[4];
    }
    core_free(line_off);
    pthread_mutex_lock(&db->mu);
    db->next_seg = seg;
    db->next_off = off;
    pthread_mutex_unlock(&db->mu);
    *evp = ev;
    *np = n;
    *bufp = buf;
    return 0;
}

int tel_diskbuf_commit(struct tel_diskbuf *db, struct core_err *err)
{
    pthread_mutex_lock(&db->mu);
    uint64_t oseg = db->rseg, nseg = db->next_seg;
    int64_t ooff = db->roff, noff = db->next_off;
    pthread_mutex_unlock(&db->mu);
    if (oseg == nseg && ooff == noff)
        return 0;
    char cp[4400], text[64];
    snprintf(cp, sizeof(cp), "%s/checkpoint", db->dir);
    snprintf(text, sizeof(text), "%llu %lld\n", (unsigned long long)nseg, (long long)noff);
    int rc = core_file_write_atomic(cp, text, strlen(text), 0600, err);
    if (rc)
        return rc;
    /* bytes consumed: the rest of the old segments plus the part of the new one */
    int64_t consumed = 0;
    for (uint64_t s = oseg; s <= nseg; s++) {
        char p[4400];
        struct stat st;
        seg_path(db, s, p, sizeof(p));
        if (stat(p, &st) != 0)
            continue;
        int64_t from = s == oseg ? ooff : 0;
        int64_t to = s == nseg ? noff : st.st_size;
        consumed += to - from;
        if (s < nseg)
            unlink(p);
    }
    pthread_mutex_lock(&db->mu);
    db->rseg = nseg;
    db->roff = noff;
    db->unread -= consumed;
    if (db->unread < 0)
        db->unread = 0;
    pthread_mutex_unlock(&db->mu);
    return 0;
}
