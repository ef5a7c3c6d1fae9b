/* status.c - human-readable names for dj_status codes. */
#include "dojo/status.h"

const char *dj_status_str(dj_status st)
{
    switch (st) {
    case DJ_OK: return "ok";
    case DJ_ERR_ARG: return "invalid argument";
    case DJ_ERR_RANGE: return "value out of range";
    case DJ_ERR_NOMEM: return "out of memory";
    case DJ_ERR_IO: return "input/output error";
    case DJ_ERR_PARSE: return "malformed input";
    case DJ_ERR_UNSUPPORTED: return "not supported";
    }
    return "unknown status";
}
