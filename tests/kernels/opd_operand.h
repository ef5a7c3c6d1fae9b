/* opd_operand.h - random operands of every kind (float32, bf16 bits, 8-bit
 * codes through a table) with their decoded values, for the tests of the
 * quantised-operand kernels (test_gemm_q.c, test_conv2d_q.c). */
#ifndef DOJO_TEST_OPD_OPERAND_H
#define DOJO_TEST_OPD_OPERAND_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/cfloat.h"
#include "dojo/kernels.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint32_t urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

static float frand(void)
{
    return (float)((double)(urand() >> 8) / (double)(1u << 24) * 2.0 - 1.0);
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static const char *kind_name(dj_opd_kind k)
{
    return k == DJ_OPD_F32 ? "f32" : k == DJ_OPD_BF16 ? "bf16" : "u8";
}

/* An operand of n elements of kind k with random values (8-bit: codes
 * whose table value is finite; bf16: some signed zeros), and the float
 * array of its decoded values. free_operand releases both. */
typedef struct {
    dj_opd opd;
    void *mem;   /* the operand's storage */
    float *dec;  /* its decoded values */
    dj_lut8_form *form; /* 8-bit: the table's form, when this operand uses it */
} operand;

/* 8-bit operands alternate between decoding by the table's arithmetic form
 * and gathering from the table, so that the kernels are checked both ways. */
static int operand_form_toggle;

static void make_operand(operand *o, dj_opd_kind k, size_t n, const float *lut)
{
    o->dec = malloc((n ? n : 1) * sizeof(float));
    o->form = NULL;
    if (k == DJ_OPD_F32) {
        float *p = malloc((n ? n : 1) * sizeof *p);
        for (size_t i = 0; i < n; i++)
            o->dec[i] = p[i] = frand();
        o->mem = p;
        o->opd = dj_opd_f32(p);
    } else if (k == DJ_OPD_BF16) {
        uint16_t *p = malloc((n ? n : 1) * sizeof *p);
        for (size_t i = 0; i < n; i++) {
            p[i] = (uint16_t)(f32_bits(frand()) >> 16);
            if (urand() % 17 == 0)
                p[i] = urand() % 2 ? 0x8000 : 0; /* signed zeros */
            o->dec[i] = dj_bf16_to_f32(p[i]);
        }
        o->mem = p;
        o->opd = dj_opd_bf16(p);
    } else {
        uint8_t *p = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++) {
            do
                p[i] = (uint8_t)urand();
            while (!isfinite(lut[p[i]]));
            o->dec[i] = lut[p[i]];
        }
        o->mem = p;
        o->opd = dj_opd_u8(p, lut);
        if ((operand_form_toggle ^= 1) && (o->form = malloc(sizeof *o->form)) != NULL) {
            if (!dj_lut8_form_of(lut, o->form)) {
                free(o->form);
                o->form = NULL;
            }
            o->opd = dj_opd_u8_form(p, lut, o->form);
        }
    }
}

static void free_operand(operand *o)
{
    free(o->mem);
    free(o->dec);
    free(o->form);
}

#endif
