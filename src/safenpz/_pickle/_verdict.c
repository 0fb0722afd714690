/* The compiled pre-check of pickle streams (see _prescan.py): an accept-only
 * oracle.
 *
 * check(data, max_depth, max_items, encoding) answers 1 only when it has
 * proven that the strict scan (safenpz.scan_pickle(data, strict=True, ...))
 * passes, and 0 ("not proven") for everything else. After a 1 the loader
 * skips the Python scan, so every rule below errs on the side of 0. It never
 * builds, imports or calls anything, and never explains a 0: refusals and
 * messages stay with the Python scanner. encoding: 0 latin1, 1 bytes,
 * 2 ASCII (what the load makes of Python 2 str).
 *
 * How: one pass, opcode by opcode, over a closed subset of pickle, with an
 * abstract stack of small tagged records (Rec), a MARK stack, a memo (an
 * array of Rec by memo index) and a pool holding the items of every tuple
 * (each pool entry is a stack record a TUPLE consumed, so the pool never
 * holds more records than opcodes were read). Every read is bounded by the
 * length; no recursion; memory is a constant times the number of opcodes
 * (the memo index is bounded by 2 * puts + 1024). Any opcode outside the
 * subset, any argument outside the forms below: 0.
 *
 * The subset, and why each rule is sound (the scan's checks each rule
 * implies, see _scanner.py's docstring):
 *
 * - Leaves: BININT, BININT1, BININT2, LONG1 (<= 8 bytes), BINFLOAT, NONE,
 *   NEWTRUE, NEWFALSE; text SHORT_BINUNICODE / BINUNICODE / BINUNICODE8 that
 *   is UTF-8 as the unpickler's surrogatepass decoder reads it (checked
 *   here: no overlong, no truncated sequence, nothing beyond U+10FFFF;
 *   ED A0..BF xx surrogates allowed); bytes SHORT_BINBYTES / BINBYTES /
 *   BINBYTES8; Python 2 strings SHORT_BINSTRING / BINSTRING (text under
 *   latin1, bytes under bytes, text under ASCII only when every byte is
 *   ASCII). Every length must fit in the data (BINSTRING's is signed).
 * - Protocol 0 text only in canonical spellings that CPython's unpickler and
 *   the scanner's COMMON patterns read alike: INT "00"/"01" (bools) or
 *   -?[1-9][0-9]{0,17} or 0 (no leading zeros: the unpickler reads INT in
 *   base 0); LONG -?(0|[1-9][0-9]{0,999})L; FLOAT
 *   -?[0-9]+(.[0-9]*)?([eE][-+]?[0-9]{1,3})? whose magnitude stays below
 *   1e300 (the unpickler refuses an overflow; no inf/nan spelling); STRING
 *   quoted with one quote both ends, no backslash and no such quote inside;
 *   UNICODE where every backslash starts \uXXXX or \UXXXXXXXX (<= U+10FFFF;
 *   raw-unicode-escape reads nothing else specially); PUT/GET indices
 *   0|[1-9][0-9]{0,17}; GLOBAL names of printable ASCII without spaces.
 * - Memo: an index beyond 2 * puts + 1024 or beyond the data, a PUT over a
 *   set index, a GET of an unset index: 0. A GET may read back only values
 *   that hold no container (leaves, globals, built dtypes, tuples of such):
 *   no value is shared, no container can contain itself.
 * - Containers: lists, tuples, dicts; APPEND(S) only onto a list, SETITEM(S)
 *   only onto a dict, in pairs, never an empty batch; keys only text, bytes,
 *   None, bools and ints from BININT* or a text INT below 2**31 (hashes that
 *   cannot be made to collide: at most two distinct such ints share a hash,
 *   far under MAX_SAME_HASH, and hashing each costs one value).
 * - Limits with margin: open MARKs and every value's nesting height (an
 *   array counts as one level) <= max_depth - 2; opcodes read * 2 (a GET of
 *   a tuple counts its items too) <= max_items: every count the scan makes
 *   (containers, values the final walk counts, hashed keys, object array
 *   elements) is at most one per opcode.
 * - PROTO 2..5 only as the first opcode; FRAME only under protocol >= 4,
 *   only where no frame is open (or one ends exactly there), of >= 1 byte,
 *   within the data; no opcode crosses a frame's end. STOP is the last byte
 *   of the data and leaves exactly one value and no MARK.
 * - Globals: numpy.(_)core.multiarray._reconstruct and .scalar,
 *   numpy.ndarray, numpy.dtype, _codecs.encode (all in _globals.ROLES), by
 *   GLOBAL or STACK_GLOBAL of two text leaves; a global is consumed only as
 *   REDUCE's callable or inside an argument tuple.
 * - REDUCE / BUILD only in NumPy's own forms, with the arguments the shared
 *   rules (_rules, _dtype_rules) accept:
 *   _codecs.encode(text, 'latin1') -> bytes (text must be latin-1);
 *   _reconstruct(ndarray, (0,), 'b' or b'b') -> an array to build, then
 *   BUILD (1, shape, built dtype, bool or 0/1, data): shape a tuple of at
 *   most 32 ints >= 0 each at most the stream's length (product checked
 *   without overflow), data a list of prod(shape) items for 'O8', else bytes
 *   (or a Python 2 string) of exactly prod(shape) * itemsize;
 *   dtype(code, bool or 0/1, bool or 0/1) with code 'O8' or a plain numeric
 *   code, then BUILD (3, endian, None, None, None, -1, -1, flags): 'O8'
 *   '|' 63; numeric '|' (one byte) or '<'/'>' and flags 0;
 *   scalar(built numeric dtype, itemsize bytes) -> a NumPy scalar (a value,
 *   never a key). A dtype is built once, in place (the memo entry the
 *   pending dtype was put in is updated, so GET gives the built dtype); a
 *   GET of a pending array or dtype: 0.
 * - Values (container items, the result): leaves, scalars, lists, dicts,
 *   tuples of values and built arrays; never a global, a dtype, anything
 *   pending or a tuple holding one of those.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    K_MARK_UNUSED = 0,
    K_INT,     /* an int below 2**31 in magnitude: a key; iv = value */
    K_BIGINT,  /* any other int (LONG1, LONG, big INT): not a key */
    K_FLOAT,
    K_NONE,
    K_BOOL,    /* iv = 0 / 1 */
    K_TEXT,    /* off,len = raw bytes; iv = latin-1 length or -1 */
    K_BYTES,   /* len = length; off,len = raw bytes when F_RAW */
    K_SCALAR,  /* a numeric NumPy scalar */
    K_LIST,    /* len = items */
    K_DICT,    /* len = items (keys and values) */
    K_TUPLE,   /* off = pool start, len = items */
    K_GLOBAL,  /* iv = G_* */
    K_APEND,   /* an array to be built */
    K_ARRAY,   /* a built array */
    K_DTPEND,  /* a dtype to be built: iv = code index, off = memo link + 1 */
    K_DTYPE,   /* a built dtype: iv = code index */
};

