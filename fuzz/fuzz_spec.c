/* fuzz_spec.c - libFuzzer target for model specs.
 *
 * Arbitrary bytes go to dj_model_parse_limits (the parser behind
 * dj_model_parse, here with small size limits so that a spec the fuzzer
 * grows cannot make each run allocate gigabytes). A refusal must come with
 * a one-line message that starts with the source name; a model that parses
 * must be consistent (shapes, parameter names and counts, summary), and is
 * then initialised, planned for batch 2 and run forward in training mode,
 * backward (with the input gradient), and forward in eval mode, reading
 * every logit and gradient so that the sanitizers see any overrun. (Values
 * are not required to be finite: a fuzzed model may well overflow.)
 *
 * Seeds: the shipped specs, e.g.
 *   mkdir -p fuzz/corpus-spec && cp models/fmnist-*.json fuzz/corpus-spec/
 * A dictionary of layer and field names speeds it up a lot:
 *   printf '"%s"\n' Conv2d Linear BatchNorm2d LayerNorm ReLU GELU SiLU MaxPool2d \
 *     AvgPool2d AdaptiveAvgPool2d Flatten Dropout Residual type body shortcut \
 *     out_channels kernel_size stride padding bias out_features eps momentum p \
 *     input layers normalize mean std output_size > /tmp/spec.dict
 *   build-n-fuzz/fuzz/fuzz_spec fuzz/corpus-spec -dict=/tmp/spec.dict -max_len=4096 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/nn.h"
#include "nn/nn_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_seq(const dj_seq *s, const dj_shape *in)
{
    dj_shape cur = *in;
    for (int i = 0; i < s->count; i++) {
        const dj_layer *L = &s->layers[i];
        if (L->in.ndim != cur.ndim || L->in_size == 0 || L->out_size == 0)
            abort();
        for (int d = 0; d < cur.ndim; d++)
            if (L->in.d[d] != cur.d[d] || L->in.d[d] < 1)
                abort();
        if (L->kind == DJ_L_RESIDUAL) {
            check_seq(&L->body, &L->in);
            if (L->has_shortcut)
                check_seq(&L->shortcut, &L->in);
        }
        cur = L->out;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dj_nn_limits lim;
    dj_nn_default_limits(&lim);
    lim.max_params = 1 << 16;
    lim.max_acts = 1 << 16;
    lim.max_layer_size = 1 << 14;
    lim.max_flops = 1 << 22;
    lim.max_layers = 64;

    dj_model *m = (dj_model *)1;
    char err[512];
    dj_status st = dj_model_parse_limits((const char *)data, size, "fuzz", &lim, &m, err,
                                         sizeof err);
    if (st != DJ_OK) {
        if (m != NULL || strncmp(err, "fuzz: ", 6) != 0 || strchr(err, '\n'))
            abort();
        return 0;
    }

    /* consistency of what parsed */
    check_seq(&m->top, &m->input);
    size_t np;
    dj_param *p = dj_model_params(m, &np);
    size_t trainable = 0;
    for (size_t i = 0; i < np; i++) {
        if (!p[i].name[0] || !p[i].value.data || p[i].value.numel == 0)
            abort();
        if (!p[i].is_buffer) {
            trainable += p[i].value.numel;
            if (!p[i].grad.data || p[i].grad.numel != p[i].value.numel)
                abort();
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(p[i].name, p[j].name) == 0)
                abort();
    }
    if (trainable != dj_model_param_count(m) || trainable > lim.max_params)
        abort();
    if (dj_model_input_size(m) == 0 || dj_model_output_size(m) == 0)
        abort();
    char sum[2048];
    dj_model_summary(m, sum, sizeof sum);
    if (strlen(sum) >= sizeof sum)
        abort();

    /* run it */
    dj_model_init(m, 1);
    if (dj_model_prepare(m, 2, 1) != DJ_OK) {
        if (!dj_model_error(m)[0])
            abort();
        dj_model_free(m);
        return 0;
    }
    dj_model_set_input_grad(m, 1);
    size_t in = dj_model_input_size(m), out = dj_model_output_size(m);
    float *x = malloc(2 * in * sizeof *x), *dl = malloc(2 * out * sizeof *dl);
    if (!x || !dl)
        abort();
    for (size_t i = 0; i < 2 * in; i++)
        x[i] = (float)((i * 2654435761u) >> 20 & 0xff) / 128.0f - 1.0f;
    for (size_t i = 0; i < 2 * out; i++)
        dl[i] = (i & 1) ? 0.5f : -0.25f;
    const float *y = dj_model_forward(m, NULL, x, 2, 1, 7, 3);
    if (!y)
        abort();
    volatile float sink = 0;
    for (size_t i = 0; i < 2 * out; i++)
        sink += y[i];
    dj_model_backward(m, NULL, dl);
    const float *dx = dj_model_input_grad(m);
    if (!dx)
        abort();
    for (size_t i = 0; i < 2 * in; i++)
        sink += dx[i];
    for (size_t i = 0; i < np; i++)
        if (!p[i].is_buffer)
            for (size_t j = 0; j < p[i].grad.numel; j++)
                sink += dj_tensor_f32(&p[i].grad)[j];
    y = dj_model_forward(m, NULL, x, 1, 0, 7, 4);
    if (!y)
        abort();
    for (size_t i = 0; i < out; i++)
        sink += y[i];
    (void)sink;
    free(x);
    free(dl);
    dj_model_free(m);
    return 0;
}
