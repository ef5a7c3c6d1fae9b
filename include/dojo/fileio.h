/* fileio.h - file writes that never leave a half-written file behind, and
 * small whole-file helpers.
 *
 * dj_write_atomic writes to a temporary file in the same directory, flushes
 * it to disk (fsync), renames it over the destination and syncs the
 * directory: after a crash the path holds either the old or the new
 * content, never a mix. */
#ifndef DOJO_FILEIO_H
#define DOJO_FILEIO_H

#include <stddef.h>

#include "dojo/status.h"

/* Writes n chunks (ptrs[i], lens[i]) as one file, atomically. err (may be
 * NULL) gets "cannot write 'PATH': REASON". */
dj_status dj_write_atomic_v(const char *path, const void *const *ptrs, const size_t *lens, size_t n,
                            char *err, size_t errlen);
dj_status dj_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);

/* Reads a whole file (NUL-terminated for convenience; *len excludes it).
 * Files larger than max_bytes are refused. Free *data with free(). */
dj_status dj_read_file(const char *path, size_t max_bytes, char **data, size_t *len, char *err,
                       size_t errlen);

/* Creates a directory and its parents (like mkdir -p). */
dj_status dj_mkdirs(const char *path, char *err, size_t errlen);

#endif
