/* train_internal.h - pieces of train/ shared between its files and tests. */
#ifndef DOJO_TRAIN_INTERNAL_H
#define DOJO_TRAIN_INTERNAL_H

#include "dojo/dataset.h"
#include "dojo/loader.h"
#include "dojo/nn.h"
#include "dojo/safetensors.h"

dj_status dj__open_split(const dj_idx_split *sp, const dj_idx_dataset *ds, const dj_model *m,
                         const dj_loader_opts *o, dj_loader **out, char *err, size_t errlen);
dj_status dj__evaluate(dj_model *m, dj_pool *pool, dj_loader *l, int classes,
                       double *loss, double *acc, int64_t *confusion, float *probs);
dj_status dj__load_params(dj_model *m, const dj_st_file *f, const char *source, char *err,
                          size_t errlen);

#endif