enum { F_RAW = 1, F_PY2 = 2, F_BAD = 4, F_SHARE = 8 };

enum { G_RECON = 1, G_SCALAR, G_NDARRAY, G_DTYPE, G_ENCODE };

typedef struct {
    uint8_t kind;
    uint8_t flags;
    uint8_t set; /* memo: the entry is set */
    uint8_t pad;
    int32_t h;   /* nesting height: 0 for leaves */
    int64_t iv;
    size_t off;
    size_t len;
} Rec;

typedef struct {
    Rec *a;
    size_t n, cap;
} Vec;

static int
vec_reserve(Vec *v, size_t need)
{
    if (need <= v->cap)
        return 1;
    size_t cap = v->cap ? v->cap : 64;
    while (cap < need) {
        if (cap > ((size_t)-1) / 2 / sizeof(Rec))
            return 0;
        cap *= 2;
    }
    Rec *a = (Rec *)realloc(v->a, cap * sizeof(Rec));
    if (a == NULL)
        return 0;
    v->a = a;
    v->cap = cap;
    return 1;
}

static int
vec_push(Vec *v, const Rec *r)
{
    if (!vec_reserve(v, v->n + 1))
        return 0;
    v->a[v->n++] = *r;
    return 1;
}

typedef struct {
    const unsigned char *d;
    size_t n;
    int64_t hmax;      /* max_depth - 2 */
    int64_t max_items;
    int enc;
} Ctx;

/* dtype codes: name, itemsize, is object */
static const struct {
    const char *name;
    int size;
} CODES[] = {
    {"O8", 8}, {"b1", 1}, {"i1", 1}, {"u1", 1}, {"i2", 2},  {"u2", 2},
    {"i4", 4}, {"u4", 4}, {"i8", 8}, {"u8", 8}, {"f2", 2},  {"f4", 4},
    {"f8", 8}, {"c8", 8}, {"c16", 16},
};
#define N_CODES ((int)(sizeof(CODES) / sizeof(CODES[0])))

static const struct {
    const char *mod;
    const char *name;
    int id;
} GLOBALS[] = {
    {"numpy.core.multiarray", "_reconstruct", G_RECON},
    {"numpy._core.multiarray", "_reconstruct", G_RECON},
    {"numpy.core.multiarray", "scalar", G_SCALAR},
    {"numpy._core.multiarray", "scalar", G_SCALAR},
    {"numpy", "ndarray", G_NDARRAY},
    {"numpy", "dtype", G_DTYPE},
    {"_codecs", "encode", G_ENCODE},
};
#define N_GLOBALS ((int)(sizeof(GLOBALS) / sizeof(GLOBALS[0])))

static int
global_id(const unsigned char *m, size_t ml, const unsigned char *nm, size_t nl)
{
    for (int i = 0; i < N_GLOBALS; i++) {
        if (strlen(GLOBALS[i].mod) == ml && memcmp(GLOBALS[i].mod, m, ml) == 0
            && strlen(GLOBALS[i].name) == nl
            && memcmp(GLOBALS[i].name, nm, nl) == 0)
            return GLOBALS[i].id;
    }
    return 0;
}

/* Whether record r is a string equal to the ASCII constant s: text (or, with
 * `py2bytes`, a Python 2 string the bytes encoding left as bytes, which the
 * rules read as text; with `anybytes`, any bytes) whose raw bytes are its
 * value. */
static int
rec_is(const Ctx *c, const Rec *r, const char *s, int anybytes)
{
    size_t sl = strlen(s);
    if (!(r->flags & F_RAW))
        return 0;
    if (r->kind == K_BYTES) {
        if (!anybytes && !(r->flags & F_PY2))
            return 0;
    }
    else if (r->kind != K_TEXT)
        return 0;
    return r->len == sl && memcmp(c->d + r->off, s, sl) == 0;
}

