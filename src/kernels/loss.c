/* loss.c - softmax cross-entropy with label smoothing, forward and backward.
 *
 * Why this file: the classification loss of the training loop, defined as
 * PyTorch's CrossEntropyLoss(label_smoothing = s) with mean reduction:
 *
 *   loss_i = (1 - s) * (-log p[i, y_i]) + s * mean over classes c of -log p[i, c]
 *   loss   = mean over the batch of loss_i
 *
 * Each row is shifted by its maximum before exponentiating (no overflow for
 * any finite logits). The exponentials run in float; the row sums, the
 * log-sum-exp and the loss are carried in double. With lse = log sum exp
 * (z - max), -log p[c] = lse - (z[c] - max), so the smoothing term needs one
 * sum of the shifted logits and no per-class logarithm.
 *
 * A label outside [0, classes) is a caller's bug; rather than read out of
 * bounds, the forward returns NaN (probabilities are still written) and the
 * backward leaves the one-hot part out of that row. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "dojo/kernels.h"

static int label_ok(int32_t label, int classes)
{
    return label >= 0 && label < classes;
}

double dj_softmax_xent_forward(int n, int classes, const float *logits, const int32_t *labels,
                               float smoothing, float *probs)
{
    const size_t C = (size_t)classes;
    const double s = smoothing;
    double total = 0;
    int bad = 0;
    for (int r = 0; r < n; r++) {
        const float *z = logits + (size_t)r * C;
        float *p = probs + (size_t)r * C;
        float zmax = z[0];
        for (size_t c = 1; c < C; c++)
            zmax = z[c] > zmax ? z[c] : zmax;
        double sum = 0, zsum = 0;
        for (size_t c = 0; c < C; c++) {
            const float e = expf(z[c] - zmax);
            p[c] = e;
            sum += e;
            zsum += (double)z[c] - zmax;
        }
        const double inv = 1.0 / sum;
        for (size_t c = 0; c < C; c++)
            p[c] = (float)(p[c] * inv);

        const int32_t y = labels[r];
        if (!label_ok(y, classes)) {
            bad = 1;
            continue;
        }
        const double lse = log(sum);
        const double nll = lse - ((double)z[y] - zmax);
        const double smooth = lse - zsum / (double)C;
        total += (1.0 - s) * nll + s * smooth;
    }
    return bad ? NAN : total / n;
}

void dj_softmax_xent_backward(int n, int classes, const float *probs, const int32_t *labels,
                              float smoothing, float *dlogits)
{
    const size_t C = (size_t)classes;
    const double s = smoothing;
    const double uniform = s / (double)C;
    const double on = 1.0 - s + uniform;
    const double inv_n = 1.0 / n;
    for (int r = 0; r < n; r++) {
        const float *p = probs + (size_t)r * C;
        float *d = dlogits + (size_t)r * C;
        for (size_t c = 0; c < C; c++)
            d[c] = (float)((p[c] - uniform) * inv_n);
        const int32_t y = labels[r];
        if (label_ok(y, classes))
            d[y] = (float)((p[y] - on) * inv_n);
    }
}
