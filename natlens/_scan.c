/*
 * natlens._scan: an exact reader of storage-account PT1H.json JSON Lines.
 *
 * One pass over a file's bytes gives the columns natlens validates: the time, the three
 * IPs and the resource id as the text the file holds, and the six counters as exact
 * integers. It is typed and strict at once: a counter is taken only when it is written as
 * a plain JSON integer below 2**63, never through a conversion (DuckDB's typed read turns
 * 1.5 into 2 and true into 1, which is why natlens's other fast path reads text).
 *
 * It only ever reads what it is sure of. Anything else makes it decline the whole file
 * (scan() returns None) and natlens reads that file the way it did before, where every
 * rule and every report lives: a bad or respelt value, a missing field, a record of
 * another category, a blank line, an escape or a byte outside ASCII in any string,
 * nesting deeper than 64, a duplicate key, a line that is not one JSON object. The one
 * fault it reads past is a torn last line (the current hour's blob is still being
 * appended to): it returns the lines before it and where the torn one starts.
 *
 * What it can tell at a glance is good by natlens's rules it says so, and natlens takes it
 * as it is: a time in the storage account's own spelling, in the years natlens takes
 * (parsed here), and IP text already canonical (IPv4, hexadecimal IPv6). Everything else
 * (another time spelling, padded or upper-case IPs, mixed notation) is checked by
 * natlens's own rules (natlens._files._validated) on the text returned here, so the rules
 * stay in one place. tests/test_exact_reader.py holds each shortcut to those rules.
 *
 * Before changing this file, also run that test module and its soak (-m slow) with the
 * reader compiled with -fsanitize=address,undefined (LD_PRELOAD the sanitizer runtimes,
 * ASAN_OPTIONS=detect_leaks=0).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { S_TIME, S_RESOURCE, S_SOURCE, S_DESTINATION, S_NAT, N_STRINGS };
enum { N_COUNTERS = 6 };
/* Keys, in the order scan() takes their spellings. */
enum { K_TIME, K_RESOURCE, K_SOURCE, K_DESTINATION, K_NAT, K_COUNTER0, N_KEYS = K_COUNTER0 + N_COUNTERS };
enum { K_PROPERTIES = N_KEYS, K_CATEGORY, K_UNKNOWN };
#define MAX_DEPTH 64
#define MAX_KNOWN 64

typedef struct {
    const char *key[N_KEYS];
    size_t key_len[N_KEYS];
    const char *known[MAX_KNOWN]; /* every spelling natlens knows, lower case */
    size_t known_len[MAX_KNOWN];
    int n_known;
    const char *category;
    size_t category_len;
    const char *gateway; /* NULL: none */
    size_t gateway_len;
    int nested; /* fields under "properties" (storage account) or at the top */
} Spec;

typedef struct {
    const char *at[N_STRINGS];
    size_t len[N_STRINGS];
    int seen[N_KEYS];
    int properties; /* "properties" met */
    uint64_t count[N_COUNTERS];
    int count_null[N_COUNTERS];
} Row;

typedef struct {
    const Spec *spec;
    const char *end;
    Row row;
    int next[2];        /* per level: the key expected next (files keep one key order) */
    char unknown[32];   /* the last key found unknown and no spelling of a field */
    size_t unknown_len;
} Parser;

/* ------------------------------------------------------------------ JSON tokens */

static inline const char *ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    return p;
}

/* A string without escapes, all ASCII, no control bytes: p at the opening quote.
 * Sets text and len to its content; returns the byte after the closing quote, or NULL. */
static inline const char *plain_string(const char *p, const char *end, const char **text,
                                       size_t *len) {
    const char *start = ++p;
    const char *close = memchr(start, '"', (size_t)(end - start));
    if (close == NULL) return NULL;
    /* No escape (an escaped quote shows as one), no control byte, nothing beyond ASCII:
     * checked without a branch per byte, which the compiler turns into vector code. */
    unsigned bad = 0;
    for (const unsigned char *u = (const unsigned char *)start; u < (const unsigned char *)close;
         u++)
        bad |= (unsigned)(*u == '\\') | (unsigned)(*u < 0x20) | (unsigned)(*u >= 0x80);
    if (bad) return NULL;
    *text = start;
    *len = (size_t)(close - start);
    return close + 1;
}