static int
value_ok(const Rec *r)
{
    switch (r->kind) {
    case K_INT: case K_BIGINT: case K_FLOAT: case K_NONE: case K_BOOL:
    case K_TEXT: case K_BYTES: case K_SCALAR: case K_LIST: case K_DICT:
    case K_ARRAY:
        return 1;
    case K_TUPLE:
        return !(r->flags & F_BAD);
    default:
        return 0;
    }
}

static int
key_ok(const Rec *r)
{
    return r->kind == K_TEXT || r->kind == K_BYTES || r->kind == K_INT
           || r->kind == K_NONE || r->kind == K_BOOL;
}

static int
shareable(const Rec *r)
{
    switch (r->kind) {
    case K_INT: case K_BIGINT: case K_FLOAT: case K_NONE: case K_BOOL:
    case K_TEXT: case K_BYTES: case K_SCALAR: case K_GLOBAL: case K_DTYPE:
        return 1;
    case K_TUPLE:
        return (r->flags & F_SHARE) != 0;
    default:
        return 0;
    }
}

/* UTF-8 as CPython's surrogatepass decoder reads it. Returns the latin-1
 * length in *l1 (-1 if beyond latin-1); 0 if invalid. */
static int
utf8_ok(const unsigned char *p, size_t n, int64_t *l1)
{
    size_t i = 0;
    int64_t cps = 0;
    int beyond = 0;
    while (i < n) {
        /* ASCII runs, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
            cps += 8;
        }
        if (i >= n)
            break;
        unsigned char b = p[i];
        if (b < 0x80) {
            i++;
            cps++;
            continue;
        }
        if (b < 0xC2)
            return 0;
        if (b < 0xE0) {
            if (i + 2 > n || (p[i + 1] & 0xC0) != 0x80)
                return 0;
            if (b >= 0xC4)
                beyond = 1;
            i += 2;
        }
        else if (b < 0xF0) {
            if (i + 3 > n)
                return 0;
            unsigned char b1 = p[i + 1];
            if ((b1 & 0xC0) != 0x80 || (p[i + 2] & 0xC0) != 0x80)
                return 0;
            if (b == 0xE0 && b1 < 0xA0)
                return 0; /* overlong */
            /* 0xED A0..BF: surrogates, which surrogatepass accepts */
            beyond = 1;
            i += 3;
        }
        else if (b < 0xF5) {
            if (i + 4 > n)
                return 0;
            unsigned char b1 = p[i + 1];
            if ((b1 & 0xC0) != 0x80 || (p[i + 2] & 0xC0) != 0x80
                || (p[i + 3] & 0xC0) != 0x80)
                return 0;
            if (b == 0xF0 && b1 < 0x90)
                return 0; /* overlong */
            if (b == 0xF4 && b1 >= 0x90)
                return 0; /* beyond U+10FFFF */
            beyond = 1;
            i += 4;
        }
        else
            return 0;
        cps++;
    }
    *l1 = beyond ? -1 : cps;
    return 1;
}

static int
all_ascii(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80)
            return 0;
    return 1;
}

static uint64_t
rd_le(const unsigned char *p, int w)
{
    uint64_t v = 0;
    for (int i = w - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* The line from pos (after the opcode) to the next '\n' (exclusive):
 * returns its length, or -1 if no newline before the end. */
static int64_t
line_at(const Ctx *c, size_t pos)
{
    if (pos >= c->n)
        return -1;
    const unsigned char *q = memchr(c->d + pos, '\n', c->n - pos);
    if (q == NULL)
        return -1;
    return (int64_t)(q - (c->d + pos));
}

static int
is_digit(unsigned char x)
{
    return x >= '0' && x <= '9';
}

/* -?(0|[1-9][0-9]{0,maxd-1}) exactly over [p, p+n); value in *v if maxd<=18 */
static int
canon_int(const unsigned char *p, size_t n, int maxd, int allow_neg_zero,
          int64_t *v)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && p[i] == '-') {
        neg = 1;
        i++;
    }
    size_t nd = n - i;
    if (nd == 0 || nd > (size_t)maxd)
        return 0;
    if (p[i] == '0') {
        if (nd != 1)
            return 0;
        if (neg && !allow_neg_zero)
            return 0;
    }
    int64_t x = 0;
    for (size_t k = i; k < n; k++) {
        if (!is_digit(p[k]))
            return 0;
        if (maxd <= 18)
            x = x * 10 + (p[k] - '0');
    }
    if (v)
        *v = neg ? -x : x;
    return 1;
}

/* FLOAT text: -?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]{1,3})? with magnitude
 * < 1e300 (at most 300 + exponent digits before the point). */
static int
canon_float(const unsigned char *p, size_t n)
{
    size_t i = 0;
    if (i < n && p[i] == '-')
        i++;
    size_t s = i;
    while (i < n && is_digit(p[i]))
        i++;
    int64_t intd = (int64_t)(i - s);
    if (intd == 0 || intd > 300)
        return 0;
    /* leading zeros do not add to the magnitude */
    size_t z = s;
    while (z + 1 < i && p[z] == '0')
        z++;
    int64_t mag = (int64_t)(i - z);
    if (i < n && p[i] == '.') {
        i++;
        size_t f = i;
        while (i < n && is_digit(p[i]))
            i++;
        if (i - f > 300)
            return 0;
    }
    int64_t e = 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < n && (p[i] == '-' || p[i] == '+')) {
            eneg = p[i] == '-';
            i++;
        }
        size_t es = i;
        while (i < n && is_digit(p[i]) && i - es < 4) {
            e = e * 10 + (p[i] - '0');
            i++;
        }
        if (i == es || i - es > 3)
            return 0;
        if (eneg)
            e = -e;
    }
    if (i != n)
        return 0;
    return mag + e <= 300;
}

