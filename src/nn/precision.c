/* precision.c - names and formats of the precision policies. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dojo/precision.h"

static const char *const g_prec_names[DJ_PREC_COUNT] = {"fp32", "bf16", "cfp8", "cfp8-shp",
                                                        "ocp8"};
static const char *const g_scaling_names[2] = {"delayed", "current"};

void dj_precision_config_defaults(dj_precision_config *p)
{
    memset(p, 0, sizeof *p);
    p->precision = DJ_PREC_FP32;
    p->scaling = DJ_SCALING_DELAYED;
    p->history = 16;
    p->margin = 0;
    snprintf(p->keep_fp32, sizeof p->keep_fp32, "%s", "first,last");
}

const char *dj_precision_name(dj_precision p)
{
    return (unsigned)p < DJ_PREC_COUNT ? g_prec_names[p] : "?";
}

int dj_precision_from_name(const char *s, dj_precision *p)
{
    for (int i = 0; i < DJ_PREC_COUNT; i++)
        if (strcasecmp(s, g_prec_names[i]) == 0) {
            *p = (dj_precision)i;
            return 0;
        }
    return -1;
}

const char *dj_scaling_name(dj_scaling s)
{
    return (unsigned)s < 2 ? g_scaling_names[s] : "?";
}

int dj_scaling_from_name(const char *s, dj_scaling *out)
{
    for (int i = 0; i < 2; i++)
        if (strcasecmp(s, g_scaling_names[i]) == 0) {
            *out = (dj_scaling)i;
            return 0;
        }
    return -1;
}

dj_precision_formats dj_precision_formats_of(dj_precision p)
{
    dj_precision_formats f = {DJ_FMT_COUNT, DJ_FMT_COUNT, DJ_FMT_COUNT, DJ_ROUND_NEAREST,
                              DJ_ROUND_NEAREST, 0};
    switch (p) {
    case DJ_PREC_BF16:
        f.fwd = f.bwd = DJ_FMT_BF16;
        break;
    case DJ_PREC_CFP8_SHP:
        f.master = DJ_FMT_SHP;
        /* fall through */
    case DJ_PREC_CFP8:
        f.fwd = DJ_FMT_CF8_143;
        f.bwd = DJ_FMT_CF8_152;
        f.bwd_round = DJ_ROUND_STOCHASTIC;
        break;
    case DJ_PREC_OCP8:
        f.fwd = DJ_FMT_E4M3;
        f.bwd = DJ_FMT_E5M2;
        f.bwd_round = DJ_ROUND_STOCHASTIC;
        f.scaled = 1;
        break;
    default:
        break;
    }
    return f;
}
