/* fileio.c - atomic whole-file writes (temp file + fsync + rename + directory
 * fsync) and whole-file reads with a size limit. */
#define _POSIX_C_SOURCE 200809L
#include "dojo/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static dj_status fail(char *err, size_t errlen, const char *what, const char *path, int e)
{
    if (err && errlen)
        snprintf(err, errlen, "cannot %s '%s': %s", what, path, strerror(e));
    return DJ_ERR_IO;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void sync_parent_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0)
            n = 1;
        if (n >= sizeof dir)
            return;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

dj_status dj_write_atomic_v(const char *path, const void *const *ptrs, const size_t *lens, size_t n,
                            char *err, size_t errlen)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp)
        return DJ_ERR_NOMEM;
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        dj_status st = fail(err, errlen, "write", path, errno);
        free(tmp);
        return st;
    }
    for (size_t i = 0; i < n; i++) {
        if (lens[i] && write_all(fd, ptrs[i], lens[i]) != 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            free(tmp);
            return fail(err, errlen, "write", path, e);
        }
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return fail(err, errlen, "write", path, e);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return fail(err, errlen, "write", path, e);
    }
    free(tmp);
    sync_parent_dir(path);
    return DJ_OK;
}

dj_status dj_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    const void *p[1] = {data};
    size_t l[1] = {len};
    return dj_write_atomic_v(path, p, l, 1, err, errlen);
}

dj_status dj_read_file(const char *path, size_t max_bytes, char **data, size_t *len, char *err,
                       size_t errlen)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errlen, "open", path, errno);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return DJ_ERR_NOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes + 1) {
                free(buf);
                fclose(f);
                if (err && errlen)
                    snprintf(err, errlen, "'%s' is larger than %zu bytes", path, max_bytes);
                return DJ_ERR_RANGE;
            }
            size_t ncap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return DJ_ERR_NOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return fail(err, errlen, "read", path, e);
    }
    if (n > max_bytes) {
        free(buf);
        if (err && errlen)
            snprintf(err, errlen, "'%s' is larger than %zu bytes", path, max_bytes);
        return DJ_ERR_RANGE;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return DJ_OK;
}

dj_status dj_mkdirs(const char *path, char *err, size_t errlen)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        if (err && errlen)
            snprintf(err, errlen, "bad directory name '%s'", path);
        return DJ_ERR_ARG;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return fail(err, errlen, "create directory", buf, errno);
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return fail(err, errlen, "create directory", path, ENOTDIR);
    return DJ_OK;
}