static int
hexval(unsigned char x)
{
    if (x >= '0' && x <= '9')
        return x - '0';
    if (x >= 'a' && x <= 'f')
        return x - 'a' + 10;
    if (x >= 'A' && x <= 'F')
        return x - 'A' + 10;
    return -1;
}

/* UNICODE text (raw-unicode-escape): every backslash starts \uXXXX or
 * \UXXXXXXXX <= U+10FFFF. *l1: latin-1 length or -1; *raw: no backslash. */
static int
canon_unicode(const unsigned char *p, size_t n, int64_t *l1, int *raw)
{
    int64_t cps = 0;
    int beyond = 0;
    *raw = 1;
    for (size_t i = 0; i < n;) {
        if (p[i] != '\\') {
            i++;
            cps++;
            continue;
        }
        *raw = 0;
        if (i + 1 >= n)
            return 0;
        int cnt = p[i + 1] == 'u' ? 4 : p[i + 1] == 'U' ? 8 : 0;
        if (cnt == 0 || i + 2 + (size_t)cnt > n)
            return 0;
        uint32_t ch = 0;
        for (int k = 0; k < cnt; k++) {
            int h = hexval(p[i + 2 + k]);
            if (h < 0)
                return 0;
            ch = (ch << 4) | (uint32_t)h;
        }
        if (ch > 0x10FFFF)
            return 0;
        if (ch > 0xFF)
            beyond = 1;
        cps++;
        i += 2 + (size_t)cnt;
    }
    *l1 = beyond ? -1 : cps;
    return 1;
}

static int
printable_name(const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7F)
            return 0;
    return 1;
}

/* A Python 2 string at [off, off+len): a record per the encoding. */
static int
py2_rec(const Ctx *c, size_t off, size_t len, Rec *r)
{
    memset(r, 0, sizeof(*r));
    r->off = off;
    r->len = len;
    r->flags = F_RAW | F_PY2;
    if (c->enc == 1) {
        r->kind = K_BYTES;
        return 1;
    }
    if (c->enc == 2 && !all_ascii(c->d + off, len))
        return 0;
    r->kind = K_TEXT;
    r->iv = (int64_t)len;
    return 1;
}

typedef struct {
    Vec st;    /* the value stack */
    Vec memo;  /* by memo index */
    Vec pool;  /* tuple items */
    size_t *marks;
    size_t nmarks, capmarks;
    size_t puts;
    int64_t ops;
} State;

static int
fix_height(const Ctx *c, Rec *r, int32_t child)
{
    int64_t h = (int64_t)child + 1;
    if (h > c->hmax)
        return 0;
    if (h > r->h)
        r->h = (int32_t)h;
    return 1;
}

/* Make a tuple of the top k records (above `base`). */
static int
make_tuple(const Ctx *c, State *s, size_t base)
{
    size_t k = s->st.n - base;
    Rec t;
    memset(&t, 0, sizeof(t));
    t.kind = K_TUPLE;
    t.flags = F_SHARE;
    t.off = s->pool.n;
    t.len = k;
    t.h = 1;
    if (1 > c->hmax)
        return 0;
    if (!vec_reserve(&s->pool, s->pool.n + k))
        return 0;
    for (size_t i = base; i < s->st.n; i++) {
        Rec *e = &s->st.a[i];
        if (!value_ok(e))
            t.flags |= F_BAD;
        if (!shareable(e))
            t.flags &= (uint8_t)~F_SHARE;
        if (!fix_height(c, &t, e->h))
            return 0;
        s->pool.a[s->pool.n++] = *e;
    }
    s->st.n = base;
    return vec_push(&s->st, &t);
}

/* Append the records above `base` to the list at base - 1 (or a MARK'd
 * batch: base is past the mark). */
static int
add_items(const Ctx *c, Rec *target, const Rec *items, size_t k, int dict)
{
    if (dict && (k % 2) != 0)
        return 0;
    for (size_t i = 0; i < k; i++) {
        if (dict && i % 2 == 0) {
            if (!key_ok(&items[i]))
                return 0;
        }
        else if (!value_ok(&items[i]))
            return 0;
        if (!fix_height(c, target, items[i].h))
            return 0;
    }
    target->len += k;
    return 1;
}

static int
pop_mark(State *s, size_t *base)
{
    if (s->nmarks == 0)
        return 0;
    *base = s->marks[--s->nmarks];
    return 1;
}

/* the bottom of what an opcode may pop: the last mark, or 0 */
static size_t
floor_of(const State *s)
{
    return s->nmarks ? s->marks[s->nmarks - 1] : 0;
}

static int
memo_index_ok(const Ctx *c, State *s, uint64_t idx)
{
    if (c->n < 2 || idx >= (uint64_t)(c->n - 1))
        return 0;
    if (idx > 2 * (uint64_t)s->puts + 1024)
        return 0;
    return 1;
}

