/*
 * Compiled inner loops of the fingerprint and the GGUF header parser
 * (heritage.reading.kernels holds the NumPy/Python twins and picks one).
 *
 * Why: fingerprinting a 4-bit GGUF file is bound by passes over its decoded values. The
 * kurtosis needs four power sums, which NumPy computes in five passes (a square, a sum,
 * three dot products); one pass here does all four. Rounding the digest rows to float16
 * takes NumPy about 3 ns a value; the F16C instruction (or an integer routine where it is
 * missing) far less. Skipping a tokenizer's 100,000 metadata strings is a Python loop of
 * 100,000 iterations; here it is a C loop.
 *
 * power_sums: float64 sums in 8 lanes, each lane adding its values in order, the lanes
 *   then added in order, the tail after them (a float32 value squared is exact in float64;
 *   the cube and fourth power are rounded once each): the same bits on every machine.
 *   Its twin in heritage/reading/kernels.py (float32 BLAS products) agrees to float32
 *   rounding. The other functions give bit for bit what their twins give:
 *   to_f16: IEEE round to nearest even (NumPy's astype(float16) for every non-NaN input);
 *   to_bf16: round to nearest even on the bits (as tensor.to(torch.bfloat16));
 *   skip_strings: the position after the strings, or -1 past the end.
 * This file must be compiled without contracting a*b+c into a fused multiply-add
 * (-ffp-contract=off, set by the build), or the sums would differ between machines.
 * Every loop releases the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define HERITAGE_X86 1
#include <immintrin.h>
#endif

#define LANES 8

/* Loops compiled for AVX-512, AVX2 and the baseline, the best picked at load time (GCC on
   x86-64 Linux; elsewhere the baseline only). Vectorising changes no result here: no loop
   reassociates a sum, and nothing is fused. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* A C-contiguous buffer of one item type (struct format `format`, `itemsize` bytes). */
