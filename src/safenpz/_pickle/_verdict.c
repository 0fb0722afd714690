/* The compiled pre-check of pickle streams (see _prescan.py): an
 * accept-only oracle.
 *
 * check(data, max_depth, max_items, encoding) returns 1 only when it has
 * proven that the strict scan (safenpz.scan_pickle with these limits and this
 * encoding; 0 = "latin1", 1 = "bytes", 2 = "ASCII") passes, and 0 ("not
 * proven") for everything else. It never refuses and never explains: the
 * Python scan does that. After a 1 the loader skips the scan, so every rule
 * below errs on the side of 0.
 *
 * One pass, opcode by opcode, over a closed subset of pickle, on an abstract
 * stack of small tagged records (no object is built, nothing imported or
 * called). Every read is bounds-checked against the length, there is no
 * recursion, and memory is a small constant times the stream length (the
 * stack, the memo and the tuple pool each hold at most one record per opcode
 * executed; the memo array is bounded by 4 * entries + 1024 slots), and the
 * stack and the pool at most MAX_STACK and MAX_POOL records (24 MiB each:
 * beyond, 0). The pure C part runs without the GIL (the buffer stays held).
 *
 * The subset, and why each rule is sound (the scan refuses nothing here):
 *
 * - Opcodes: the literals (BININT, BININT1, BININT2, LONG1 of at most 8
 *   bytes, BINFLOAT, NONE, NEWTRUE, NEWFALSE, *BINUNICODE*, *BINBYTES*,
 *   SHORT_BINSTRING, BINSTRING), protocol 0 text literals in canonical forms
 *   the C unpickler surely accepts (INT, LONG, FLOAT, STRING, UNICODE: see
 *   the readers below), MARK, the container opcodes (EMPTY_*, LIST, DICT,
 *   TUPLE*, APPEND(S), SETITEM(S)), the memo opcodes, GLOBAL, STACK_GLOBAL,
 *   REDUCE, BUILD, PROTO (first opcode only, 2..5), FRAME (protocol >= 4,
 *   only where no frame is open, length >= 1 and within the data; no opcode
 *   crosses a frame's end) and STOP (the very last byte, one value on the
 *   stack, no MARK). Every other opcode (sets, DUP, POP, POP_MARK, EXT*,
 *   PERSID, INST, OBJ, NEWOBJ*, buffers, LONG4, ...) gives 0.
 * - Text: *BINUNICODE* must be UTF-8 as CPython's surrogatepass decoder takes
 *   it; Python 2 strings are text (latin1, or ASCII with every byte < 0x80)
 *   or bytes, as the load's encoding makes them.
 * - Containers: APPEND(S) only onto a list, SETITEM(S) only onto a dict, in
 *   whole pairs, with keys that cannot collide in a hash table (text, bytes,
 *   ints below 2**31 in absolute value, None, bools: at most two distinct
 *   such keys share a hash), never an empty MARK batch. A container is never
 *   read back through the memo (GET of a list, dict, tuple or array gives
 *   0), and there is no DUP: every container has exactly one holder, so the
 *   result is a tree (no cycle, no sharing) whose nesting is the height
 *   recorded here.
 * - Limits, with a margin: open MARKs and every record's height stay within
 *   max_depth - 2; opcodes executed * 2 stay within max_items (every count
 *   the scan makes -- containers, values of the final walk, hashed keys --
 *   is at most one per opcode).
 * - Memo: an index is at most 4 * entries + 1024 and below len - 1; a PUT
 *   never overwrites, a GET reads only an entry set before.
 * - Globals (GLOBAL, or STACK_GLOBAL of two UTF-8 text literals): only
 *   numpy.core/_core.multiarray._reconstruct and .scalar, numpy.ndarray,
 *   numpy.dtype, _codecs.encode (all in safenpz's SAFE_GLOBALS), each only
 *   as the callable of REDUCE in NumPy's canonical forms (ndarray: only as
 *   _reconstruct's first argument):
 *     _codecs.encode(latin-1 text, 'latin1') -> bytes;
 *     _reconstruct(ndarray, (0,), 'b' or b'b') -> an array to build, then
 *       BUILD (1, shape, built dtype, bool or 0/1, data): shape a tuple of
 *       at most 32 ints >= 0 whose product is addressable; object dtype:
 *       data a list of exactly prod(shape) items; numeric dtype: data
 *       bytes (or latin-1 text) of exactly prod(shape) * itemsize bytes;
 *     dtype(code, False|0, True|1) with code O8 or a plain numeric code,
 *       then BUILD (3, endian, None, None, None, -1, -1, flags): O8 with
 *       '|' and 63, numeric with '<'/'>' ('|' for one-byte types) and 0;
 *       a dtype is built once, and used only once built;
 *     scalar(built numeric dtype, exactly itemsize bytes) -> a NumPy scalar;
 *     numpy.core/_core.numeric._frombuffer(BYTEARRAY8 buffer, built numeric
 *       dtype, shape, 'C' or 'F') with exactly prod(shape) * itemsize bytes
 *       -> an array (protocol 5; the buffer is nothing else, never read
 *       back through the memo).
 *   An array is a value; globals, arrays and dtypes not yet built, and
 *   dtypes are not (a tuple holding one is only an argument or a state).
 *
 * Under the sanitizers, by hand, after any change here (from the checkout):
 *   CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
 *   LDFLAGS="-fsanitize=address,undefined" python setup.py build_ext --inplace --force
 *   LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" \
 *   ASAN_OPTIONS=detect_leaks=0 python -m pytest tests/internal/test_prescan.py
 *   python setup.py build_ext --inplace --force     (the normal build again)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum {
    K_FREE = 0, /* memo: unset */
    K_MARK,
    K_NONE,
    K_BOOL,
    K_INT,
    K_BIGINT,
    K_FLOAT,
    K_TEXT,
    K_BYTES,
    K_NPSCALAR,
    K_LIST,
    K_DICT,
    K_TUPLE,
    K_ARRAY, /* last value kind */
    K_GLOBAL,
    K_ARRPEND,
    K_DTYPE,
    K_BARR, /* BYTEARRAY8: only the buffer of _frombuffer */
    K_UNGET /* memo: a container, never read back */
};

#define F_KEY 1    /* may be a dict key */
#define F_TAINT 2  /* a tuple holding a non-value: only an argument/state */
#define F_LATIN1 4 /* text whose code points are all <= 0xFF */
#define F_PY2 8    /* text from a Python 2 string */
#define F_BLOB 16  /* protocol 0 text beyond the scan's BLOB_BYTES: it knows
                    * only its type (never bytes, nor latin-1) */

/* _literals.BLOB_BYTES: the scan keeps a protocol 0 STRING or UNICODE whose
 * opcode and line take more than this as a Blob of unknown content */
#define BLOB_BYTES ((size_t)1 << 16)

typedef struct {
    uint8_t kind, flags;
    uint16_t sub; /* global id; dtype: unused */
    uint32_t height;
    /* INT/BOOL: value; TEXT/BYTES: offset of the exact ASCII (bytes: raw)
     * content or -1; LIST/DICT: item count; TUPLE: pool offset or -1;
     * DTYPE: slot */
    int64_t a;
    /* TEXT: code points; BYTES: length; TUPLE: item count */
    int64_t b;
} Rec;