static int
do_put(const Ctx *c, State *s, uint64_t idx)
{
    if (s->st.n <= floor_of(s))
        return 0;
    if (!memo_index_ok(c, s, idx))
        return 0;
    if (idx >= s->memo.cap || idx >= s->memo.n) {
        size_t old = s->memo.n;
        if (!vec_reserve(&s->memo, (size_t)idx + 1))
            return 0;
        memset(s->memo.a + old, 0, ((size_t)idx + 1 - old) * sizeof(Rec));
        s->memo.n = (size_t)idx + 1;
    }
    Rec *m = &s->memo.a[idx];
    if (m->set)
        return 0;
    Rec *top = &s->st.a[s->st.n - 1];
    if (top->kind == K_DTPEND) {
        if (top->off != 0)
            return 0; /* put twice: only one link */
        top->off = (size_t)idx + 1;
    }
    *m = *top;
    m->set = 1;
    s->puts++;
    return 1;
}

static int
do_get(const Ctx *c, State *s, uint64_t idx)
{
    if (idx >= s->memo.n || !s->memo.a[idx].set)
        return 0;
    Rec r = s->memo.a[idx];
    if (!shareable(&r))
        return 0;
    r.set = 0;
    if (r.kind == K_TUPLE) {
        s->ops += (int64_t)r.len;
        if (s->ops > c->max_items / 2)
            return 0;
    }
    return vec_push(&s->st, &r);
}

static int
dtype_code(const Ctx *c, const Rec *r)
{
    for (int i = 0; i < N_CODES; i++)
        if (rec_is(c, r, CODES[i].name, 0))
            return i;
    return -1;
}

static int
flag01(const Rec *r)
{
    return r->kind == K_BOOL || (r->kind == K_INT && (r->iv == 0 || r->iv == 1));
}

/* the byte length of data given to scalar() or an array's BUILD */
static int64_t
data_len(const Rec *r)
{
    if (r->kind == K_BYTES)
        return (int64_t)r->len;
    if (r->kind == K_TEXT && (r->flags & F_PY2))
        return (int64_t)r->len;
    return -1;
}

static int
do_reduce(const Ctx *c, State *s)
{
    if (s->st.n < floor_of(s) + 2)
        return 0;
    Rec *f = &s->st.a[s->st.n - 2];
    Rec *a = &s->st.a[s->st.n - 1];
    if (f->kind != K_GLOBAL || a->kind != K_TUPLE)
        return 0;
    const Rec *e = s->pool.a + a->off;
    size_t k = a->len;
    Rec r;
    memset(&r, 0, sizeof(r));
    switch (f->iv) {
    case G_ENCODE:
        if (k != 2 || e[0].kind != K_TEXT || e[0].iv < 0
            || !(e[1].kind == K_TEXT && rec_is(c, &e[1], "latin1", 0)))
            return 0;
        r.kind = K_BYTES;
        r.len = (size_t)e[0].iv;
        if (e[0].flags & F_RAW) {
            r.flags = F_RAW;
            r.off = e[0].off;
        }
        break;
    case G_RECON:
        if (k != 3 || e[0].kind != K_GLOBAL || e[0].iv != G_NDARRAY
            || e[1].kind != K_TUPLE || e[1].len != 1)
            return 0;
        {
            const Rec *z = &s->pool.a[e[1].off];
            if (z->kind != K_INT || z->iv != 0)
                return 0;
        }
        if (!rec_is(c, &e[2], "b", 1))
            return 0;
        r.kind = K_APEND;
        break;
    case G_DTYPE: {
        if (k != 3 || !flag01(&e[1]) || !flag01(&e[2]))
            return 0;
        int code = dtype_code(c, &e[0]);
        if (code < 0)
            return 0;
        r.kind = K_DTPEND;
        r.iv = code;
        break;
    }
    case G_SCALAR:
        if (k != 2 || e[0].kind != K_DTYPE || e[0].iv == 0)
            return 0;
        if (data_len(&e[1]) != CODES[e[0].iv].size)
            return 0;
        r.kind = K_SCALAR;
        break;
    default:
        return 0;
    }
    s->st.n -= 2;
    return vec_push(&s->st, &r);
}

static int
build_dtype(const Ctx *c, State *s, Rec *t, const Rec *e, size_t k)
{
    if (k != 8)
        return 0;
    int code = (int)t->iv;
    if (e[0].kind != K_INT || e[0].iv != 3 || e[2].kind != K_NONE
        || e[3].kind != K_NONE || e[4].kind != K_NONE || e[5].kind != K_INT
        || e[5].iv != -1 || e[6].kind != K_INT || e[6].iv != -1
        || e[7].kind != K_INT)
        return 0;
    if (code == 0) {
        if (!rec_is(c, &e[1], "|", 0) || e[7].iv != 63)
            return 0;
    }
    else {
        if (e[7].iv != 0)
            return 0;
        if (CODES[code].size == 1) {
            if (!rec_is(c, &e[1], "|", 0))
                return 0;
        }
        else if (!rec_is(c, &e[1], "<", 0) && !rec_is(c, &e[1], ">", 0))
            return 0;
    }
    Rec r;
    memset(&r, 0, sizeof(r));
    r.kind = K_DTYPE;
    r.iv = code;
    if (t->off != 0) {
        Rec *m = &s->memo.a[t->off - 1];
        if (m->kind != K_DTPEND || !m->set)
            return 0;
        *m = r;
        m->set = 1;
    }
    s->st.n -= 2;
    return vec_push(&s->st, &r);
}