static int
typed_buffer(PyObject *obj, Py_buffer *view, const char *format, Py_ssize_t itemsize, int writable)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    if (view->itemsize != itemsize || view->format == NULL || strcmp(view->format, format) != 0) {
        PyErr_Format(PyExc_TypeError, "expected a%s C-contiguous buffer of format '%s'",
                     writable ? " writable" : "", format);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int
float32_buffer(PyObject *obj, Py_buffer *view, int writable)
{
    return typed_buffer(obj, view, "f", 4, writable);
}

static int
uint16_buffer(PyObject *obj, Py_buffer *view)
{
    return typed_buffer(obj, view, "H", 2, 1);
}

/* ------------------------------------------------------------------ power sums */

/* Wider vectors where the CPU has them (the lanes are explicit, so every clone adds in
   the same order and gives the same bits). */
VECTOR_CLONES static void
power_sums_loop(const float *x, Py_ssize_t n, double out[4])
{
    double a1[LANES] = {0}, a2[LANES] = {0}, a3[LANES] = {0}, a4[LANES] = {0};
    Py_ssize_t whole = n - n % LANES, i;
    for (i = 0; i < whole; i += LANES) {
        for (int j = 0; j < LANES; j++) {
            double v = (double)x[i + j];
            double v2 = v * v;
            a1[j] += v;
            a2[j] += v2;
            a3[j] += v2 * v;
            a4[j] += v2 * v2;
        }
    }
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    for (int j = 0; j < LANES; j++) {
        s1 += a1[j];
        s2 += a2[j];
        s3 += a3[j];
        s4 += a4[j];
    }
    for (; i < n; i++) {
        double v = (double)x[i];
        double v2 = v * v;
        s1 += v;
        s2 += v2;
        s3 += v2 * v;
        s4 += v2 * v2;
    }
    out[0] = s1;
    out[1] = s2;
    out[2] = s3;
    out[3] = s4;
}

static PyObject *
power_sums(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_buffer view;
    double sums[4];
    if (float32_buffer(arg, &view, 0) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    power_sums_loop((const float *)view.buf, view.len / 4, sums);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return Py_BuildValue("(dddd)", sums[0], sums[1], sums[2], sums[3]);
}

/* ------------------------------------------------------------------ float16 */

/* IEEE float32 -> float16, round to nearest even, overflow to infinity (NaN stays NaN). */
static uint16_t
half_bits(uint32_t f)
{
    uint32_t sign = (f >> 16) & 0x8000u, exp = f & 0x7f800000u, sig = f & 0x007fffffu;
    if (exp >= 0x47800000u) { /* |f| >= 65536, infinity or NaN */
        if (exp == 0x7f800000u && sig) {
            uint16_t h = (uint16_t)(0x7c00u + (sig >> 13));
            return (uint16_t)(sign | (h == 0x7c00u ? h + 1 : h));
        }
        return (uint16_t)(sign | 0x7c00u);
    }
    if (exp <= 0x38000000u) { /* |f| < 2^-14: a subnormal half or zero */
        if (exp < 0x33000000u)
            return (uint16_t)sign;
        exp >>= 23;
        sig = (0x00800000u + sig) >> (113 - exp); /* the implicit bit, shifted into place */
        /* round to nearest even: add half an ulp unless the value is an exact tie to an
           even result (the bits shifted out, up to 11, are checked in the input) */
        if ((sig & 0x00003fffu) != 0x00001000u || (f & 0x000007ffu))
            sig += 0x00001000u;
        return (uint16_t)(sign + (sig >> 13)); /* a carry makes the smallest normal: right */
    }
    uint32_t hexp = (exp - 0x38000000u) >> 13; /* rebias 127 -> 15 */
    uint32_t hsig = sig;
    if ((hsig & 0x00003fffu) != 0x00001000u) /* not an exact tie to an even result */
        hsig += 0x00001000u;
    /* the addition may carry into the exponent, which is the right result, up to infinity */
    return (uint16_t)(sign + ((hexp + (hsig >> 13)) & 0xffffu));
}

static void
to_f16_scalar(const float *x, uint16_t *out, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t f;
        memcpy(&f, x + i, 4);
        out[i] = half_bits(f);
    }
}

#ifdef HERITAGE_X86
__attribute__((target("avx,f16c"))) static void
to_f16_f16c(const float *x, uint16_t *out, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
    to_f16_scalar(x + i, out + i, n - i);
}
#endif

/* What the CPU offers, read once when the module loads (detect_cpu). */
static int use_f16c = 0, use_avx2 = 0;

static void
detect_cpu(void)
{
#ifdef HERITAGE_X86
    __builtin_cpu_init();
    use_f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
    use_avx2 = __builtin_cpu_supports("avx2");
#endif
}

static void
to_f16_loop(const float *x, uint16_t *h, Py_ssize_t n)
{
#ifdef HERITAGE_X86
    if (use_f16c) {
        /* NaN is the one input where F16C and NumPy may differ (quieting): left to the
           integer routine. Weights with NaN are refused anyway. */
        to_f16_f16c(x, h, n);
        for (Py_ssize_t i = 0; i < n; i++) {
            uint32_t f;
            memcpy(&f, x + i, 4);
            if ((f & 0x7f800000u) == 0x7f800000u && (f & 0x007fffffu))
                h[i] = half_bits(f);
        }
        return;
    }
#endif
    to_f16_scalar(x, h, n);
}

/* ------------------------------------------------------------------ bfloat16 */

static void
to_bf16_loop(const float *x, uint16_t *h, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, x + i, 4);
        h[i] = (uint16_t)((v + (0x7fffu + ((v >> 16) & 1u))) >> 16);
    }
}

/* ------------------------------------------------------------------ rounding entry points */

typedef void (*rounding_loop)(const float *, uint16_t *, Py_ssize_t);