enum { G_RECON = 1, G_SCALAR, G_NDARRAY, G_DTYPE, G_ENCODE, G_FROMBUF };

typedef struct {
    const char *s;
    uint8_t size, obj;
} DtCode;

static const DtCode DT[] = {
    {"O8", 8, 1}, {"b1", 1, 0}, {"i1", 1, 0}, {"u1", 1, 0}, {"i2", 2, 0},
    {"u2", 2, 0}, {"i4", 4, 0}, {"u4", 4, 0}, {"i8", 8, 0}, {"u8", 8, 0},
    {"f2", 2, 0}, {"f4", 4, 0}, {"f8", 8, 0}, {"c8", 8, 0}, {"c16", 16, 0},
};
#define N_DT ((int)(sizeof(DT) / sizeof(DT[0])))

typedef struct {
    uint8_t code; /* index into DT */
    uint8_t built;
    uint8_t order; /* the built dtype's byte order: '<', '>' or '|' */
} Slot;

#define MAX_TUPLE_KEEP 64 /* tuples up to this size keep their items */
/* Most records on the stack, and in the tuple pool: 24 MiB each. Beyond,
 * 0 (a flood of literals or small tuples would otherwise cost 24 bytes of
 * memory per byte of stream; the scan keeps such runs as one item). */
#define MAX_STACK ((size_t)1 << 20)
#define MAX_POOL ((size_t)1 << 20)
#define MAX_NDIM 32

typedef struct {
    const unsigned char *d;
    size_t len, pos;
    Rec *st;
    size_t sp, stcap;
    size_t *marks;
    size_t nmarks, mkcap;
    Rec *memo;
    size_t memocap, entries;
    Rec *pool;
    size_t pn, pcap;
    Slot *slots;
    size_t nslots, slcap;
    int64_t maxh;     /* max_depth - 2 */
    int64_t maxops;   /* max_items / 2 */
    int64_t ops;      /* opcodes executed */
    int encoding;     /* 0 latin1, 1 bytes, 2 ASCII */
    int proto;
    /* report(): the facts recorded when `recording` (else untouched) */
    int recording;
    int inplain;              /* the last opcode was a plain one */
    size_t at;                /* offset of the opcode being run */
    const unsigned char *plain; /* 256 flags: the scan's plain codes */
    int64_t plain_runs;       /* maximal runs of plain opcodes */
    int64_t cnt[256];         /* opcodes executed, by code */
    int64_t *globs;           /* 6 per global: at, code, mod off/len, name off/len */
    size_t nglobs, gcap;
    int64_t *shp;             /* per array: slot, ndim, dims */
    size_t nshp, shcap;
} V;

static int
grow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t ncap;
    void *np;
    if (need <= *cap)
        return 1;
    ncap = *cap ? *cap : 64;
    while (ncap < need) {
        if (ncap > ((size_t)PY_SSIZE_T_MAX / 2) / elem)
            return 0;
        ncap *= 2;
    }
    np = PyMem_RawRealloc(*p, ncap * elem);
    if (np == NULL)
        return 0;
    *p = np;
    *cap = ncap;
    return 1;
}

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

static NOINLINE int
push_slow(V *v, Rec r)
{
    if (v->sp >= MAX_STACK)
        return 0;
    if (!grow((void **)&v->st, &v->stcap, v->sp + 1, sizeof(Rec)))
        return 0;
    v->st[v->sp++] = r;
    return 1;
}

static inline int
push(V *v, Rec r)
{
    if (v->sp == v->stcap)
        return push_slow(v, r);
    v->st[v->sp++] = r;
    return 1;
}

/* report(): one opcode executed (counts, and runs of plain ones) */
static inline void
note(V *v, unsigned op)
{
    v->cnt[op]++;
    if (v->plain[op]) {
        if (!v->inplain)
            v->plain_runs++;
        v->inplain = 1;
    }
    else
        v->inplain = 0;
}

/* report(): a global named (offsets into the data) */
static int
note_global(V *v, size_t mo, size_t mn, size_t no, size_t nn)
{
    int64_t *g;
    if (!grow((void **)&v->globs, &v->gcap, (v->nglobs + 1) * 6, sizeof(int64_t)))
        return 0;
    g = v->globs + v->nglobs * 6;
    g[0] = (int64_t)v->at;
    g[1] = v->d[v->at];
    g[2] = (int64_t)mo;
    g[3] = (int64_t)mn;
    g[4] = (int64_t)no;
    g[5] = (int64_t)nn;
    v->nglobs++;
    return 1;
}

static Rec
rec(int kind, int flags, int64_t a, int64_t b)
{
    Rec r;
    r.kind = (uint8_t)kind;
    r.flags = (uint8_t)flags;
    r.sub = 0;
    r.height = 0;
    r.a = a;
    r.b = b;
    return r;
}

static int
is_value(const Rec *r)
{
    return r->kind >= K_NONE && r->kind <= K_ARRAY && !(r->flags & F_TAINT);
}

/* the content of a TEXT or BYTES record equals the ASCII string s */
static int
same(const V *v, const Rec *r, const char *s)
{
    size_t n = strlen(s);
    if ((r->kind != K_TEXT && r->kind != K_BYTES) || r->a < 0 || (uint64_t)r->b != n)
        return 0;
    return memcmp(v->d + r->a, s, n) == 0;
}

/* ---------------------------------------------------------------- text */

/* UTF-8 as CPython's decoder with "surrogatepass" takes it. Sets the code
 * point count, whether all are <= 0xFF, whether all are ASCII. */
static int
utf8_ok(const unsigned char *s, size_t n, int64_t *cps, int *latin1, int *ascii)
{
    size_t i = 0, cont = 0;
    int lat = 1, asc = 1;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (!(w & 0x8080808080808080ULL)) {
                    i += 8;
                    continue;
                }
            }
            i++;
            continue;
        }
        asc = 0;
        if (c >= 0xC2 && c <= 0xDF) {
            if (n - i < 2 || (s[i + 1] & 0xC0) != 0x80)
                return 0;
            if (c >= 0xC4)
                lat = 0;
            i += 2;
            cont += 1;
        }
        else if (c >= 0xE0 && c <= 0xEF) {
            unsigned c1;
            if (n - i < 3)
                return 0;
            c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80)
                return 0;
            if (c == 0xE0 && c1 < 0xA0)
                return 0; /* overlong */
            /* 0xED 0xA0..0xBF: a surrogate, which surrogatepass takes */
            lat = 0;
            i += 3;
            cont += 2;
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            unsigned c1;
            if (n - i < 4)
                return 0;
            c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 ||
                (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
                return 0;
            lat = 0;
            i += 4;
            cont += 3;
        }
        else
            return 0;
    }
    *cps = (int64_t)(n - cont);
    *latin1 = lat;
    *ascii = asc;
    return 1;
}

static int
all_ascii(const unsigned char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ULL)
            return 0;
    }
    for (; i < n; i++)
        if (s[i] & 0x80)
            return 0;
    return 1;
}