static int
build_array(const Ctx *c, State *s, const Rec *e, size_t k)
{
    if (k != 5 || e[0].kind != K_INT || e[0].iv != 1 || e[1].kind != K_TUPLE
        || e[1].len > 32 || e[2].kind != K_DTYPE || !flag01(&e[3]))
        return 0;
    const Rec *dims = s->pool.a + e[1].off;
    uint64_t prod = 1;
    int zero = 0;
    for (size_t i = 0; i < e[1].len; i++) {
        if (dims[i].kind != K_INT || dims[i].iv < 0)
            return 0;
        uint64_t d = (uint64_t)dims[i].iv;
        if (d == 0) {
            zero = 1;
            continue;
        }
        if (d > (uint64_t)c->n)
            return 0;
        prod *= d; /* both <= n < 2**48: no overflow */
        if (prod > (uint64_t)c->n)
            return 0;
    }
    if (zero)
        prod = 0;
    Rec r;
    memset(&r, 0, sizeof(r));
    r.kind = K_ARRAY;
    r.h = 1;
    if (e[2].iv == 0) {
        if (e[4].kind != K_LIST || (uint64_t)e[4].len != prod)
            return 0;
        r.h = e[4].h;
    }
    else {
        int64_t got = data_len(&e[4]);
        if (got < 0 || (uint64_t)got != prod * (uint64_t)CODES[e[2].iv].size)
            return 0;
    }
    if (r.h > c->hmax)
        return 0;
    s->st.n -= 2;
    return vec_push(&s->st, &r);
}

static int
do_build(const Ctx *c, State *s)
{
    if (s->st.n < floor_of(s) + 2)
        return 0;
    Rec *t = &s->st.a[s->st.n - 2];
    Rec *a = &s->st.a[s->st.n - 1];
    if (a->kind != K_TUPLE)
        return 0;
    const Rec *e = s->pool.a + a->off;
    if (t->kind == K_DTPEND)
        return build_dtype(c, s, t, e, a->len);
    if (t->kind == K_APEND)
        return build_array(c, s, e, a->len);
    return 0;
}

static int
push_leaf(State *s, int kind, int64_t iv)
{
    Rec r;
    memset(&r, 0, sizeof(r));
    r.kind = (uint8_t)kind;
    r.iv = iv;
    return vec_push(&s->st, &r);
}

static int
push_int(State *s, int64_t v)
{
    int small = v > -2147483648LL && v < 2147483648LL;
    return push_leaf(s, small ? K_INT : K_BIGINT, v);
}

static int
push_text(const Ctx *c, State *s, size_t off, size_t len)
{
    Rec r;
    memset(&r, 0, sizeof(r));
    int64_t l1;
    if (!utf8_ok(c->d + off, len, &l1))
        return 0;
    r.kind = K_TEXT;
    r.off = off;
    r.len = len;
    r.iv = l1;
    if (l1 == (int64_t)len)
        r.flags = F_RAW; /* all ASCII */
    return vec_push(&s->st, &r);
}

static int
push_bytes(State *s, size_t off, size_t len)
{
    Rec r;
    memset(&r, 0, sizeof(r));
    r.kind = K_BYTES;
    r.flags = F_RAW;
    r.off = off;
    r.len = len;
    return vec_push(&s->st, &r);
}

/* A length-prefixed argument: width w, returns 0 if it does not fit. */
static int
counted(const Ctx *c, size_t pos, int w, size_t *off, size_t *len, size_t *next)
{
    if (c->n - pos < 1 + (size_t)w)
        return 0;
    uint64_t L = rd_le(c->d + pos + 1, w);
    size_t start = pos + 1 + (size_t)w;
    if (L > (uint64_t)(c->n - start))
        return 0;
    *off = start;
    *len = (size_t)L;
    *next = start + (size_t)L;
    return 1;
}

static int
collection(const Ctx *c, State *s, unsigned char op)
{
    size_t base;
    Rec r;
    memset(&r, 0, sizeof(r));
    if (op == 't')
        return pop_mark(s, &base) && make_tuple(c, s, base);
    if (op == 0x85 || op == 0x86 || op == 0x87) {
        size_t k = (size_t)(op - 0x84);
        if (s->st.n < floor_of(s) + k)
            return 0;
        return make_tuple(c, s, s->st.n - k);
    }
    if (op == ')' || op == ']' || op == '}') {
        r.kind = op == ')' ? K_TUPLE : op == ']' ? K_LIST : K_DICT;
        r.h = 1;
        r.flags = op == ')' ? F_SHARE : 0;
        r.off = s->pool.n;
        return 1 <= c->hmax && vec_push(&s->st, &r);
    }
    if (op == 'l' || op == 'd') {
        if (!pop_mark(s, &base))
            return 0;
        r.kind = op == 'l' ? K_LIST : K_DICT;
        r.h = 1;
        if (1 > c->hmax)
            return 0;
        if (!add_items(c, &r, s->st.a + base, s->st.n - base, op == 'd'))
            return 0;
        s->st.n = base;
        return vec_push(&s->st, &r);
    }
    if (op == 'a' || op == 's') {
        size_t k = op == 'a' ? 1 : 2;
        if (s->st.n < floor_of(s) + k + 1)
            return 0;
        Rec *t = &s->st.a[s->st.n - k - 1];
        if (t->kind != (op == 'a' ? K_LIST : K_DICT))
            return 0;
        if (!add_items(c, t, s->st.a + s->st.n - k, k, op == 's'))
            return 0;
        s->st.n -= k;
        return 1;
    }
    /* APPENDS 'e', SETITEMS 'u' */
    if (!pop_mark(s, &base) || base == floor_of(s) || base == s->st.n)
        return 0;
    Rec *t = &s->st.a[base - 1];
    if (t->kind != (op == 'e' ? K_LIST : K_DICT))
        return 0;
    if (!add_items(c, t, s->st.a + base, s->st.n - base, op == 'u'))
        return 0;
    s->st.n = base;
    return 1;
}