/* f(values, out): float32 values rounded by `loop` into the uint16 buffer `out`. */
static PyObject *
round_into(PyObject *args, rounding_loop loop, const char *name)
{
    PyObject *src, *dst;
    Py_buffer in, out;
    if (!PyArg_ParseTuple(args, "OO", &src, &dst))
        return NULL;
    if (float32_buffer(src, &in, 0) < 0)
        return NULL;
    if (uint16_buffer(dst, &out) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    int sizes_differ = out.len / 2 != in.len / 4;
    if (!sizes_differ) {
        Py_BEGIN_ALLOW_THREADS
        loop((const float *)in.buf, (uint16_t *)out.buf, in.len / 4);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    if (sizes_differ)
        return PyErr_Format(PyExc_ValueError, "%s: output and input sizes differ", name);
    Py_RETURN_NONE;
}

static PyObject *
to_f16(PyObject *self, PyObject *args)
{
    (void)self;
    return round_into(args, to_f16_loop, "to_f16");
}

static PyObject *
to_bf16(PyObject *self, PyObject *args)
{
    (void)self;
    return round_into(args, to_bf16_loop, "to_bf16");
}

/* ------------------------------------------------------------------ GGUF blocks */

/* Decoders of the common GGML block types, giving gguf.quants.dequantize's values bit for
   bit: the same operations in the same order, each rounded to float32 (no fused
   multiply-add: -ffp-contract=off), float16 fields widened exactly. They exist here, and
   not only in llama.cpp's library, because that library comes with llama-cpp-python (an
   optional extra that compiles llama.cpp), and its decoders are scalar loops; these are
   written so that the compiler vectorises the inner loops. */

static float
half_to_float(const uint8_t *p)
{
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, f;
    if (exp == 0) {
        if (man == 0) {
            f = sign;
        } else { /* a subnormal half is a normal float: shift its mantissa into place */
            uint32_t e = 113;
            while (!(man & 0x400u)) {
                man <<= 1;
                e--;
            }
            f = sign | (e << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 0x1f) {
        f = sign | 0x7f800000u | (man << 13); /* infinity, or NaN with its payload */
    } else {
        f = sign | ((exp + 112) << 23) | (man << 13);
    }
    float out;
    memcpy(&out, &f, 4);
    return out;
}

enum { GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6, GGML_Q5_1 = 7, GGML_Q8_0 = 8, GGML_Q4_K = 12, GGML_Q6_K = 14 };

VECTOR_CLONES static void
decode_q8_0(const uint8_t *restrict b, float *restrict y, Py_ssize_t blocks)
{
    for (Py_ssize_t i = 0; i < blocks; i++, b += 34, y += 32) {
        const float d = half_to_float(b);
        const int8_t *q = (const int8_t *)(b + 2);
        for (int j = 0; j < 32; j++)
            y[j] = d * (float)q[j];
    }
}

/* AVX2 (x86-64 where the CPU has it, chosen at load time): the 32 nibbles of 16 bytes,
   low ones to lo[0..15] and high ones to hi[0..15], as scale * (nibble - offset), plus
   shift when `shifted` (a multiply then an add, each rounded, as in the scalar loops; no
   add at all otherwise, since -0.0 + 0.0 would turn a negative zero positive). */

#ifdef HERITAGE_X86
__attribute__((target("avx2"))) static inline void
nibbles_avx2(const uint8_t *q, uint32_t qh, int fifth, float *lo, float *hi, int offset, int shifted,
             float scale_lo, float shift_lo, float scale_hi, float shift_hi)
{
    const __m128i bytes = _mm_loadu_si128((const __m128i *)q), mask = _mm_set1_epi8(0x0f);
    const __m128i low = _mm_and_si128(bytes, mask), high = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    const __m256i off = _mm256_set1_epi32(offset), bits = _mm256_set1_epi32((int)qh), one = _mm256_set1_epi32(1);
    const __m256 sl = _mm256_set1_ps(scale_lo), tl = _mm256_set1_ps(shift_lo);
    const __m256 sh = _mm256_set1_ps(scale_hi), th = _mm256_set1_ps(shift_hi);
    for (int half = 0; half < 2; half++) {
        __m128i l8 = half ? _mm_srli_si128(low, 8) : low, h8 = half ? _mm_srli_si128(high, 8) : high;
        __m256i li = _mm256_cvtepu8_epi32(l8), hi32 = _mm256_cvtepu8_epi32(h8);
        if (fifth) { /* bit j of qh is the fifth bit of value j (Q5_0, Q5_1) */
            const __m256i at = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            const __m256i lo_at = _mm256_add_epi32(at, _mm256_set1_epi32(8 * half));
            const __m256i hi_at = _mm256_add_epi32(lo_at, _mm256_set1_epi32(16));
            li = _mm256_or_si256(li, _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(bits, lo_at), one), 4));
            hi32 = _mm256_or_si256(hi32, _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(bits, hi_at), one), 4));
        }
        __m256 lf = _mm256_cvtepi32_ps(_mm256_sub_epi32(li, off));
        __m256 hf = _mm256_cvtepi32_ps(_mm256_sub_epi32(hi32, off));
        __m256 ly = _mm256_mul_ps(sl, lf), hy = _mm256_mul_ps(sh, hf);
        if (shifted) {
            ly = _mm256_add_ps(ly, tl);
            hy = _mm256_add_ps(hy, th);
        }
        _mm256_storeu_ps(lo + 8 * half, ly);
        _mm256_storeu_ps(hi + 8 * half, hy);
    }
}