static int
push_utf8(V *v, size_t off, size_t n)
{
    int64_t cps;
    int lat, asc;
    if (!utf8_ok(v->d + off, n, &cps, &lat, &asc))
        return 0;
    return push(v, rec(K_TEXT, F_KEY | (lat ? F_LATIN1 : 0), asc ? (int64_t)off : -1, cps));
}

/* a Python 2 string: what the load's encoding makes of it */
static int
push_py2(V *v, size_t off, size_t n)
{
    int asc;
    if (v->encoding == 1)
        return push(v, rec(K_BYTES, F_KEY, (int64_t)off, (int64_t)n));
    asc = all_ascii(v->d + off, n);
    if (v->encoding == 2 && !asc)
        return 0;
    return push(v, rec(K_TEXT, F_KEY | F_LATIN1 | F_PY2, asc ? (int64_t)off : -1, (int64_t)n));
}

/* ------------------------------------------------------- text literals */

static int
is_digit(unsigned c)
{
    return c >= '0' && c <= '9';
}

/* -?(0|[1-9][0-9]{0,maxd-1}) at s[*i..n); *i moves past it */
static int
int_text(const unsigned char *s, size_t n, size_t *i, size_t maxd, int64_t *val)
{
    int neg = 0;
    size_t k = *i, nd = 0;
    int64_t x = 0;
    if (k < n && s[k] == '-') {
        neg = 1;
        k++;
    }
    if (k >= n || !is_digit(s[k]))
        return 0;
    if (s[k] == '0') {
        k++;
        nd = 1;
    }
    else {
        while (k < n && is_digit(s[k])) {
            if (++nd > maxd)
                return 0;
            if (nd <= 18)
                x = x * 10 + (s[k] - '0');
            k++;
        }
    }
    *i = k;
    if (val)
        *val = neg ? -x : x;
    return 1;
}

/* the line at v->pos (without its newline): start and length; moves on */
static int
line(V *v, size_t *start, size_t *n)
{
    const unsigned char *nl;
    if (v->pos >= v->len)
        return 0;
    nl = memchr(v->d + v->pos, '\n', v->len - v->pos);
    if (nl == NULL)
        return 0;
    *start = v->pos;
    *n = (size_t)(nl - (v->d + v->pos));
    v->pos += *n + 1;
    return 1;
}

static int
op_int(V *v)
{
    size_t s, n, i = 0;
    int64_t x;
    const unsigned char *p;
    if (!line(v, &s, &n))
        return 0;
    p = v->d + s;
    if (n == 2 && p[0] == '0' && (p[1] == '0' || p[1] == '1'))
        return push(v, rec(K_BOOL, F_KEY, p[1] == '1', 0));
    if (!int_text(p, n, &i, 18, &x) || i != n)
        return 0;
    return push(v, rec(K_INT, (x < 2147483648LL && x > -2147483648LL) ? F_KEY : 0, x, 0));
}

static int
op_long(V *v)
{
    size_t s, n, i = 0;
    const unsigned char *p;
    if (!line(v, &s, &n))
        return 0;
    p = v->d + s;
    if (!int_text(p, n, &i, 1000, NULL) || i + 1 != n || p[i] != 'L')
        return 0;
    return push(v, rec(K_BIGINT, 0, 0, 0));
}

static int
op_float(V *v)
{
    size_t s, n, i = 0, before = 0;
    const unsigned char *p;
    int64_t e = 0;
    if (!line(v, &s, &n))
        return 0;
    p = v->d + s;
    if (i < n && p[i] == '-')
        i++;
    while (i < n && is_digit(p[i])) {
        before++;
        i++;
    }
    if (before == 0 || before > 300)
        return 0;
    if (i < n && p[i] == '.') {
        i++;
        while (i < n && is_digit(p[i]))
            i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        int neg = 0, nd = 0;
        i++;
        if (i < n && (p[i] == '-' || p[i] == '+')) {
            neg = p[i] == '-';
            i++;
        }
        while (i < n && is_digit(p[i])) {
            if (++nd > 3)
                return 0;
            e = e * 10 + (p[i] - '0');
            i++;
        }
        if (nd == 0)
            return 0;
        if (neg)
            e = -e;
    }
    if (i != n)
        return 0;
    e += (int64_t)before;
    if (e > 300 || e < -300)
        return 0;
    return push(v, rec(K_FLOAT, 0, 0, 0));
}

