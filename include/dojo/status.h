/* status.h - status codes shared by every layer of libdojo.
 *
 * Functions that can fail return a dj_status; DJ_OK is zero so that
 * `if (st) return st;` reads naturally. Messages for users are built by the
 * caller, which knows what input (file, line, tensor) was being processed. */
#ifndef DOJO_STATUS_H
#define DOJO_STATUS_H

typedef enum {
    DJ_OK = 0,
    DJ_ERR_ARG,      /* an argument is out of its documented domain */
    DJ_ERR_RANGE,    /* a value does not fit (e.g. no bias can hold it) */
    DJ_ERR_NOMEM,    /* allocation failed */
    DJ_ERR_IO,       /* reading or writing a file failed */
    DJ_ERR_PARSE,    /* malformed input text or file */
    DJ_ERR_UNSUPPORTED
} dj_status;

/* A short lower-case description of a status ("invalid argument"). */
const char *dj_status_str(dj_status st);

#endif
