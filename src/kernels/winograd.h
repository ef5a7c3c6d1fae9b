/* winograd.h - the tile transforms of the Winograd F(4x4, 3x3) convolution
 * (conv2d.c), one set per instruction set (winograd_impl.h, built plain and
 * with AVX2).
 *
 * F(4x4, 3x3) (Lavin and Gray 2016, interpolation points 0, +-1, +-2, inf)
 * computes a 4 x 4 block of a stride-1 3 x 3 convolution from the 6 x 6
 * input patch under it with 36 multiplications instead of 144:
 *   y = A^T [ (G g G^T) . (B^T d B) ] A
 * for one input channel's patch d and kernel g, where . is the elementwise
 * product; summed over input channels, the 36 products become 36 GEMMs
 * (output channels x input channels x tiles). The weight gradient is the
 * adjoint: dg = G^T [ sum over tiles (A dy A^T) . (B^T d B) ] G.
 *
 * The transforms work on up to eight tiles at once, one per vector lane,
 * in one of two layouts (conv2d.c). Row lanes: tiles tx0 .. tx0 + nl - 1 of
 * one row of tiles, from a padded plane stored split by column phase
 * (split_copy): element (row, x) at row * rs + (x % 4) * xs + x / 4, so
 * that column c of a tile's patch is one contiguous load over the eight
 * tiles (qs = 1 below; outputs of tile l at dst + 4 l). Image lanes (for
 * images a row of tiles would leave lanes idle in): the same tile of eight
 * images, from planes interleaved by image (interleave): element (row, x)
 * of image l at (row * wp + x) * 8 + l (rs = 8 wp, xs = 8, qs = 32; outputs
 * of image l at dst + l * ls). Each writes or reads its 36
 * values per channel as eight consecutive floats in 36 planes: value xi =
 * 6 i + j of channel c at base + xi * vs + c * ld. Lanes past the last
 * tile (nl) compute garbage: `in` and `dy` store it, for the caller's next
 * group of tiles to overwrite (or past the columns it uses); `out` drops it. */
#ifndef DOJO_WINOGRAD_H
#define DOJO_WINOGRAD_H
#include <stddef.h>

#include "dojo/cpu.h"

typedef struct {
    /* V = B^T d B of the 6 x 6 patches of the eight tiles whose first is
     * at src (channel c at src + c * plane); patch column c at (c % 4) * xs
     * + (c / 4) * qs. */
    void (*in)(const float *src, ptrdiff_t rs, ptrdiff_t xs, ptrdiff_t qs, ptrdiff_t plane, int nc,
               float *v, size_t vs, ptrdiff_t ld);
    /* The 4 x 4 blocks A^T M A (+ bias[c]) of the nl tiles, for c < nc, into
     * dst + c * plane (rows ldd apart, tile l at dst + l * ls): the first
     * rows x cols[l] values of tile l. bias may be NULL (+0 is added); relu:
     * then ReLU as dj_relu_forward. */
    void (*out)(const float *m, size_t vs, ptrdiff_t ld, int nc, int nl, float *dst, ptrdiff_t ls,
                int rows, const int *cols, ptrdiff_t ldd, ptrdiff_t plane, const float *bias,
                int relu);
    /* Y = A dy A^T of the 4 x 4 blocks of the eight tiles at src (split
     * layout as above). */
    void (*dy)(const float *src, ptrdiff_t rs, ptrdiff_t xs, ptrdiff_t plane, int nc, float *y,
               size_t vs, ptrdiff_t ld);
    /* dst[ph * xs + X] = row[4 X + ph] for ph < 4, X < xs: one row of the
     * split layout from a padded row of 4 xs floats. */
    void (*split)(const float *row, int xs, float *dst);
    /* dst[8 p + l] = src[l][p] for p < n, l < 8: eight planes interleaved. */
    void (*interleave)(const float *const *src, int n, float *dst);
} dj__wino_fns;

/* Which stride-1 3 x 3 convolutions (forward, backward data, weight
 * gradient) take the Winograd path (conv2d.c): 0 none, 1 those where it
 * saves enough work (the default), 2 all of them (tests). Its uses are
 * counted. */
extern int dj__conv2d_winograd;
extern _Atomic long dj__conv2d_winograd_calls;
/* Whether convolutions with a stride other than 1 (and more than one tap)
 * take the implicit GEMM over phase planes (1, the default) or im2col (0;
 * tests and benchmarks); the forward and weight-gradient calls that took it
 * are counted. */
extern int dj__conv2d_strided_implicit;
extern _Atomic long dj__conv2d_strided_calls;

/* The transforms for an ISA (generic for any that has none of its own). */
const dj__wino_fns *dj__wino_fns_for(dj_isa isa);
extern const dj__wino_fns dj__wino_generic;
#ifdef DOJO_X86
extern const dj__wino_fns dj__wino_avx2;
#endif

#endif