/* A member's key and its colon, p at the key's opening quote: the start of its value. */
static inline const char *member(const char *p, const char *end, const char **key, size_t *len) {
    if (p >= end || *p != '"') return NULL;
    p = plain_string(p, end, key, len);
    if (p == NULL) return NULL;
    p = ws(p, end);
    if (p >= end || *p != ':') return NULL;
    return ws(p + 1, end);
}

static const char *skip_value(const char *p, const char *end, int depth);

static const char *skip_number(const char *p, const char *end) {
    if (p < end && *p == '-') p++;
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    return p;
}

static const char *skip_literal(const char *p, const char *end, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(end - p) < n || memcmp(p, word, n) != 0) return NULL;
    return p + n;
}

static const char *skip_value(const char *p, const char *end, int depth) {
    const char *text;
    size_t len;
    if (p >= end) return NULL;
    switch (*p) {
    case '"':
        return plain_string(p, end, &text, &len);
    case '{':
    case '[': {
        char close = *p == '{' ? '}' : ']';
        int object = *p == '{';
        if (depth >= MAX_DEPTH) return NULL;
        p = ws(p + 1, end);
        if (p < end && *p == close) return p + 1;
        for (;;) {
            if (object && (p = member(p, end, &text, &len)) == NULL) return NULL;
            p = skip_value(p, end, depth + 1);
            if (p == NULL) return NULL;
            p = ws(p, end);
            if (p >= end) return NULL;
            if (*p == close) return p + 1;
            if (*p != ',') return NULL;
            p = ws(p + 1, end);
        }
    }
    case 't':
        return skip_literal(p, end, "true");
    case 'f':
        return skip_literal(p, end, "false");
    case 'n':
        return skip_literal(p, end, "null");
    default:
        return skip_number(p, end);
    }
}

/* ------------------------------------------------------------------ one record */

static int is_known(const Spec *spec, const char *key, size_t len) {
    char lower[64];
    if (memchr(key, '[', len) != NULL) return 1; /* "time [UTC]": a spelling, to be safe */
    if (len > sizeof lower) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    for (int i = 0; i < spec->n_known; i++)
        if (spec->known_len[i] == len && memcmp(spec->known[i], lower, len) == 0) return 1;
    return 0;
}

/* Which key this is at the top (level 0) or under "properties" (level 1). */
static int key_of(const Spec *spec, int level, const char *key, size_t len, int hint) {
    int first = 0, last = N_KEYS;
    if (spec->nested) {
        if (level == 0) {
            last = K_SOURCE; /* time and resource id at the top */
            if (len == 10 && memcmp(key, "properties", 10) == 0) return K_PROPERTIES;
        } else {
            first = K_SOURCE;
        }
    }
    /* the key after the last one matched at this level, first: files keep one order */
    if (hint >= first && hint < last && spec->key_len[hint] == len &&
        memcmp(spec->key[hint], key, len) == 0)
        return hint;
    for (int k = first; k < last; k++)
        if (spec->key_len[k] == len && memcmp(spec->key[k], key, len) == 0) return k;
    if (level == 0 && len == 8 && memcmp(key, "category", 8) == 0) return K_CATEGORY;
    return K_UNKNOWN;
}

/* A counter: a plain JSON integer below 2**63, or null. */
static const char *counter(const char *p, const char *end, uint64_t *value, int *null) {
    if (p < end && *p == 'n') {
        *null = 1;
        return skip_literal(p, end, "null");
    }
    if (p >= end || *p < '0' || *p > '9') return NULL;
    if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9') return NULL;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_C(0x7fffffffffffffff) - d) / 10) return NULL; /* 2**63 or more */
        v = v * 10 + d;
        p++;
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return NULL;
    *value = v;
    *null = 0;
    return p;
}