__attribute__((target("avx2"))) static void
decode_q4_0_avx2(const uint8_t *restrict b, float *restrict y, Py_ssize_t blocks)
{
    for (Py_ssize_t i = 0; i < blocks; i++, b += 18, y += 32) {
        const float d = half_to_float(b);
        nibbles_avx2(b + 2, 0, 0, y, y + 16, 8, 0, d, 0.0f, d, 0.0f);
    }
}

__attribute__((target("avx2"))) static void
decode_q4_1_avx2(const uint8_t *restrict b, float *restrict y, Py_ssize_t blocks)
{
    for (Py_ssize_t i = 0; i < blocks; i++, b += 20, y += 32) {
        const float d = half_to_float(b), m = half_to_float(b + 2);
        nibbles_avx2(b + 4, 0, 0, y, y + 16, 0, 1, d, m, d, m);
    }
}
#endif

VECTOR_CLONES static void
decode_q4_0(const uint8_t *restrict b, float *restrict y, Py_ssize_t blocks)
{
    for (Py_ssize_t i = 0; i < blocks; i++, b += 18, y += 32) {
        const float d = half_to_float(b);
        const uint8_t *q = b + 2;
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)((int)(q[j] & 0x0f) - 8);
            y[j + 16] = d * (float)((int)(q[j] >> 4) - 8);
        }
    }
}

VECTOR_CLONES static void
decode_q4_1(const uint8_t *restrict b, float *restrict y, Py_ssize_t blocks)
{
    for (Py_ssize_t i = 0; i < blocks; i++, b += 20, y += 32) {
        const float d = half_to_float(b), m = half_to_float(b + 2);
        const uint8_t *q = b + 4;
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)(q[j] & 0x0f) + m;
            y[j + 16] = d * (float)(q[j] >> 4) + m;
        }
    }
}

/* Q5_0 / Q5_1: the 4 low bits as in Q4_0 / Q4_1, the fifth bit of value j in bit j of a
   32-bit field; y = d * (q - 16), or d * q + m. */
static inline uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void
five_bits(const uint8_t *qh_bytes, const uint8_t *qs, int q[32])
{
    uint32_t qh = le32(qh_bytes);
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 0x0f) | (int)(((qh >> j) & 1u) << 4);
        q[j + 16] = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
    }
}

VECTOR_CLONES static void
decode_q5_0(const uint8_t *restrict b, float *restrict y, Py_ssize_t blocks)
{
    int q[32];
    for (Py_ssize_t i = 0; i < blocks; i++, b += 22, y += 32) {
        const float d = half_to_float(b);
        five_bits(b + 2, b + 6, q);
        for (int j = 0; j < 32; j++)
            y[j] = d * (float)(q[j] - 16);
    }
}

VECTOR_CLONES static void
decode_q5_1(const uint8_t *restrict b, float *restrict y, Py_ssize_t blocks)
{
    int q[32];
    for (Py_ssize_t i = 0; i < blocks; i++, b += 24, y += 32) {
        const float d = half_to_float(b), m = half_to_float(b + 2);
        five_bits(b + 4, b + 8, q);
        for (int j = 0; j < 32; j++)
            y[j] = d * (float)q[j] + m;
    }
}

#ifdef HERITAGE_X86
__attribute__((target("avx2"))) static void
decode_q5_0_avx2(const uint8_t *restrict b, float *restrict y, Py_ssize_t blocks)
{
    for (Py_ssize_t i = 0; i < blocks; i++, b += 22, y += 32) {
        const float d = half_to_float(b);
        nibbles_avx2(b + 6, le32(b + 2), 1, y, y + 16, 16, 0, d, 0.0f, d, 0.0f);
    }
}

__attribute__((target("avx2"))) static void
decode_q5_1_avx2(const uint8_t *restrict b, float *restrict y, Py_ssize_t blocks)
{
    for (Py_ssize_t i = 0; i < blocks; i++, b += 24, y += 32) {
        const float d = half_to_float(b), m = half_to_float(b + 2);
        nibbles_avx2(b + 8, le32(b + 4), 1, y, y + 16, 0, 1, d, m, d, m);
    }
}
#endif

/* Q4_K: 256 values in 8 sub-blocks of 32, each with a 6-bit scale and minimum packed into
   12 bytes; y = (d * scale) * q - dmin * min. */