/* One text-line opcode at pos; *next past its newline(s). */
static int
text_op(const Ctx *c, State *s, unsigned char op, size_t pos, size_t *next)
{
    size_t a = pos + 1;
    int64_t L = line_at(c, a);
    if (L < 0)
        return 0;
    const unsigned char *p = c->d + a;
    size_t n = (size_t)L;
    *next = a + n + 1;
    int64_t v;
    switch (op) {
    case 'I':
        if (n == 2 && p[0] == '0' && (p[1] == '0' || p[1] == '1'))
            return push_leaf(s, K_BOOL, p[1] - '0');
        if (!canon_int(p, n, 18, 0, &v))
            return 0;
        return push_int(s, v);
    case 'L':
        if (n < 2 || p[n - 1] != 'L' || !canon_int(p, n - 1, 1000, 1, NULL))
            return 0;
        return push_leaf(s, K_BIGINT, 0);
    case 'F':
        return canon_float(p, n) && push_leaf(s, K_FLOAT, 0);
    case 'S': {
        if (n < 2 || (p[0] != '\'' && p[0] != '"') || p[n - 1] != p[0])
            return 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (p[i] == '\\' || p[i] == p[0])
                return 0;
        Rec r;
        return py2_rec(c, a + 1, n - 2, &r) && vec_push(&s->st, &r);
    }
    case 'V': {
        Rec r;
        int raw;
        memset(&r, 0, sizeof(r));
        if (!canon_unicode(p, n, &r.iv, &raw))
            return 0;
        r.kind = K_TEXT;
        r.off = a;
        r.len = n;
        r.flags = raw ? F_RAW : 0;
        return vec_push(&s->st, &r);
    }
    case 'p':
    case 'g':
        if (!canon_int(p, n, 18, 0, &v) || v < 0)
            return 0;
        return op == 'p' ? do_put(c, s, (uint64_t)v) : do_get(c, s, (uint64_t)v);
    case 'c': {
        int64_t L2 = line_at(c, *next);
        if (L2 < 0)
            return 0;
        const unsigned char *q = c->d + *next;
        size_t n2 = (size_t)L2;
        *next += n2 + 1;
        if (!printable_name(p, n) || !printable_name(q, n2))
            return 0;
        int g = global_id(p, n, q, n2);
        return g != 0 && push_leaf(s, K_GLOBAL, g);
    }
    default:
        return 0;
    }
}

/* One binary opcode at pos; *next past it. */
static int
bin_op(const Ctx *c, State *s, unsigned char op, size_t pos, size_t *next)
{
    size_t off, len;
    const unsigned char *d = c->d;
    size_t left = c->n - pos - 1; /* bytes after the opcode */
    switch (op) {
    case 'J':
        if (left < 4)
            return 0;
        *next = pos + 5;
        return push_int(s, (int64_t)(int32_t)(uint32_t)rd_le(d + pos + 1, 4));
    case 'K':
        if (left < 1)
            return 0;
        *next = pos + 2;
        return push_int(s, d[pos + 1]);
    case 'M':
        if (left < 2)
            return 0;
        *next = pos + 3;
        return push_int(s, (int64_t)rd_le(d + pos + 1, 2));
    case 0x8a: /* LONG1 */
        if (left < 1 || d[pos + 1] > 8 || left < 1 + (size_t)d[pos + 1])
            return 0;
        *next = pos + 2 + d[pos + 1];
        return push_leaf(s, K_BIGINT, 0);
    case 'G':
        if (left < 8)
            return 0;
        *next = pos + 9;
        return push_leaf(s, K_FLOAT, 0);
    case 'N':
        *next = pos + 1;
        return push_leaf(s, K_NONE, 0);
    case 0x88:
    case 0x89:
        *next = pos + 1;
        return push_leaf(s, K_BOOL, op == 0x88);
    case 0x8c:
    case 'X':
    case 0x8d:
        if (!counted(c, pos, op == 0x8c ? 1 : op == 'X' ? 4 : 8, &off, &len, next))
            return 0;
        return push_text(c, s, off, len);
    case 'C':
    case 'B':
    case 0x8e:
        if (!counted(c, pos, op == 'C' ? 1 : op == 'B' ? 4 : 8, &off, &len, next))
            return 0;
        return push_bytes(s, off, len);
    case 'U':
    case 'T': {
        if (!counted(c, pos, op == 'U' ? 1 : 4, &off, &len, next))
            return 0;
        if (op == 'T' && len > 0x7FFFFFFFu)
            return 0; /* BINSTRING's count is signed */
        Rec r;
        return py2_rec(c, off, len, &r) && vec_push(&s->st, &r);
    }
    case 'q':
        if (left < 1)
            return 0;
        *next = pos + 2;
        return do_put(c, s, d[pos + 1]);
    case 'r':
        if (left < 4)
            return 0;
        *next = pos + 5;
        return do_put(c, s, rd_le(d + pos + 1, 4));
    case 0x94:
        *next = pos + 1;
        return do_put(c, s, s->puts);
    case 'h':
        if (left < 1)
            return 0;
        *next = pos + 2;
        return do_get(c, s, d[pos + 1]);
    case 'j':
        if (left < 4)
            return 0;
        *next = pos + 5;
        return do_get(c, s, rd_le(d + pos + 1, 4));
    case 0x93: { /* STACK_GLOBAL */
        *next = pos + 1;
        if (s->st.n < floor_of(s) + 2)
            return 0;
        Rec *m = &s->st.a[s->st.n - 2];
        Rec *nm = &s->st.a[s->st.n - 1];
        if (m->kind != K_TEXT || nm->kind != K_TEXT || !(m->flags & F_RAW)
            || !(nm->flags & F_RAW))
            return 0;
        int g = global_id(d + m->off, m->len, d + nm->off, nm->len);
        if (g == 0)
            return 0;
        s->st.n -= 2;
        return push_leaf(s, K_GLOBAL, g);
    }
    case 'R':
        *next = pos + 1;
        return do_reduce(c, s);
    case 'b':
        *next = pos + 1;
        return do_build(c, s);
    case '(':
        *next = pos + 1;
        if ((int64_t)s->nmarks + 1 > c->hmax)
            return 0;
        if (s->nmarks == s->capmarks) {
            size_t cap = s->capmarks ? s->capmarks * 2 : 16;
            size_t *m = (size_t *)realloc(s->marks, cap * sizeof(size_t));
            if (m == NULL)
                return 0;
            s->marks = m;
            s->capmarks = cap;
        }
        s->marks[s->nmarks++] = s->st.n;
        return 1;
    case 't': case 0x85: case 0x86: case 0x87: case ')': case ']': case '}':
    case 'l': case 'd': case 'a': case 's': case 'e': case 'u':
        *next = pos + 1;
        return collection(c, s, op);
    case 'I': case 'L': case 'F': case 'S': case 'V': case 'p': case 'g':
    case 'c':
        return text_op(c, s, op, pos, next);
    default:
        return 0;
    }
}

