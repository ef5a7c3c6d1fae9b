/* fuzz_safetensors.c - libFuzzer target: the safetensors reader on arbitrary
 * bytes. Accepted files must describe tensors that lie inside the buffer
 * (touching each tensor's last byte lets ASan check that), whose sizes add up
 * to no more than the file, and that can be found by name. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dojo/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dj_st_file *f = NULL;
    char err[1024];
    if (dj_safetensors_parse(data, size, "fuzz", &f, err, sizeof err) != DJ_OK)
        return 0;
    size_t n = dj_safetensors_count(f), total = 0;
    for (size_t i = 0; i < n; i++) {
        const dj_st_tensor *t = dj_safetensors_at(f, i);
        total += t->nbytes;
        if (t->nbytes) {
            volatile uint8_t sink = ((const uint8_t *)t->data)[t->nbytes - 1];
            (void)sink;
        }
        if (dj_safetensors_find(f, t->name) == NULL)
            abort();
    }
    if (total > size)
        abort();
    dj_safetensors_free(f);
    return 0;
}
