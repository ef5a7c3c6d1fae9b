/* init.c - PyTorch's default parameter initialisation, reproducibly.
 *
 * Conv2d and Linear weights: kaiming_uniform_(a = sqrt(5)), i.e. U(-b, b)
 * with gain = sqrt(2 / (1 + a^2)) and b = gain * sqrt(3 / fan_in); biases
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)); BatchNorm2d and LayerNorm weight 1,
 * bias 0; running_mean 0, running_var 1, num_batches_tracked 0.
 *
 * Each uniform value is a pure function of (seed, parameter, element): the
 * parameter's stream is a hash of its state_dict name and element i takes
 * 24 bits of dj_rng_u32(stream seed, i, 0). So the same seed gives the same
 * weights on any thread count, and a parameter's values do not change when
 * a layer elsewhere in the spec is added or removed. */
#include <math.h>
#include <string.h>

#include "dojo/rng.h"
#include "nn/nn_internal.h"

static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void fill_uniform(dj_param *p, uint64_t seed, double bound)
{
    uint64_t key = dj_nn_mix64(seed ^ dj_nn_mix64(name_hash(p->name)));
    float *v = dj_tensor_f32(&p->value);
    for (size_t i = 0; i < p->value.numel; i++) {
        double u = (double)(dj_rng_u32(key, i, 0) >> 8) * (1.0 / 16777216.0); /* [0, 1) */
        v[i] = (float)(-bound + 2.0 * bound * u);
    }
}

static void fill(dj_param *p, float x)
{
    float *v = dj_tensor_f32(&p->value);
    for (size_t i = 0; i < p->value.numel; i++)
        v[i] = x;
}

/* PyTorch's reset_parameters() of Conv2d and Linear. */
static void init_affine(dj_model *m, const dj_layer *L, double fan_in, uint64_t seed)
{
    double a = sqrt(5.0);
    double gain = sqrt(2.0 / (1.0 + a * a));
    double std = gain / sqrt(fan_in);
    fill_uniform(&m->params[L->p_weight], seed, sqrt(3.0) * std);
    if (L->p_bias >= 0)
        fill_uniform(&m->params[L->p_bias], seed, fan_in > 0 ? 1.0 / sqrt(fan_in) : 0.0);
}

static void init_seq(dj_model *m, dj_seq *s, uint64_t seed)
{
    for (int i = 0; i < s->count; i++) {
        dj_layer *L = &s->layers[i];
        switch (L->kind) {
        case DJ_L_CONV2D:
            init_affine(m, L, (double)L->in.d[0] * L->kh * L->kw, seed);
            break;
        case DJ_L_LINEAR:
            init_affine(m, L, (double)L->in.d[0], seed);
            break;
        case DJ_L_BATCHNORM2D:
            fill(&m->params[L->p_mean], 0.0f);
            fill(&m->params[L->p_var], 1.0f);
            *(int64_t *)m->params[L->p_count].value.data = 0;
            /* fall through */
        case DJ_L_LAYERNORM:
            fill(&m->params[L->p_weight], 1.0f);
            fill(&m->params[L->p_bias], 0.0f);
            break;
        case DJ_L_RESIDUAL:
            init_seq(m, &L->body, seed);
            init_seq(m, &L->shortcut, seed);
            break;
        default:
            break;
        }
    }
}

void dj_model_init(dj_model *m, uint64_t seed)
{
    if (m)
        init_seq(m, &m->top, seed);
}