static int
run(const Ctx *c, State *s)
{
    const unsigned char *d = c->d;
    size_t n = c->n;
    size_t pos = 0;
    int proto = 0;
    size_t frame_end = 0; /* 0: no frame open */
    if (n >= 2 && d[0] == 0x80) {
        if (d[1] < 2 || d[1] > 5)
            return 0;
        proto = d[1];
        pos = 2;
    }
    while (pos < n) {
        if (frame_end != 0 && pos == frame_end)
            frame_end = 0;
        s->ops++;
        if (s->ops > c->max_items / 2)
            return 0;
        unsigned char op = d[pos];
        size_t next = 0;
        if (op == '.') {
            return pos + 1 == n && s->nmarks == 0 && s->st.n == 1
                   && value_ok(&s->st.a[0]);
        }
        if (op == 0x95) { /* FRAME */
            if (proto < 4 || frame_end != 0 || n - pos < 9)
                return 0;
            uint64_t L = rd_le(d + pos + 1, 8);
            if (L < 1 || L > (uint64_t)(n - pos - 9))
                return 0;
            pos += 9;
            frame_end = pos + (size_t)L;
            continue;
        }
        if (!bin_op(c, s, op, pos, &next))
            return 0;
        if (next <= pos || next > n)
            return 0;
        if (frame_end != 0 && next > frame_end)
            return 0;
        pos = next;
    }
    return 0; /* no STOP */
}

static int
check_stream(const unsigned char *d, size_t n, Py_ssize_t max_depth,
             Py_ssize_t max_items, int enc)
{
    Ctx c;
    c.d = d;
    c.n = n;
    c.hmax = (int64_t)max_depth - 2;
    c.max_items = (int64_t)max_items;
    c.enc = enc;
    if (c.hmax < 1 || c.max_items < 2 || n < 2 || (uint64_t)n > ((uint64_t)1 << 47))
        return 0;
    if (c.hmax > 0x7FFFFFF)
        c.hmax = 0x7FFFFFF; /* heights fit an int32 */
    State s;
    memset(&s, 0, sizeof(s));
    int ok = run(&c, &s);
    free(s.st.a);
    free(s.memo.a);
    free(s.pool.a);
    free(s.marks);
    return ok;
}

static PyObject *
verdict_check(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t max_depth, max_items;
    int encoding;
    int ok;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nni", &view, &max_depth, &max_items, &encoding))
        return NULL;
    if (encoding < 0 || encoding > 2 || view.len < 0) {
        PyBuffer_Release(&view);
        return PyLong_FromLong(0);
    }
    Py_BEGIN_ALLOW_THREADS
    ok = check_stream((const unsigned char *)view.buf, (size_t)view.len,
                      max_depth, max_items, encoding);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyLong_FromLong(ok ? 1 : 0);
}

static PyMethodDef methods[] = {
    {"check", verdict_check, METH_VARARGS,
     "check(data, max_depth, max_items, encoding) -> int: 1 if the strict "
     "scan is proven to pass, else 0 (not proven)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_verdict", NULL, -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__verdict(void)
{
    return PyModule_Create(&module);
}