static const char *object(Parser *ps, const char *p, int level) {
    const Spec *spec = ps->spec;
    const char *end = ps->end;
    Row *row = &ps->row;
    const char *key;
    size_t key_len;
    if (p >= end || *p != '{') return NULL;
    p = ws(p + 1, end);
    if (p < end && *p == '}') return p + 1;
    for (;;) {
        p = member(p, end, &key, &key_len);
        if (p == NULL) return NULL;
        int k = key_of(spec, level, key, key_len, ps->next[level > 0]);
        if (k < N_KEYS) ps->next[level > 0] = k + 1;
        if (k < N_KEYS) {
            if (row->seen[k]) return NULL; /* a duplicate key: which one counts is moot */
            row->seen[k] = 1;
            if (k >= K_COUNTER0) {
                int c = k - K_COUNTER0;
                p = counter(p, end, &row->count[c], &row->count_null[c]);
            } else if (k == K_RESOURCE && p < end && *p == 'n') {
                row->seen[k] = 0; /* null: as if absent */
                p = skip_literal(p, end, "null");
            } else if (p < end && *p == '"') {
                p = plain_string(p, end, &row->at[k], &row->len[k]);
            } else {
                return NULL; /* a time, an IP or a resource id that is not text */
            }
        } else if (k == K_PROPERTIES) {
            if (row->properties++) return NULL; /* twice */
            p = object(ps, p, 1);
        } else if (k == K_CATEGORY) {
            const char *text;
            size_t len;
            if (p >= end || *p != '"') return NULL;
            p = plain_string(p, end, &text, &len);
            if (p == NULL || len != spec->category_len || memcmp(text, spec->category, len) != 0)
                return NULL; /* another category: natlens reports it */
        } else {
            int seen_before = key_len == ps->unknown_len && memcmp(ps->unknown, key, key_len) == 0;
            if (!seen_before) {
                if (is_known(spec, key, key_len)) return NULL; /* another spelling of a field */
                if (key_len <= sizeof ps->unknown) {
                    memcpy(ps->unknown, key, key_len);
                    ps->unknown_len = key_len;
                }
            }
            if (!spec->nested && key_len == 10 && memcmp(key, "properties", 10) == 0)
                return NULL; /* fields in both places */
            p = skip_value(p, end, level + 1);
        }
        if (p == NULL) return NULL;
        p = ws(p, end);
        if (p >= end) return NULL;
        if (*p == '}') return p + 1;
        if (*p != ',') return NULL;
        p = ws(p + 1, end);
    }
}

/* ------------------------------------------------------------------ columns */

/* Arrow string views: 16 bytes a row, the text inline up to 12 bytes, else in `data`. */
typedef struct {
    uint8_t *views;
    char *data;
    size_t len, cap;
    uint8_t *valid; /* Arrow validity bitmap */
    int64_t nulls;
} ViewCol;

static int push_view(ViewCol *col, int64_t row, const char *text, size_t len) {
    uint8_t *view = col->views + row * 16;
    int32_t n = (int32_t)len;
    memcpy(view, &n, 4);
    if (len <= 12) {
        memcpy(view + 4, text, len); /* the rest stays zero (calloc) */
    } else {
        if (col->len + len > col->cap) {
            size_t cap = col->cap ? col->cap : 65536;
            while (cap < col->len + len) cap *= 2;
            if (cap > INT32_MAX) return -1; /* offsets are int32; windows keep far below */
            char *data = realloc(col->data, cap);
            if (data == NULL) return -1;
            col->data = data;
            col->cap = cap;
        }
        int32_t buffer = 0, offset = (int32_t)col->len;
        memcpy(view + 4, text, 4);
        memcpy(view + 8, &buffer, 4);
        memcpy(view + 12, &offset, 4);
        memcpy(col->data + col->len, text, len);
        col->len += len;
    }
    col->valid[row >> 3] |= (uint8_t)(1u << (row & 7));
    return 0;
}

/* natlens's canonical IPv4 text (_schema._CANONICAL_V4): four decimal parts 0-255, no
 * leading zeros, nothing else. Anything else is left to natlens's Python check. */
static int canonical_v4(const char *s, size_t n) {
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (i >= n || s[i] != '.') return 0;
            i++;
        }
        size_t first = i;
        int value = 0;
        while (i < n && i - first < 3 && s[i] >= '0' && s[i] <= '9') value = value * 10 + (s[i++] - '0');
        size_t digits = i - first;
        if (digits == 0 || (digits > 1 && s[first] == '0') || value > 255) return 0;
    }
    return i == n;
}

static inline int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* natlens's canonical IPv6 text (_schema.canonical_ip): RFC 5952, lower case, no leading
 * zeros, the first longest run of two or more zero groups as "::". Only hexadecimal text:
 * an address natlens writes in mixed notation (::ffff:0:0/96, 64:ff9b::/96), or any text
 * with a dot or a zone, is left to natlens's Python check. Checked by writing the address
 * out canonically and comparing. */