static int
hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* STRING: quoted with the same quote at both ends, no bare quote of that
 * kind inside; the only escapes Python 2's repr() writes: \\ \' \" \n \t
 * \r \xHH (CPython's escape decoder takes them without a warning) */
/* the text just pushed from a protocol 0 line of n bytes: a Blob to the
 * scan when the line is long */
static int
blob_if_long(V *v, size_t n)
{
    if (n + 1 > BLOB_BYTES) {
        Rec *r = &v->st[v->sp - 1];
        r->flags = (uint8_t)((r->flags | F_BLOB) & ~F_LATIN1);
    }
    return 1;
}

static int
op_string(V *v)
{
    size_t s, n, k, out = 0;
    const unsigned char *p;
    unsigned q;
    int asc = 1, esc = 0;
    if (!line(v, &s, &n))
        return 0;
    p = v->d + s;
    if (n < 2)
        return 0;
    q = p[0];
    if ((q != '\'' && q != '"') || p[n - 1] != q)
        return 0;
    for (k = 1; k + 1 < n; out++) {
        unsigned c = p[k];
        if (c == q)
            return 0;
        if (c != '\\') {
            if (c & 0x80)
                asc = 0;
            k++;
            continue;
        }
        esc = 1;
        if (k + 2 >= n)
            return 0; /* a backslash before the closing quote */
        c = p[k + 1];
        if (c == '\\' || c == '\'' || c == '"' || c == 'n' || c == 't' || c == 'r')
            k += 2;
        else if (c == 'x') {
            int h1, h2;
            if (k + 4 >= n)
                return 0;
            h1 = hexval(p[k + 2]);
            h2 = hexval(p[k + 3]);
            if (h1 < 0 || h2 < 0)
                return 0;
            if (h1 >= 8)
                asc = 0;
            k += 4;
        }
        else
            return 0;
    }
    if (!esc)
        return push_py2(v, s + 1, n - 2) && blob_if_long(v, n);
    /* escapes: the length and ASCII-ness of the decoded bytes, no content */
    if (v->encoding == 1)
        return push(v, rec(K_BYTES, F_KEY, -1, (int64_t)out)) && blob_if_long(v, n);
    if (v->encoding == 2 && !asc)
        return 0;
    return push(v, rec(K_TEXT, F_KEY | F_LATIN1 | F_PY2, -1, (int64_t)out)) &&
           blob_if_long(v, n);
}

/* UNICODE: raw-unicode-escape where every backslash starts \uXXXX or
 * \UXXXXXXXX (<= 0x10FFFF); other bytes are latin-1 code points */
static int
op_unicode(V *v)
{
    size_t s, n, k = 0;
    const unsigned char *p;
    int64_t cps = 0;
    int lat = 1, asc = 1;
    if (!line(v, &s, &n))
        return 0;
    p = v->d + s;
    while (k < n) {
        if (p[k] == '\\') {
            size_t w, j;
            uint32_t c = 0;
            asc = 0;
            if (n - k < 2)
                return 0;
            if (p[k + 1] == 'u')
                w = 4;
            else if (p[k + 1] == 'U')
                w = 8;
            else
                return 0;
            if (n - k - 2 < w)
                return 0;
            for (j = 0; j < w; j++) {
                int h = hexval(p[k + 2 + j]);
                if (h < 0)
                    return 0;
                c = (c << 4) | (uint32_t)h;
            }
            if (c > 0x10FFFF)
                return 0;
            if (c > 0xFF)
                lat = 0;
            k += 2 + w;
        }
        else {
            if (p[k] & 0x80)
                asc = 0;
            k++;
        }
        cps++;
    }
    return push(v, rec(K_TEXT, F_KEY | (lat ? F_LATIN1 : 0), asc ? (int64_t)s : -1, cps)) &&
           blob_if_long(v, n);
}

/* the decimal memo index of PUT/GET */
static int
memo_line(V *v, int64_t *idx)
{
    size_t s, n, i = 0;
    const unsigned char *p;
    if (!line(v, &s, &n))
        return 0;
    p = v->d + s;
    if (n == 0 || p[0] == '-')
        return 0;
    if (!int_text(p, n, &i, 18, idx) || i != n)
        return 0;
    return 1;
}

/* ------------------------------------------------------------- globals */

static int
global_id(const unsigned char *m, size_t mn, const unsigned char *nm, size_t nn)
{
#define EQ(p, n, lit) ((n) == sizeof(lit) - 1 && memcmp((p), (lit), (n)) == 0)
    if (EQ(m, mn, "numpy.core.multiarray") || EQ(m, mn, "numpy._core.multiarray")) {
        if (EQ(nm, nn, "_reconstruct"))
            return G_RECON;
        if (EQ(nm, nn, "scalar"))
            return G_SCALAR;
        return 0;
    }
    if (EQ(m, mn, "numpy")) {
        if (EQ(nm, nn, "ndarray"))
            return G_NDARRAY;
        if (EQ(nm, nn, "dtype"))
            return G_DTYPE;
        return 0;
    }
    if (EQ(m, mn, "numpy.core.numeric") || EQ(m, mn, "numpy._core.numeric"))
        return EQ(nm, nn, "_frombuffer") ? G_FROMBUF : 0;
    if (EQ(m, mn, "_codecs") && EQ(nm, nn, "encode"))
        return G_ENCODE;
    return 0;
#undef EQ
}

static int
printable(const unsigned char *p, size_t n)
{
    size_t k;
    if (n == 0)
        return 0;
    for (k = 0; k < n; k++)
        if (p[k] < 0x21 || p[k] > 0x7E)
            return 0;
    return 1;
}

static int
push_global(V *v, int g)
{
    Rec r = rec(K_GLOBAL, 0, 0, 0);
    if (!g)
        return 0;
    r.sub = (uint16_t)g;
    r.height = 1; /* the scan's containment graph counts a global as a node */
    return push(v, r);
}

static int
op_global(V *v)
{
    size_t ms, mn, ns, nn;
    if (!line(v, &ms, &mn) || !line(v, &ns, &nn))
        return 0;
    if (!printable(v->d + ms, mn) || !printable(v->d + ns, nn))
        return 0;
    if (v->recording && !note_global(v, ms, mn, ns, nn))
        return 0;
    return push_global(v, global_id(v->d + ms, mn, v->d + ns, nn));
}

static int
op_stack_global(V *v)
{
    Rec *m, *nm;
    if (v->sp < 2)
        return 0;
    m = &v->st[v->sp - 2];
    nm = &v->st[v->sp - 1];
    if (m->kind != K_TEXT || nm->kind != K_TEXT || (m->flags & F_PY2) ||
        (nm->flags & F_PY2) || m->a < 0 || nm->a < 0)
        return 0;
    if (v->recording &&
        !note_global(v, (size_t)m->a, (size_t)m->b, (size_t)nm->a, (size_t)nm->b))
        return 0;
    v->sp -= 2;
    return push_global(
        v, global_id(v->d + m->a, (size_t)m->b, v->d + nm->a, (size_t)nm->b));
}

/* ---------------------------------------------------------- containers */

static int
height_ok(V *v, int64_t h)
{
    return h <= v->maxh;
}

/* index of the innermost MARK, with the items above it */
static int
top_mark(V *v, size_t *k)
{
    if (v->nmarks == 0)
        return 0;
    *k = v->marks[v->nmarks - 1];
    return 1;
}

static void
drop_mark(V *v, size_t k)
{
    v->sp = k;
    v->nmarks--;
}

/* the last mark is at or below `from` (no MARK among the top items) */
static int
no_mark_from(V *v, size_t from)
{
    return v->nmarks == 0 || v->marks[v->nmarks - 1] < from;
}

static int
make_tuple(V *v, size_t from)
{
    size_t n = v->sp - from, i;
    int64_t h = 0;
    int flags = 0;
    Rec t;
    for (i = from; i < v->sp; i++) {
        Rec *r = &v->st[i];
        if (r->kind == K_MARK)
            return 0;
        if (!is_value(r))
            flags |= F_TAINT;
        if ((int64_t)r->height > h)
            h = r->height;
    }
    h += 1;
    if (!height_ok(v, h))
        return 0;
    t = rec(K_TUPLE, flags, -1, (int64_t)n);
    t.height = (uint32_t)h;
    if (n == 0)
        t.a = 0; /* kept: nothing to keep */
    else if (n <= MAX_TUPLE_KEEP) {
        if (v->pn + n > MAX_POOL)
            return 0;
        if (!grow((void **)&v->pool, &v->pcap, v->pn + n, sizeof(Rec)))
            return 0;
        memcpy(v->pool + v->pn, v->st + from, n * sizeof(Rec));
        t.a = (int64_t)v->pn;
        v->pn += n;
    }
    v->sp = from;
    return push(v, t);
}

/* A tuple put into a container, or consumed by REDUCE or BUILD, is never
 * looked into again: its pool space is taken back if it is the pool's last
 * (nothing else refers to it: a tuple has one holder, the memo keeps no
 * tuple). */
static void
reclaim(V *v, const Rec *t)
{
    if (t->kind == K_TUPLE && t->a >= 0 && t->b > 0 && (size_t)(t->a + t->b) == v->pn)
        v->pn = (size_t)t->a;
}

/* add the items st[from..sp) to the list or dict `c` (in place) */
static int
fill(V *v, Rec *c, size_t from)
{
    size_t i, n = v->sp - from;
    uint32_t h = 0; /* the tallest item */
    const Rec *it = v->st + from;
    if (c->kind == K_DICT) {
        if (n % 2)
            return 0;
        for (i = 0; i < n; i += 2) {
            if (!(it[i].flags & F_KEY) || !is_value(&it[i + 1]))
                return 0;
            if (it[i + 1].height > h)
                h = it[i + 1].height; /* keys are leaves: height 0 */
        }
    }
    else {
        for (i = 0; i < n; i++) {
            if (!is_value(&it[i]))
                return 0;
            if (it[i].height > h)
                h = it[i].height;
        }
    }
    if ((int64_t)h + 1 > (int64_t)c->height) {
        if (!height_ok(v, (int64_t)h + 1))
            return 0;
        c->height = h + 1;
    }
    c->a += (int64_t)n;
    for (i = n; i-- > 0;)
        reclaim(v, &it[i]);
    v->sp = from;
    return 1;
}

static int
op_new_from_mark(V *v, int kind)
{
    size_t k;
    Rec c = rec(kind, 0, 0, 0);
    if (!top_mark(v, &k))
        return 0;
    c.height = 1;
    if (!height_ok(v, 1))
        return 0;
    if (!fill(v, &c, k + 1))
        return 0;
    drop_mark(v, k);
    return push(v, c);
}

static int
op_items_from_mark(V *v, int kind)
{
    size_t k;
    Rec *c;
    if (!top_mark(v, &k) || k == 0 || v->sp == k + 1)
        return 0; /* no container, or an empty batch */
    c = &v->st[k - 1];
    if (c->kind != kind)
        return 0;
    if (!fill(v, c, k + 1))
        return 0;
    drop_mark(v, k);
    return 1;
}

static int
op_item(V *v, int kind, size_t nitems)
{
    Rec *c;
    if (v->sp < nitems + 1 || !no_mark_from(v, v->sp - nitems - 1))
        return 0;
    c = &v->st[v->sp - nitems - 1];
    if (c->kind != kind)
        return 0;
    return fill(v, c, v->sp - nitems);
}

/* ---------------------------------------------------------------- memo */

static int
memo_put(V *v, int64_t idx)
{
    Rec r;
    if (idx < 0 || (uint64_t)idx > 4 * (uint64_t)v->entries + 1024 ||
        (uint64_t)idx + 1 >= (uint64_t)v->len)
        return 0;
    if (v->sp == 0 || v->st[v->sp - 1].kind == K_MARK)
        return 0;
    if ((size_t)idx >= v->memocap) {
        size_t old = v->memocap;
        if (!grow((void **)&v->memo, &v->memocap, (size_t)idx + 1, sizeof(Rec)))
            return 0;
        memset(v->memo + old, 0, (v->memocap - old) * sizeof(Rec));
    }
    if (v->memo[idx].kind != K_FREE)
        return 0;
    r = v->st[v->sp - 1];
    switch (r.kind) {
    case K_LIST:
    case K_DICT:
    case K_TUPLE:
    case K_ARRAY:
    case K_ARRPEND:
    case K_BARR:
        r = rec(K_UNGET, 0, 0, 0);
        break;
    default:
        break;
    }
    v->memo[idx] = r;
    v->entries++;
    return 1;
}

static int
memo_get(V *v, int64_t idx)
{
    Rec r;
    if (idx < 0 || (uint64_t)idx >= (uint64_t)v->memocap)
        return 0;
    r = v->memo[idx];
    if (r.kind == K_FREE || r.kind == K_UNGET)
        return 0;
    return push(v, r);
}

/* ------------------------------------------------------ REDUCE / BUILD */

static const Rec *
kids(V *v, const Rec *t, int64_t n)
{
    static const Rec none[1];
    if (t->kind != K_TUPLE || t->b != n || t->a < 0)
        return NULL;
    if (n == 0)
        return none; /* never read */
    return v->pool + t->a;
}

static int
int_is(const Rec *r, int64_t x)
{
    return r->kind == K_INT && r->a == x;
}

static int
flag_is(const Rec *r, int64_t x)
{
    return (r->kind == K_INT || r->kind == K_BOOL) && r->a == x;
}

/* bytes, or text numpy takes as bytes (latin-1): the byte count, or -1 */
static int64_t
byte_len(const Rec *r)
{
    if (r->flags & F_BLOB)
        return -1;
    if (r->kind == K_BYTES)
        return r->b;
    if (r->kind == K_TEXT && (r->flags & F_LATIN1))
        return r->b;
    return -1;
}

static const DtCode *
built_dtype(V *v, const Rec *r)
{
    Slot *s;
    if (r->kind != K_DTYPE || r->a < 0 || (size_t)r->a >= v->nslots)
        return NULL;
    s = &v->slots[r->a];
    return s->built ? &DT[s->code] : NULL;
}

static int shape_prod(V *v, const Rec *shape, int64_t *prod);

/* report(): an array's (or with shape NULL a NumPy scalar's) dtype slot and
 * shape, kept in v->shp; the record's a is where */
static int
note_array(V *v, Rec *out, const Rec *dtype, const Rec *shape)
{
    const Rec *sh = NULL;
    int64_t i, nd = shape ? shape->b : 0;
    if (!v->recording)
        return 1;
    if (shape && (sh = kids(v, shape, nd)) == NULL)
        return 0;
    if (!grow((void **)&v->shp, &v->shcap, v->nshp + 2 + (size_t)nd, sizeof(int64_t)))
        return 0;
    out->a = (int64_t)v->nshp;
    v->shp[v->nshp++] = dtype->a;
    v->shp[v->nshp++] = nd;
    for (i = 0; i < nd; i++)
        v->shp[v->nshp++] = sh[i].a;
    return 1;
}

static int
op_reduce(V *v)
{
    Rec *f, *args;
    const Rec *k;
    Rec out;
    if (v->sp < 2 || !no_mark_from(v, v->sp - 2))
        return 0;
    f = &v->st[v->sp - 2];
    args = &v->st[v->sp - 1];
    if (f->kind != K_GLOBAL)
        return 0;
    switch (f->sub) {
    case G_ENCODE:
        if ((k = kids(v, args, 2)) == NULL)
            return 0;
        if (k[0].kind != K_TEXT || !(k[0].flags & F_LATIN1) || k[1].kind != K_TEXT ||
            !same(v, &k[1], "latin1"))
            return 0;
        out = rec(K_BYTES, F_KEY, k[0].a, k[0].b);
        break;
    case G_RECON: {
        const Rec *sh;
        if ((k = kids(v, args, 3)) == NULL)
            return 0;
        if (k[0].kind != K_GLOBAL || k[0].sub != G_NDARRAY)
            return 0;
        if ((sh = kids(v, &k[1], 1)) == NULL || !int_is(&sh[0], 0))
            return 0;
        if (!same(v, &k[2], "b"))
            return 0;
        out = rec(K_ARRPEND, 0, 0, 0);
        break;
    }
    case G_DTYPE: {
        int c;
        if ((k = kids(v, args, 3)) == NULL)
            return 0;
        for (c = 0; c < N_DT; c++)
            if (same(v, &k[0], DT[c].s))
                break;
        if (c == N_DT || !flag_is(&k[1], 0) || !flag_is(&k[2], 1))
            return 0;
        if (!grow((void **)&v->slots, &v->slcap, v->nslots + 1, sizeof(Slot)))
            return 0;
        v->slots[v->nslots].code = (uint8_t)c;
        v->slots[v->nslots].built = 0;
        out = rec(K_DTYPE, 0, (int64_t)v->nslots, 0);
        v->nslots++;
        break;
    }
    case G_FROMBUF: { /* _frombuffer(bytearray, dtype, shape, 'C' or 'F') */
        const DtCode *dt;
        int64_t prod;
        if ((k = kids(v, args, 4)) == NULL || k[0].kind != K_BARR)
            return 0;
        if ((dt = built_dtype(v, &k[1])) == NULL || dt->obj)
            return 0;
        if (!shape_prod(v, &k[2], &prod))
            return 0;
        if (k[3].kind != K_TEXT || !(same(v, &k[3], "C") || same(v, &k[3], "F")))
            return 0;
        if (k[0].b % dt->size != 0 || k[0].b / dt->size != prod)
            return 0;
        out = rec(K_ARRAY, 0, 0, 0);
        out.height = 1;
        if (!note_array(v, &out, &k[1], &k[2]))
            return 0;
        break;
    }
    case G_SCALAR: {
        const DtCode *dt;
        if ((k = kids(v, args, 2)) == NULL)
            return 0;
        if ((dt = built_dtype(v, &k[0])) == NULL || dt->obj)
            return 0;
        if (byte_len(&k[1]) != dt->size)
            return 0;
        out = rec(K_NPSCALAR, 0, 0, 0);
        if (!note_array(v, &out, &k[0], NULL))
            return 0;
        break;
    }
    default:
        return 0;
    }
    /* the scan's containment graph: a REDUCE result holds its callable and
     * its args tuple (a level more than the final walk sees) */
    {
        uint32_t h = (f->height > args->height ? f->height : args->height) + 1;
        if (h > out.height)
            out.height = h;
    }
    if (!height_ok(v, out.height))
        return 0;
    reclaim(v, args);
    v->sp -= 2;
    return push(v, out);
}

static int
build_dtype(V *v, Rec *t, const Rec *state)
{
    const Rec *k = kids(v, state, 8);
    Slot *s;
    const DtCode *dt;
    const char *want = "|";
    if (k == NULL || t->a < 0 || (size_t)t->a >= v->nslots)
        return 0;
    s = &v->slots[t->a];
    if (s->built)
        return 0;
    dt = &DT[s->code];
    if (!int_is(&k[0], 3) || k[2].kind != K_NONE || k[3].kind != K_NONE ||
        k[4].kind != K_NONE || !int_is(&k[5], -1) || !int_is(&k[6], -1))
        return 0;
    if (dt->obj) {
        if (!same(v, &k[1], "|") || !int_is(&k[7], 63))
            return 0;
    }
    else {
        if (!int_is(&k[7], 0))
            return 0;
        if (dt->size == 1)
            want = "|";
        else if (same(v, &k[1], "<"))
            want = "<";
        else
            want = ">";
        if (!same(v, &k[1], want))
            return 0;
    }
    /* the graph: a BUILD target holds its state */
    if (state->height + 1 > t->height)
        t->height = state->height + 1;
    if (!height_ok(v, t->height))
        return 0;
    s->built = 1;
    s->order = dt->obj ? '|' : (uint8_t)want[0];
    return 1;
}

/* a shape: a tuple of at most MAX_NDIM ints >= 0, the product of the
 * non-zero ones at most the stream's length (addressable); *prod: the
 * element count */
static int
shape_prod(V *v, const Rec *shape, int64_t *prod)
{
    const Rec *sh;
    int64_t i, nz = 1;
    *prod = 1;
    if (shape->kind != K_TUPLE || shape->b > MAX_NDIM ||
        (sh = kids(v, shape, shape->b)) == NULL)
        return 0;
    for (i = 0; i < shape->b; i++) {
        if (sh[i].kind != K_INT || sh[i].a < 0 || sh[i].a > (int64_t)v->len)
            return 0;
        if (sh[i].a == 0) {
            *prod = 0;
            continue;
        }
        if (nz > (int64_t)v->len / sh[i].a)
            return 0; /* beyond anything the stream can hold */
        nz *= sh[i].a;
        *prod = *prod ? nz : 0;
    }
    return 1;
}

static int
build_array(V *v, Rec *t, const Rec *state)
{
    const Rec *k = kids(v, state, 5);
    const DtCode *dt;
    int64_t prod;
    /* the graph: the array holds _reconstruct's arguments (its height from
     * REDUCE) and its BUILD state; an object array's items sit three levels
     * below it there */
    uint32_t h = state->height + 1 > t->height ? state->height + 1 : t->height;
    if (k == NULL || !int_is(&k[0], 1))
        return 0;
    if (!shape_prod(v, &k[1], &prod))
        return 0;
    if ((dt = built_dtype(v, &k[2])) == NULL)
        return 0;
    if (!flag_is(&k[3], 0) && !flag_is(&k[3], 1))
        return 0;
    if (dt->obj) {
        if (k[4].kind != K_LIST || k[4].a != prod)
            return 0;
        *t = rec(K_ARRAY, 0, 0, 0);
        t->height = h;
    }
    else {
        if (byte_len(&k[4]) < 0 || byte_len(&k[4]) / dt->size != prod ||
            byte_len(&k[4]) % dt->size != 0)
            return 0;
        *t = rec(K_ARRAY, 0, 0, 0);
        t->height = h;
    }
    return height_ok(v, t->height) && note_array(v, t, &k[2], &k[1]);
}

static int
op_build(V *v)
{
    Rec *t, *state;
    int ok;
    if (v->sp < 2 || !no_mark_from(v, v->sp - 2))
        return 0;
    t = &v->st[v->sp - 2];
    state = &v->st[v->sp - 1];
    if (t->kind == K_DTYPE)
        ok = build_dtype(v, t, state);
    else if (t->kind == K_ARRPEND)
        ok = build_array(v, t, state);
    else
        return 0;
    if (!ok)
        return 0;
    reclaim(v, state);
    v->sp -= 1;
    return 1;
}

/* ---------------------------------------------------------------- loop */

static uint64_t
le(const unsigned char *p, int n)
{
    uint64_t x = 0;
    int i;
    for (i = n - 1; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

#define NEED(n)                                                                \
    do {                                                                       \
        if (v->len - v->pos < (size_t)(n))                                     \
            return 0;                                                          \
    } while (0)

/* a length-prefixed literal: the payload's offset and length */
static int
counted(V *v, int width, size_t *off, size_t *n)
{
    uint64_t x;
    NEED(width);
    x = le(v->d + v->pos, width);
    v->pos += (size_t)width;
    if (x > (uint64_t)(v->len - v->pos))
        return 0;
    *off = v->pos;
    *n = (size_t)x;
    v->pos += (size_t)x;
    return 1;
}

static int
step(V *v, unsigned op)
{
    size_t off, n;
    int64_t idx;
    const unsigned char *p;
    switch (op) {
    case 'K': /* BININT1 */
        NEED(1);
        p = v->d + v->pos++;
        return push(v, rec(K_INT, F_KEY, p[0], 0));
    case 'M': /* BININT2 */
        NEED(2);
        p = v->d + v->pos;
        v->pos += 2;
        return push(v, rec(K_INT, F_KEY, (int64_t)le(p, 2), 0));
    case 'J': /* BININT */
        NEED(4);
        p = v->d + v->pos;
        v->pos += 4;
        idx = (int64_t)(int32_t)(uint32_t)le(p, 4);
        /* -2**31 hashes as any other int, but stay clear of the bound */
        return push(v, rec(K_INT, idx > -2147483647LL - 1 ? F_KEY : 0, idx, 0));
    case 0x8a: { /* LONG1 */
        int64_t x;
        NEED(1);
        n = v->d[v->pos++];
        if (n > 8)
            return 0;
        NEED(n);
        p = v->d + v->pos;
        v->pos += n;
        if (n == 0)
            x = 0;
        else {
            uint64_t u = le(p, (int)n);
            if (n < 8 && (p[n - 1] & 0x80))
                u |= ~(uint64_t)0 << (8 * n);
            x = (int64_t)u;
        }
        return push(v, rec(K_INT, 0, x, 0));
    }
    case 'G': /* BINFLOAT */
        NEED(8);
        v->pos += 8;
        return push(v, rec(K_FLOAT, 0, 0, 0));
    case 'N':
        return push(v, rec(K_NONE, F_KEY, 0, 0));
    case 0x88:
        return push(v, rec(K_BOOL, F_KEY, 1, 0));
    case 0x89:
        return push(v, rec(K_BOOL, F_KEY, 0, 0));
    case 0x8c: /* SHORT_BINUNICODE */
        return counted(v, 1, &off, &n) && push_utf8(v, off, n);
    case 'X': /* BINUNICODE */
        return counted(v, 4, &off, &n) && push_utf8(v, off, n);
    case 0x8d: /* BINUNICODE8 */
        return counted(v, 8, &off, &n) && push_utf8(v, off, n);
    case 'C': /* SHORT_BINBYTES */
        return counted(v, 1, &off, &n) && push(v, rec(K_BYTES, F_KEY, (int64_t)off, (int64_t)n));
    case 'B': /* BINBYTES */
        return counted(v, 4, &off, &n) && push(v, rec(K_BYTES, F_KEY, (int64_t)off, (int64_t)n));
    case 0x8e: /* BINBYTES8 */
        return counted(v, 8, &off, &n) && push(v, rec(K_BYTES, F_KEY, (int64_t)off, (int64_t)n));
    case 0x96: /* BYTEARRAY8 */
        return counted(v, 8, &off, &n) && push(v, rec(K_BARR, 0, (int64_t)off, (int64_t)n));
    case 'U': /* SHORT_BINSTRING */
        return counted(v, 1, &off, &n) && push_py2(v, off, n);
    case 'T': /* BINSTRING (a signed length) */
        NEED(4);
        if (v->d[v->pos + 3] & 0x80)
            return 0;
        return counted(v, 4, &off, &n) && push_py2(v, off, n);
    case 'I':
        return op_int(v);
    case 'L':
        return op_long(v);
    case 'F':
        return op_float(v);
    case 'S':
        return op_string(v);
    case 'V':
        return op_unicode(v);
    case '(': /* MARK */
        if ((int64_t)v->nmarks + 1 > v->maxh)
            return 0;
        if (!grow((void **)&v->marks, &v->mkcap, v->nmarks + 1, sizeof(size_t)))
            return 0;
        v->marks[v->nmarks++] = v->sp;
        return push(v, rec(K_MARK, 0, 0, 0));
    case ']':
    case '}': {
        Rec c = rec(op == ']' ? K_LIST : K_DICT, 0, 0, 0);
        c.height = 1;
        return height_ok(v, 1) && push(v, c);
    }
    case ')':
        return make_tuple(v, v->sp);
    case 'l':
        return op_new_from_mark(v, K_LIST);
    case 'd':
        return op_new_from_mark(v, K_DICT);
    case 't': {
        size_t k;
        if (!top_mark(v, &k))
            return 0;
        v->nmarks--;
        if (!make_tuple(v, k + 1))
            return 0;
        v->st[k] = v->st[k + 1]; /* the tuple takes the MARK's place */
        v->sp = k + 1;
        return 1;
    }
    case 0x85:
    case 0x86:
    case 0x87: {
        size_t k = (size_t)(op - 0x84);
        if (v->sp < k || !no_mark_from(v, v->sp - k))
            return 0;
        return make_tuple(v, v->sp - k);
    }
    case 'a':
        return op_item(v, K_LIST, 1);
    case 's':
        return op_item(v, K_DICT, 2);
    case 'e':
        return op_items_from_mark(v, K_LIST);
    case 'u':
        return op_items_from_mark(v, K_DICT);
    case 'p':
        return memo_line(v, &idx) && memo_put(v, idx);
    case 'g':
        return memo_line(v, &idx) && memo_get(v, idx);
    case 'q':
        NEED(1);
        return memo_put(v, v->d[v->pos++]);
    case 'r':
        NEED(4);
        p = v->d + v->pos;
        v->pos += 4;
        return memo_put(v, (int64_t)le(p, 4));
    case 0x94: /* MEMOIZE */
        return memo_put(v, (int64_t)v->entries);
    case 'h':
        NEED(1);
        return memo_get(v, v->d[v->pos++]);
    case 'j':
        NEED(4);
        p = v->d + v->pos;
        v->pos += 4;
        return memo_get(v, (int64_t)le(p, 4));
    case 'c':
        return op_global(v);
    case 0x93:
        return op_stack_global(v);
    case 'R':
        return op_reduce(v);
    case 'b':
        return op_build(v);
    default:
        return 0;
    }
}

/* The BININT1/BININT2 opcodes that follow one, up to `end` (the open
 * frame's end or the data's), without going through the dispatch: the same
 * records, the same opcode count. Anything else is left to the loop. */
static int
small_ints(V *v, size_t end)
{
    const unsigned char *d = v->d;
    /* report(): counted at the end; the opcode before was a K or an M, so a
     * run of plain ones is open already when both are plain */
    int64_t nk = 0, nm = 0;
    int batch = v->recording && v->plain['K'] && v->plain['M'];
    while (v->pos < end) {
        unsigned c = d[v->pos];
        int64_t x;
        if (c == 'K') {
            if (end - v->pos < 2)
                break;
            x = d[v->pos + 1];
            v->pos += 2;
        }
        else if (c == 'M') {
            if (end - v->pos < 3)
                break;
            x = (int64_t)d[v->pos + 1] | ((int64_t)d[v->pos + 2] << 8);
            v->pos += 3;
        }
        else
            break;
        if (++v->ops > v->maxops)
            return 0;
        if (batch) {
            if (c == 'K')
                nk++;
            else
                nm++;
        }
        else if (v->recording)
            note(v, c);
        if (!push(v, rec(K_INT, F_KEY, x, 0)))
            return 0;
    }
    v->cnt['K'] += nk;
    v->cnt['M'] += nm;
    return 1;
}

static int
run(V *v)
{
    size_t frame_end = 0;
    int in_frame = 0;
    if (v->len >= 2 && v->d[0] == 0x80) {
        if (v->d[1] < 2 || v->d[1] > 5)
            return 0;
        v->proto = v->d[1];
        v->pos = 2;
        if (v->recording)
            note(v, 0x80);
    }
    while (v->pos < v->len) {
        unsigned op;
        if (in_frame && v->pos == frame_end)
            in_frame = 0;
        op = v->d[v->pos++];
        if (++v->ops > v->maxops)
            return 0;
        if (v->recording) {
            v->at = v->pos - 1;
            note(v, op);
        }
        if (op == '.') { /* STOP */
            if (v->pos != v->len || v->sp != 1 || v->nmarks != 0)
                return 0;
            if (in_frame && v->pos > frame_end)
                return 0;
            return is_value(&v->st[0]);
        }
        if (op == 0x95) { /* FRAME */
            uint64_t fl;
            if (v->proto < 4 || in_frame)
                return 0;
            NEED(8);
            fl = le(v->d + v->pos, 8);
            v->pos += 8;
            if (fl < 1 || fl > (uint64_t)(v->len - v->pos))
                return 0;
            frame_end = v->pos + (size_t)fl;
            in_frame = 1;
            continue;
        }
        if (!step(v, op))
            return 0;
        if (in_frame && v->pos > frame_end)
            return 0;
        if ((op == 'K' || op == 'M') && !small_ints(v, in_frame ? frame_end : v->len))
            return 0;
    }
    return 0; /* no STOP */
}

static int
start(V *v, const unsigned char *d, size_t len, Py_ssize_t max_depth,
      Py_ssize_t max_items, int encoding)
{
    memset(v, 0, sizeof(*v));
    if (max_depth < 3 || max_items < 2 || encoding < 0 || encoding > 2)
        return 0;
    v->d = d;
    v->len = len;
    v->maxh = (int64_t)max_depth - 2;
    if (v->maxh > 60000)
        v->maxh = 60000; /* heights are kept in 32 bits; marks counted exactly */
    v->maxops = (int64_t)(max_items / 2);
    v->encoding = encoding;
    return 1;
}

static void
finish(V *v)
{
    PyMem_RawFree(v->st);
    PyMem_RawFree(v->marks);
    PyMem_RawFree(v->memo);
    PyMem_RawFree(v->pool);
    PyMem_RawFree(v->slots);
    PyMem_RawFree(v->globs);
    PyMem_RawFree(v->shp);
}

static PyObject *
verdict_check(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t max_depth, max_items;
    int encoding, ok = 0;
    V v;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nni", &view, &max_depth, &max_items, &encoding))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (start(&v, (const unsigned char *)view.buf, (size_t)view.len, max_depth,
              max_items, encoding))
        ok = run(&v);
    finish(&v);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyLong_FromLong(ok);
}

/* report(): the result's kind, and for an array or a NumPy scalar its dtype
 * (as "<f8", "|O8", ...) and for an array its shape */
static PyObject *
result_of(V *v)
{
    const Rec *r = &v->st[0];
    const int64_t *e;
    const Slot *s;
    PyObject *shape = Py_None, *out;
    char dt[8];
    int64_t i;
    if (r->kind != K_ARRAY && r->kind != K_NPSCALAR)
        return Py_BuildValue("(iOO)", (int)r->kind, Py_None, Py_None);
    e = v->shp + r->a;
    s = &v->slots[e[0]];
    dt[0] = (char)s->order;
    strcpy(dt + 1, DT[s->code].s);
    if (r->kind == K_ARRAY) {
        if ((shape = PyTuple_New((Py_ssize_t)e[1])) == NULL)
            return NULL;
        for (i = 0; i < e[1]; i++) {
            PyObject *x = PyLong_FromLongLong(e[2 + i]);
            if (x == NULL) {
                Py_DECREF(shape);
                return NULL;
            }
            PyTuple_SET_ITEM(shape, i, x);
        }
        out = Py_BuildValue("(isN)", (int)r->kind, dt, shape);
    }
    else
        out = Py_BuildValue("(isO)", (int)r->kind, dt, Py_None);
    return out;
}

/* report(): the facts as a tuple (see _fastreport.py) */
static PyObject *
facts(V *v)
{
    PyObject *counts = NULL, *globs = NULL, *result = NULL;
    size_t i;
    int c;
    if ((counts = PyDict_New()) == NULL)
        goto fail;
    for (c = 0; c < 256; c++) {
        PyObject *n;
        if (!v->cnt[c])
            continue;
        if ((n = PyLong_FromLongLong(v->cnt[c])) == NULL)
            goto fail;
        {
            PyObject *key = PyLong_FromLong(c);
            int bad = key == NULL || PyDict_SetItem(counts, key, n) < 0;
            Py_XDECREF(key);
            Py_DECREF(n);
            if (bad)
                goto fail;
        }
    }
    if ((globs = PyList_New((Py_ssize_t)v->nglobs)) == NULL)
        goto fail;
    for (i = 0; i < v->nglobs; i++) {
        const int64_t *g = v->globs + 6 * i;
        PyObject *t = Py_BuildValue("(LLLLLL)", (long long)g[0], (long long)g[1],
                                    (long long)g[2], (long long)g[3], (long long)g[4],
                                    (long long)g[5]);
        if (t == NULL)
            goto fail;
        PyList_SET_ITEM(globs, (Py_ssize_t)i, t);
    }
    if ((result = result_of(v)) == NULL)
        goto fail;
    return Py_BuildValue("(iNLNN)", v->proto, counts, (long long)v->plain_runs, globs,
                         result);
fail:
    Py_XDECREF(counts);
    Py_XDECREF(globs);
    Py_XDECREF(result);
    return NULL;
}

static PyObject *
verdict_report(PyObject *self, PyObject *args)
{
    Py_buffer view, plain;
    Py_ssize_t max_depth, max_items;
    int encoding, ok = 0;
    unsigned char table[256];
    PyObject *out;
    V v;
    Py_ssize_t i;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nniy*", &view, &max_depth, &max_items, &encoding,
                          &plain))
        return NULL;
    memset(table, 0, sizeof(table));
    for (i = 0; i < plain.len; i++)
        table[((const unsigned char *)plain.buf)[i]] = 1;
    PyBuffer_Release(&plain);
    Py_BEGIN_ALLOW_THREADS
    if (start(&v, (const unsigned char *)view.buf, (size_t)view.len, max_depth,
              max_items, encoding)) {
        v.recording = 1;
        v.plain = table;
        ok = run(&v);
    }
    Py_END_ALLOW_THREADS
    if (ok)
        out = facts(&v);
    else {
        out = Py_None;
        Py_INCREF(out);
    }
    finish(&v);
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"check", verdict_check, METH_VARARGS,
     "check(data, max_depth, max_items, encoding) -> 1 if the strict scan is "
     "proven to pass, else 0"},
    {"report", verdict_report, METH_VARARGS,
     "report(data, max_depth, max_items, encoding, plain_codes) -> None if not "
     "proven, else the facts of the scan's report: (protocol, {opcode code: "
     "count}, plain runs, [(offset, code, module offset, module length, name "
     "offset, name length)], (result kind, dtype or None, shape or None))"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_verdict", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__verdict(void)
{
    return PyModule_Create(&module);
}
