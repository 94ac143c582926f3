// The challenge's matrix generator on the GPU, compiled at run time by NVRTC. It must
// compute exactly what crates/protocol/src/challenge/matrix.rs computes (see its docs and
// node/CHALLENGE.md): word w of a factor is the SplitMix64 finalizer of key + w * GAMMA,
// and its 8 bytes, least significant first, give 8 entries, byte mod 5 - 2, row-major.
// Entries are written as bf16 bit patterns, exact for -2..2, so no CUDA header is needed.

// bf16 of -2, -1, 0, 1, 2: the upper half of their fp32 bits.
__constant__ unsigned short GPUFLOW_BF16[5] = {0xc000, 0xbf80, 0x0000, 0x3f80, 0x4000};

extern "C" __global__ void gpuflow_factor(unsigned long long key, unsigned long long words,
                                          unsigned long long *out) {
    unsigned long long w = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (w >= words) {
        return;
    }
    unsigned long long z = key + w * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z = z ^ (z >> 31);
    // Entry 8w + k is byte k of z; on the little-endian GPU, entry 8w + 4h + j sits in
    // bits 16j.. of the h-th 64-bit store.
    for (int h = 0; h < 2; h++) {
        unsigned long long packed = 0;
        for (int j = 0; j < 4; j++) {
            unsigned int byte = (unsigned int)(z >> (8 * (4 * h + j))) & 0xff;
            packed |= (unsigned long long)GPUFLOW_BF16[byte % 5] << (16 * j);
        }
        out[2 * w + h] = packed;
    }
}