static int canonical_v6(const char *s, size_t n) {
    unsigned groups[8];
    int count = 0, gap = -1;
    size_t i = 0;
    if (n < 2 || n > 39) return 0;
    if (s[0] == ':') {
        if (s[1] != ':') return 0;
        gap = 0;
        i = 2;
    }
    while (i < n) {
        size_t start = i;
        unsigned value = 0;
        int d;
        while (i < n && i - start < 5 && (d = hex_digit(s[i])) >= 0) {
            value = value * 16 + (unsigned)d;
            i++;
        }
        if (i == start || i - start > 4 || count == 8) return 0;
        groups[count++] = value;
        if (i == n) break;
        if (s[i] != ':' || ++i == n) return 0;
        if (s[i] == ':') {
            if (gap >= 0) return 0;
            gap = count;
            i++;
        }
    }
    unsigned full[8] = {0};
    if (gap < 0) {
        if (count != 8) return 0;
        memcpy(full, groups, sizeof full);
    } else {
        if (count > 7) return 0;
        for (int k = 0; k < gap; k++) full[k] = groups[k];
        for (int k = gap; k < count; k++) full[8 - count + k] = groups[k];
    }
    if (!full[0] && !full[1] && !full[2] && !full[3] && !full[4] && full[5] == 0xffff) return 0;
    if (full[0] == 0x64 && full[1] == 0xff9b && !full[2] && !full[3] && !full[4] && !full[5])
        return 0;
    int best = -1, best_len = 1;
    for (int k = 0; k < 8;) {
        if (full[k]) {
            k++;
            continue;
        }
        int run = k;
        while (k < 8 && !full[k]) k++;
        if (k - run > best_len) {
            best = run;
            best_len = k - run;
        }
    }
    char out[48];
    size_t len = 0;
    for (int k = 0; k < 8; k++) {
        if (k == best) {
            out[len++] = ':';
            if (k == 0) out[len++] = ':';
            k += best_len - 1;
            continue;
        }
        len += (size_t)snprintf(out + len, sizeof out - len, "%x", full[k]);
        if (k < 7) out[len++] = ':';
    }
    return len == n && memcmp(out, s, n) == 0;
}

static inline int digits(const char *s, int n, int *value) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *value = v;
    return 1;
}

/* The storage account's time text, YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z, in the years natlens
 * takes (2000-2099), as microseconds since 1970 (further digits cut, as polars does).
 * Anything else (another spelling, a day that does not exist) is left to natlens's
 * Python check, which reads every accepted spelling and says what is wrong. */
static int azure_time(const char *s, size_t n, int64_t *us) {
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int year, month, day, hour, minute, second;
    if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        return 0;
    if (!digits(s, 4, &year) || !digits(s + 5, 2, &month) || !digits(s + 8, 2, &day) ||
        !digits(s + 11, 2, &hour) || !digits(s + 14, 2, &minute) || !digits(s + 17, 2, &second))
        return 0;
    if (year < 2000 || year > 2099 || month < 1 || month > 12 || hour > 23 || minute > 59 ||
        second > 59)
        return 0;
    int leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    if (day < 1 || day > month_days[month - 1] + (month == 2 && leap)) return 0;
    int64_t fraction = 0;
    size_t i = 19;
    if (s[i] == '.') {
        size_t first = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (i - first < 6) fraction = fraction * 10 + (s[i] - '0');
            i++;
        }
        size_t count = i - first;
        if (count < 1 || count > 9) return 0;
        for (size_t k = count; k < 6; k++) fraction *= 10;
    }
    if (i + 1 != n || s[i] != 'Z') return 0;
    /* days since 1970-01-01 (H. Hinnant's days_from_civil) */
    int y = year - (month <= 2);
    int era = y / 400;
    int yoe = y - era * 400;
    int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    *us = ((days * 86400 + hour * 3600 + minute * 60 + second) * INT64_C(1000000)) + fraction;
    return 1;
}

/* Where the output goes: buffers of Python bytes objects made before the scan (sized by
 * the window's newlines, so nothing is copied after), and text spans kept for the time,
 * whose text is only returned when a time is left to Python. */
