/* bench/pipeline-floor.c: the least work a log pipeline writing the standard's shape can do,
 * as a floor for bench/pipeline-logs. Not part of Paved.
 *
 * It reads FILE of flat JSON objects, one per line, and writes each line out in the shape of
 * docs/logging-standard.md (ts, observed_ts, severity, severity_number, body, attributes,
 * resource, trace_id), on every core at once: each thread takes its own byte range of FILE and
 * writes its own output file OUT.N, so nothing is ordered or handed between threads. What it
 * does not do, and a real pipeline must: parse or normalize the timestamp, check the trace id,
 * redact, escape or validate anything, look the service up, keep lines in order, retry, count.
 * Members are copied as they are; a line that is not a flat object of the expected shape is
 * written as its body without a check. So its time is a lower bound, not a competitor.
 *
 * Usage: pipeline-floor FILE OUT THREADS. Prints one line:
 *   floor LINES SECONDS USER_S SYS_S BYTES_OUT
 * where SECONDS is wall time from before the first read to after the last write.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define BLOCK (256 * 1024)
#define LINE_MAX_BYTES (64 * 1024)

static const char *in_path;
static char observed[32];

struct job {
    int id;
    off_t from, to; /* line-aligned byte range of the input */
    const char *out_path;
    size_t lines, bytes_out;
    int failed;
};

/* The next '"' or '\\' at or after p (end when none). */
static const char *quote_or_bs(const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, bs)));
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    while (p < end && *p != '"' && *p != '\\')
        p++;
    return p;
}

/* A string starting after its opening quote: returns the closing quote, or NULL. */
static const char *string_end(const char *p, const char *end)
{
    for (;;) {
        p = quote_or_bs(p, end);
        if (p >= end)
            return NULL;
        if (*p == '"')
            return p;
        p += 2; /* an escape: skip the escaped byte */
    }
}

struct span {
    const char *p;
    size_t n;
};

static char *put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

/* "\",\"severity_number\":N,\"body\":\"" for the level's first letter */
static const char *sev_number(const struct span *level)
{
    switch (level->n ? level->p[0] | 0x20 : 0) {
    case 't': return "\",\"severity_number\":1,\"body\":\"";
    case 'd': return "\",\"severity_number\":5,\"body\":\"";
    case 'w': return "\",\"severity_number\":13,\"body\":\"";
    case 'e': return "\",\"severity_number\":17,\"body\":\"";
    case 'f': return "\",\"severity_number\":21,\"body\":\"";
    default: return "\",\"severity_number\":9,\"body\":\"";
    }
}