static inline void
q4_k_scales(const uint8_t *b, float scale[8], float minimum[8])
{
    const float d = half_to_float(b), dmin = half_to_float(b + 2);
    const uint8_t *s = b + 4;
    for (int j = 0; j < 4; j++) {
        scale[j] = d * (float)(s[j] & 0x3f);
        minimum[j] = dmin * (float)(s[j + 4] & 0x3f);
        scale[j + 4] = d * (float)((s[j + 8] & 0x0f) | ((s[j] >> 2) & 0x30));
        minimum[j + 4] = dmin * (float)((s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30));
    }
}

/* 32 bytes of codes per pair of sub-blocks: sub-block 2g in the low nibbles, 2g + 1 in the
   high ones. */
VECTOR_CLONES static void
decode_q4_k(const uint8_t *restrict b, float *restrict y, Py_ssize_t blocks)
{
    float scale[8], minimum[8];
    for (Py_ssize_t i = 0; i < blocks; i++, b += 144, y += 256) {
        q4_k_scales(b, scale, minimum);
        for (int g = 0; g < 4; g++) {
            const uint8_t *q = b + 16 + 32 * g;
            float *yg = y + 64 * g;
            for (int j = 0; j < 32; j++) {
                yg[j] = scale[2 * g] * (float)(q[j] & 0x0f) - minimum[2 * g];
                yg[j + 32] = scale[2 * g + 1] * (float)(q[j] >> 4) - minimum[2 * g + 1];
            }
        }
    }
}

#ifdef HERITAGE_X86
__attribute__((target("avx2"))) static void
decode_q4_k_avx2(const uint8_t *restrict b, float *restrict y, Py_ssize_t blocks)
{
    float scale[8], minimum[8];
    for (Py_ssize_t i = 0; i < blocks; i++, b += 144, y += 256) {
        q4_k_scales(b, scale, minimum);
        for (int g = 0; g < 4; g++) { /* x - m computed as x + (-m): the same in IEEE arithmetic */
            for (int half = 0; half < 2; half++)
                nibbles_avx2(b + 16 + 32 * g + 16 * half, 0, 0, y + 64 * g + 16 * half, y + 64 * g + 32 + 16 * half,
                             0, 1, scale[2 * g], -minimum[2 * g], scale[2 * g + 1], -minimum[2 * g + 1]);
        }
    }
}
#endif

/* Q6_K: 256 values, 4 low bits in ql[128], 2 high bits in qh[64], 16 int8 scales, then d;
   y = (d * scale) * (q - 32). */
VECTOR_CLONES static void
decode_q6_k(const uint8_t *restrict b, float *restrict y, Py_ssize_t blocks)
{
    for (Py_ssize_t i = 0; i < blocks; i++, b += 210, y += 256) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const float d = half_to_float(b + 208);
        float ds[16];
        for (int j = 0; j < 16; j++)
            ds[j] = d * (float)sc[j];
        /* each half of 128 values: bytes l of ql (low nibbles, then high) and of qh
           (bits 0-1, 2-3, 4-5, 6-7) hold values l, l + 32, l + 64, l + 96; 16 values
           share a scale */
        for (int g = 0; g < 2; g++) {
            const uint8_t *lo = ql + 64 * g, *hi = qh + 32 * g;
            float *yg = y + 128 * g;
            for (int h = 0; h < 2; h++) {
                const float s0 = ds[8 * g + h], s1 = ds[8 * g + 2 + h], s2 = ds[8 * g + 4 + h], s3 = ds[8 * g + 6 + h];
                for (int l = 16 * h; l < 16 * h + 16; l++) {
                    yg[l] = s0 * (float)((int)((lo[l] & 0x0f) | ((hi[l] & 0x03) << 4)) - 32);
                    yg[l + 32] = s1 * (float)((int)((lo[l + 32] & 0x0f) | (((hi[l] >> 2) & 0x03) << 4)) - 32);
                    yg[l + 64] = s2 * (float)((int)((lo[l] >> 4) | (((hi[l] >> 4) & 0x03) << 4)) - 32);
                    yg[l + 96] = s3 * (float)((int)((lo[l + 32] >> 4) | (((hi[l] >> 6) & 0x03) << 4)) - 32);
                }
            }
        }
    }
}

typedef void (*block_decoder)(const uint8_t *, float *, Py_ssize_t);

#ifdef HERITAGE_X86
#define AVX2_OR(name) (use_avx2 ? name##_avx2 : name)
#else
#define AVX2_OR(name) (name)
#endif