typedef struct {
    ViewCol text[N_STRINGS];
    const char **time_at;
    size_t *time_len;
    int64_t *times;
    int64_t odd_times;                /* rows whose time azure_time() left to Python */
    int64_t odd_ips[3];               /* IPs per column that are not canonical IPv4 */
    int64_t *count[N_COUNTERS];
    uint8_t *count_valid[N_COUNTERS]; /* Arrow validity bitmaps */
    int64_t count_nulls[N_COUNTERS];
    int64_t rows, bound; /* bound: the rows there is room for */
    int64_t torn_at, torn_line; /* -1: the last line is whole */
} Result;

/* 0: read; 1: declined; -1: out of memory. */
static int scan_bytes(const Spec *spec, const char *data, size_t size, Result *r) {
    Parser ps = {.spec = spec, .end = data + size};
    const char *p = data, *end = data + size;
    int64_t line = 0, row = 0;
    r->torn_at = r->torn_line = -1;
    while (p < end) {
        const char *start = p;
        line++;
        memset(&ps.row, 0, sizeof ps.row);
        const char *q = object(&ps, ws(p, end), 0);
        if (q != NULL) q = ws(q, end);
        int whole = q != NULL && (q == end || *q == '\n');
        if (!whole) {
            if (memchr(start, '\n', size - (size_t)(start - data)) != NULL)
                return 1; /* a bad line that is not the torn last one */
            if (ws(start, end) == end) break; /* trailing blanks */
            r->torn_at = start - data;
            r->torn_line = line;
            break;
        }
        Row *v = &ps.row;
        for (int k = 0; k < N_KEYS; k++)
            if (!v->seen[k] && k != K_RESOURCE && k < K_COUNTER0) return 1; /* missing */
        if (row >= r->bound) return 1; /* cannot be: every row takes the shortest record's bytes */
        r->time_at[row] = v->at[S_TIME];
        r->time_len[row] = v->len[S_TIME];
        if (!azure_time(v->at[S_TIME], v->len[S_TIME], &r->times[row])) {
            r->times[row] = 0;
            r->odd_times++;
        }
        size_t len = v->len[S_RESOURCE];
        if (v->seen[K_RESOURCE] &&
            !(spec->gateway != NULL && len == spec->gateway_len &&
              memcmp(v->at[S_RESOURCE], spec->gateway, len) == 0)) {
            if (push_view(&r->text[S_RESOURCE], row, v->at[S_RESOURCE], len) != 0) return -1;
        } else {
            r->text[S_RESOURCE].nulls++; /* none, or the path's gateway: filled in by natlens */
        }
        for (int s = S_SOURCE; s <= S_NAT; s++) {
            if (!canonical_v4(v->at[s], v->len[s]) && !canonical_v6(v->at[s], v->len[s]))
                r->odd_ips[s - S_SOURCE]++;
            if (push_view(&r->text[s], row, v->at[s], v->len[s]) != 0) return -1;
        }
        for (int c = 0; c < N_COUNTERS; c++) {
            int absent = !v->seen[K_COUNTER0 + c] || v->count_null[c];
            r->count[c][row] = absent ? 0 : (int64_t)v->count[c];
            if (absent)
                r->count_nulls[c]++;
            else
                r->count_valid[c][row >> 3] |= (uint8_t)(1u << (row & 7));
        }
        row++;
        if (q == end) break;
        p = q + 1;
        const char *blank = ws(p, end);
        if (blank < end && *blank == '\n') { /* blank lines: only at the end of the window */
            for (; blank < end; blank++)
                if (*blank != ' ' && *blank != '\t' && *blank != '\r' && *blank != '\n') return 1;
            break;
        }
    }
    r->rows = row;
    if (r->odd_times) /* the time's text, for natlens's Python check */
        for (int64_t i = 0; i < row; i++)
            if (push_view(&r->text[S_TIME], i, r->time_at[i], r->time_len[i]) != 0) return -1;
    return 0;
}

/* ------------------------------------------------------------------ Python */

static PyObject *bytes_of(const void *data, size_t len) {
    return PyBytes_FromStringAndSize(len ? (const char *)data : "", (Py_ssize_t)len);
}

static int text_arg(PyObject *obj, const char **text, size_t *len) {
    Py_ssize_t n;
    *text = PyUnicode_AsUTF8AndSize(obj, &n);
    if (*text == NULL) return -1;
    *len = (size_t)n;
    return 0;
}