/* Writes one line in the standard shape at o (room for 4 * n + 512 bytes); returns the end. */
static char *transcode(const char *line, size_t n, char *o)
{
    const char *p = line, *end = line + n;
    struct span ts = {0}, level = {0}, msg = {0}, service = {0}, trace = {0};
    struct span attr[64];
    size_t nattr = 0;
    if (p >= end || *p != '{')
        goto verbatim;
    p++;
    while (p < end && *p == '"') {
        const char *k = p + 1, *ke = string_end(k, end);
        if (!ke || ke + 1 >= end || ke[1] != ':')
            goto verbatim;
        const char *v = ke + 2, *ve;
        if (v < end && *v == '"') {
            ve = string_end(v + 1, end);
            if (!ve)
                goto verbatim;
            ve++;
        } else {
            ve = v;
            while (ve < end && *ve != ',' && *ve != '}')
                ve++;
        }
        size_t kl = (size_t)(ke - k);
        struct span val = {v, (size_t)(ve - v)};
        struct span inner = {v + 1, val.n >= 2 ? val.n - 2 : 0};
        if (kl == 2 && memcmp(k, "ts", 2) == 0)
            ts = inner;
        else if (kl == 5 && memcmp(k, "level", 5) == 0)
            level = inner;
        else if (kl == 3 && memcmp(k, "msg", 3) == 0)
            msg = inner;
        else if (kl == 7 && memcmp(k, "service", 7) == 0)
            service = inner;
        else if (kl == 8 && memcmp(k, "trace_id", 8) == 0)
            trace = inner;
        else if (nattr < 64)
            attr[nattr++] = (struct span){k - 1, (size_t)(ve - (k - 1))}; /* "key":value */
        p = ve;
        if (p < end && *p == ',')
            p++;
    }
    if (p >= end || *p != '}')
        goto verbatim;
    o = PUTS(o, "{\"ts\":\"");
    o = put(o, ts.p, ts.n);
    o = PUTS(o, "\",\"observed_ts\":\"");
    o = put(o, observed, strlen(observed));
    o = PUTS(o, "\",\"severity\":\"");
    o = put(o, level.p, level.n);
    const char *sn = sev_number(&level);
    o = put(o, sn, strlen(sn));
    o = put(o, msg.p, msg.n);
    o = PUTS(o, "\",\"attributes\":{");
    for (size_t i = 0; i < nattr; i++) {
        if (i)
            *o++ = ',';
        o = put(o, attr[i].p, attr[i].n);
    }
    o = PUTS(o, "},\"resource\":{\"service.name\":\"");
    o = put(o, service.p, service.n);
    o = PUTS(o, "\",\"team\":\"platform\",\"deployment.environment\":\"prod\","
                "\"log.file.path\":\"");
    o = put(o, in_path, strlen(in_path));
    o = PUTS(o, "\"},\"trace_id\":\"");
    o = put(o, trace.p, trace.n);
    o = PUTS(o, "\"}\n");
    return o;
verbatim:
    o = PUTS(o, "{\"body\":\"");
    o = put(o, line, n);
    return PUTS(o, "\"}\n");
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void *run(void *arg)
{
    struct job *j = arg;
    int in = open(in_path, O_RDONLY);
    int out = open(j->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *buf = malloc(BLOCK + LINE_MAX_BYTES);
    char *ob = malloc(4 * (BLOCK + LINE_MAX_BYTES) + 4096);
    if (in < 0 || out < 0 || !buf || !ob) {
        j->failed = 1;
        goto done;
    }
    size_t carry = 0;
    for (off_t at = j->from; at < j->to || carry;) {
        size_t want = (size_t)(j->to - at) < BLOCK ? (size_t)(j->to - at) : BLOCK;
        ssize_t r = want ? pread(in, buf + carry, want, at) : 0;
        if (r < 0) {
            j->failed = 1;
            break;
        }
        at += r;
        size_t n = carry + (size_t)r;
        const char *p = buf, *end = buf + n;
        char *o = ob;
        for (;;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) {
                if (r == 0 && p < end) { /* the range's last line has no newline */
                    o = transcode(p, (size_t)(end - p), o);
                    j->lines++;
                    p = end;
                }
                break;
            }
            o = transcode(p, (size_t)(nl - p), o);
            j->lines++;
            p = nl + 1;
        }
        if (!write_all(out, ob, (size_t)(o - ob))) {
            j->failed = 1;
            break;
        }
        j->bytes_out += (size_t)(o - ob);
        carry = (size_t)(end - p);
        if (carry > LINE_MAX_BYTES) /* a giant line: the floor drops it */
            carry = 0;
        memmove(buf, p, carry);
        if (r == 0)
            break;
    }
done:
    free(buf);
    free(ob);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return NULL;
}

static double secs(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: pipeline-floor FILE OUT THREADS\n");
        return 2;
    }
    in_path = argv[1];
    int threads = atoi(argv[3]);
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "pipeline-floor: THREADS must be 1..64\n");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(observed, sizeof(observed), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    int fd = open(in_path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(in_path);
        return 1;
    }
    struct job jobs[64];
    pthread_t tid[64];
    off_t from = 0;
    char probe[LINE_MAX_BYTES];
    for (int i = 0; i < threads; i++) {
        off_t to = st.st_size * (i + 1) / threads;
        if (i + 1 < threads && to > from) { /* move the cut past the next newline */
            ssize_t r = pread(fd, probe, sizeof(probe), to);
            char *nl = r > 0 ? memchr(probe, '\n', (size_t)r) : NULL;
            to = nl ? to + (nl - probe) + 1 : st.st_size;
        }
        if (to < from)
            to = from;
        char *name = malloc(strlen(argv[2]) + 16);
        sprintf(name, "%s.%d", argv[2], i);
        jobs[i] = (struct job){.id = i, .from = from, .to = to, .out_path = name};
        from = to;
    }
    close(fd);
    for (int i = 0; i < threads; i++)
        pthread_create(&tid[i], NULL, run, &jobs[i]);
    size_t lines = 0, bytes = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        lines += jobs[i].lines;
        bytes += jobs[i].bytes_out;
        failed |= jobs[i].failed;
        free((void *)jobs[i].out_path);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (failed) {
        fprintf(stderr, "pipeline-floor: an I/O error or out of memory\n");
        return 1;
    }
    printf("floor %zu %.4f %.2f %.2f %zu\n", lines,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
           secs(&ru.ru_utime), secs(&ru.ru_stime), bytes);
    return 0;
}