static int
block_layout(int type, block_decoder *decode, Py_ssize_t *values, Py_ssize_t *bytes)
{
    switch (type) {
    case GGML_Q8_0: *decode = decode_q8_0; *values = 32; *bytes = 34; return 1;
    case GGML_Q4_0: *decode = AVX2_OR(decode_q4_0); *values = 32; *bytes = 18; return 1;
    case GGML_Q4_1: *decode = AVX2_OR(decode_q4_1); *values = 32; *bytes = 20; return 1;
    case GGML_Q5_0: *decode = AVX2_OR(decode_q5_0); *values = 32; *bytes = 22; return 1;
    case GGML_Q5_1: *decode = AVX2_OR(decode_q5_1); *values = 32; *bytes = 24; return 1;
    case GGML_Q4_K: *decode = AVX2_OR(decode_q4_k); *values = 256; *bytes = 144; return 1;
    case GGML_Q6_K: *decode = decode_q6_k; *values = 256; *bytes = 210; return 1;
    default: return 0;
    }
}

/* dequantize(type, blocks, out): whole blocks of GGML type `type` (its number) decoded
   into the float32 buffer `out`, which holds exactly their values. */
static PyObject *
dequantize(PyObject *self, PyObject *args)
{
    (void)self;
    int type;
    PyObject *src, *dst;
    Py_buffer in, out;
    block_decoder decode;
    Py_ssize_t values, bytes;
    if (!PyArg_ParseTuple(args, "iOO", &type, &src, &dst))
        return NULL;
    if (!block_layout(type, &decode, &values, &bytes))
        return PyErr_Format(PyExc_ValueError, "no compiled decoder for GGML type %d", type);
    if (PyObject_GetBuffer(src, &in, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (float32_buffer(dst, &out, 1) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    Py_ssize_t length = in.len, count = out.len / 4, blocks = length / bytes;
    int whole = length % bytes == 0 && count == blocks * values;
    if (whole) {
        Py_BEGIN_ALLOW_THREADS
        decode((const uint8_t *)in.buf, (float *)out.buf, blocks);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    if (!whole)
        return PyErr_Format(PyExc_ValueError, "%zd bytes are not whole blocks of type %d for %zd values",
                            length, type, count);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ GGUF strings */

/* skip_strings(buffer, pos, count) -> position after `count` GGUF strings (a little-endian
   uint64 length, then that many bytes) starting at `pos`, or -1 when they run past the
   buffer's end. */
static PyObject *
skip_strings(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer view;
    Py_ssize_t pos;
    unsigned long long count;
    if (!PyArg_ParseTuple(args, "y*nK", &view, &pos, &count))
        return NULL;
    const unsigned char *buf = (const unsigned char *)view.buf;
    uint64_t size = (uint64_t)view.len, at = pos < 0 ? UINT64_MAX : (uint64_t)pos;
    int ok = at <= size;
    Py_BEGIN_ALLOW_THREADS
    for (; ok && count; count--) {
        uint64_t length;
        if (size - at < 8) {
            ok = 0;
            break;
        }
        memcpy(&length, buf + at, 8); /* GGUF is little-endian; so is every host we build for */
        at += 8;
        if (length > size - at) {
            ok = 0;
            break;
        }
        at += length;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyLong_FromLongLong(ok ? (long long)at : -1LL);
}

/* ------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"power_sums", power_sums, METH_O,
     "power_sums(values) -> (sum x, sum x^2, sum x^3, sum x^4) of a float32 buffer, in float64."},
    {"to_f16", to_f16, METH_VARARGS, "to_f16(values, out): float32 -> float16 bits into a uint16 buffer."},
    {"to_bf16", to_bf16, METH_VARARGS, "to_bf16(values, out): float32 -> bfloat16 bits into a uint16 buffer."},
    {"dequantize", dequantize, METH_VARARGS,
     "dequantize(type, blocks, out): GGML blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K) into a float32 buffer."},
    {"skip_strings", skip_strings, METH_VARARGS,
     "skip_strings(buffer, pos, count) -> the position after count GGUF strings, or -1 past the end."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", NULL, -1, methods, NULL, NULL, NULL, NULL};

/* Raised whenever an entry point is added or changes: heritage/reading/kernels.py uses a
   module of another version (a build older than the source) as if none were built. */
#define KERNELS_VERSION 1

PyMODINIT_FUNC
PyInit__kernels(void)
{
    detect_cpu();
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "VERSION", KERNELS_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