PyDoc_STRVAR(scan_doc,
    "scan(data, keys, known, category, gateway, nested) -> tuple | None\n\n"
    "Read storage-account JSON Lines bytes exactly; None when natlens must read them\n"
    "its other ways. keys: the 11 spellings (time, resource id, source, destination and\n"
    "NAT IP, the six counters); known: every spelling natlens knows, lower case;\n"
    "category: the one accepted; gateway: the id of the blob's path (a resource id equal\n"
    "to it comes back null), or None; nested: fields under \"properties\".\n\n"
    "Returns (rows, torn_at, torn_line, texts, times, odd_times, odd_ips, counters,\n"
    "newlines): the rows are the window's first lines (blank lines may only follow them);\n"
    "texts, for the time, resource id and three IPs, are (views, data, validity, nulls)\n"
    "as Arrow string views; times are int64 microseconds (0 where odd); odd_times counts\n"
    "the times left to natlens's Python check, odd_ips the IPs per column that are not\n"
    "canonical IPv4; counters are (values, validity, nulls) of int64. torn_at is the\n"
    "byte where a torn last line starts, or -1; newlines counts the window's lines.");

/* A zeroed bytes object of n bytes, its buffer in *at; NULL on failure. */
static PyObject *zeroed(size_t n, void *at) {
    PyObject *obj = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (obj == NULL) return NULL;
    memset(PyBytes_AS_STRING(obj), 0, n);
    *(void **)at = PyBytes_AS_STRING(obj);
    return obj;
}

/* Cut a bytes object made by zeroed() to its first n bytes; -1 on failure. */
static int cut(PyObject **obj, size_t n) {
    if ((size_t)PyBytes_GET_SIZE(*obj) == n) return 0;
    return _PyBytes_Resize(obj, (Py_ssize_t)n);
}

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer buffer;
    PyObject *keys, *known, *category, *gateway;
    int nested;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*O!O!UOp", &buffer, &PyTuple_Type, &keys, &PyTuple_Type,
                          &known, &category, &gateway, &nested))
        return NULL;
    Spec spec = {.nested = nested};
    PyObject *out = NULL;
    /* views[s], valid[s] for the text columns; times; count[c], count_valid[c] */
    PyObject *views[N_STRINGS] = {NULL}, *valid[N_STRINGS] = {NULL}, *times = NULL;
    PyObject *count[N_COUNTERS] = {NULL}, *count_valid[N_COUNTERS] = {NULL};
    Result r;
    memset(&r, 0, sizeof r);
    if (PyTuple_GET_SIZE(keys) != N_KEYS || PyTuple_GET_SIZE(known) > MAX_KNOWN) {
        PyErr_SetString(PyExc_ValueError, "scan: 11 keys and at most 64 known spellings");
        goto done;
    }
    for (int k = 0; k < N_KEYS; k++)
        if (text_arg(PyTuple_GET_ITEM(keys, k), &spec.key[k], &spec.key_len[k]) != 0) goto done;
    spec.n_known = (int)PyTuple_GET_SIZE(known);
    for (int k = 0; k < spec.n_known; k++)
        if (text_arg(PyTuple_GET_ITEM(known, k), &spec.known[k], &spec.known_len[k]) != 0)
            goto done;
    if (text_arg(category, &spec.category, &spec.category_len) != 0) goto done;
    if (gateway != Py_None && text_arg(gateway, &spec.gateway, &spec.gateway_len) != 0)
        goto done;

    const char *data = buffer.buf;
    size_t size = (size_t)buffer.len;
    size_t bound = 1; /* rows: at most one per line */
    for (const char *q = data; (q = memchr(q, '\n', size - (size_t)(q - data))) != NULL; q++)
        bound++;
    size_t newlines = bound - 1;
    /* and at most one per shortest record: {"time":"","SourceIp":"",...} with the four
     * required keys, so that a window of blank lines does not ask for gigabytes */
    size_t shortest = 2;
    for (int k = 0; k < N_KEYS; k++)
        if (k == K_TIME || k == K_SOURCE || k == K_DESTINATION || k == K_NAT)
            shortest += spec.key_len[k] + 5;
    if (bound > size / shortest + 1) bound = size / shortest + 1;
    r.bound = (int64_t)bound;
    size_t bitmap = (bound + 7) / 8;
    for (int s = 0; s < N_STRINGS; s++) {
        if (s == S_TIME) { /* rarely needed: C memory, copied out when it is */
            r.text[s].views = calloc(bound, 16);
            r.text[s].valid = calloc(bitmap, 1);
            if (r.text[s].views == NULL || r.text[s].valid == NULL) goto nomemory;
            continue;
        }
        views[s] = zeroed(bound * 16, &r.text[s].views);
        valid[s] = zeroed(bitmap, &r.text[s].valid);
        if (views[s] == NULL || valid[s] == NULL) goto done;
    }
    times = zeroed(bound * sizeof(int64_t), &r.times);
    if (times == NULL) goto done;
    for (int c = 0; c < N_COUNTERS; c++) {
        count[c] = zeroed(bound * sizeof(int64_t), &r.count[c]);
        count_valid[c] = zeroed(bitmap, &r.count_valid[c]);
        if (count[c] == NULL || count_valid[c] == NULL) goto done;
    }
    r.time_at = malloc(bound * sizeof(const char *));
    r.time_len = malloc(bound * sizeof(size_t));
    if (r.time_at == NULL || r.time_len == NULL) goto nomemory;

    int status;
    Py_BEGIN_ALLOW_THREADS
    status = scan_bytes(&spec, data, size, &r);
    Py_END_ALLOW_THREADS
    if (status < 0) goto nomemory;
    if (status > 0) {
        out = Py_NewRef(Py_None);
        goto done;
    }
    size_t rows = (size_t)r.rows, rows_bitmap = (rows + 7) / 8;
    PyObject *texts = PyTuple_New(N_STRINGS), *counters = PyTuple_New(N_COUNTERS);
    if (texts == NULL || counters == NULL) {
        Py_XDECREF(texts);
        Py_XDECREF(counters);
        goto done;
    }
    for (int s = 0; s < N_STRINGS; s++) {
        ViewCol *col = &r.text[s];
        PyObject *v, *b;
        if (s == S_TIME) {
            v = bytes_of(col->views, rows * 16);
            b = bytes_of(col->valid, rows_bitmap);
        } else {
            if (cut(&views[s], rows * 16) != 0 || cut(&valid[s], rows_bitmap) != 0) {
                Py_DECREF(texts);
                Py_DECREF(counters);
                goto done;
            }
            v = views[s];
            b = valid[s];
            views[s] = valid[s] = NULL; /* the tuple owns them now */
        }
        PyTuple_SET_ITEM(texts, s,
                         Py_BuildValue("(NNNL)", v, bytes_of(col->data, col->len), b,
                                       (long long)col->nulls));
    }
    for (int c = 0; c < N_COUNTERS; c++) {
        if (cut(&count[c], rows * sizeof(int64_t)) != 0 || cut(&count_valid[c], rows_bitmap) != 0) {
            Py_DECREF(texts);
            Py_DECREF(counters);
            goto done;
        }
        PyTuple_SET_ITEM(counters, c,
                         Py_BuildValue("(NNL)", count[c], count_valid[c],
                                       (long long)r.count_nulls[c]));
        count[c] = count_valid[c] = NULL;
    }
    if (cut(&times, rows * sizeof(int64_t)) != 0) {
        Py_DECREF(texts);
        Py_DECREF(counters);
        goto done;
    }
    out = Py_BuildValue("(LLLNNL(LLL)NL)", (long long)r.rows, (long long)r.torn_at,
                        (long long)r.torn_line, texts, times, (long long)r.odd_times,
                        (long long)r.odd_ips[0], (long long)r.odd_ips[1],
                        (long long)r.odd_ips[2], counters, (long long)newlines);
    times = NULL;
    goto done;
nomemory:
    PyErr_NoMemory();
done:
    for (int s = 0; s < N_STRINGS; s++) {
        free(r.text[s].data);
        if (s == S_TIME) {
            free(r.text[s].views);
            free(r.text[s].valid);
        }
        Py_XDECREF(views[s]);
        Py_XDECREF(valid[s]);
    }
    for (int c = 0; c < N_COUNTERS; c++) {
        Py_XDECREF(count[c]);
        Py_XDECREF(count_valid[c]);
    }
    Py_XDECREF(times);
    free(r.time_at);
    free(r.time_len);
    PyBuffer_Release(&buffer);
    return out;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "natlens._scan",
    "An exact reader of storage-account PT1H.json JSON Lines (see _scan.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }
