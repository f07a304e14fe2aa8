/* literal.c: CQL constants -> serialized values (docs/cql.md sections 3.6 and 5).
 *
 * Two steps, as Cassandra's Constants.Literal: (1) does the literal kind fit
 * the receiver type at all (else `Invalid <KIND> constant (<text>) for "<col>"
 * of type <type>`), (2) the type's fromString parser (errors are the
 * marshal-layer texts, e.g. `Unable to make int from '3000000000'`).
 *
 * Formats accepted by the parsers:
 *   timestamp  -?digits (ms since epoch) | now |
 *              yyyy-mm-dd[( |T)HH:MM[:SS[.SSS]]][Z|+hh|+hhmm|+hh:mm| zone]
 *              (no zone = UTC; SSS is a millisecond count, as Java's,
 *              so 0..999 only; zones: tzone.c)
 *   date       -?digits (raw unsigned days, 2^31 = epoch) | [+-]yyyy-mm-dd
 *   time       -?digits (ns since midnight) | hh:mm:ss[.f{1,9}]
 *   duration   [-](N unit)+ with y mo w d h m s ms us µs ns | ISO P..Y..M..W..DT..H..M..S | P yyyy-mm-ddThh:mm:ss
 * and vint encoding for duration is Cassandra's VIntCoding (length in the
 * leading one bits of the first byte, big-endian), not LEB128.
 */
#define _GNU_SOURCE
#include "schema_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

const char *sch_lit_kind_name(sch_lit_kind k)
{
    static const char *const n[] = { "STRING", "INTEGER", "FLOAT", "BOOLEAN", "UUID", "HEX", "DURATION" };
    return (unsigned)k < SIB_ARRAY_LEN(n) ? n[k] : "UNKNOWN";
}

/* cql.md section 5: which kinds each native type accepts. */
bool sch_literal_accepted(sch_type_code c, sch_lit_kind k)
{
    switch (k) {
    case SCH_LIT_STRING:
        return c == SCH_T_ASCII || c == SCH_T_VARCHAR || c == SCH_T_INET || c == SCH_T_DATE || c == SCH_T_TIME ||
               c == SCH_T_TIMESTAMP;
    case SCH_LIT_INTEGER:
        return c == SCH_T_TINYINT || c == SCH_T_SMALLINT || c == SCH_T_INT || c == SCH_T_BIGINT ||
               c == SCH_T_VARINT || c == SCH_T_COUNTER || c == SCH_T_FLOAT || c == SCH_T_DOUBLE ||
               c == SCH_T_DECIMAL || c == SCH_T_TIMESTAMP || c == SCH_T_DATE || c == SCH_T_TIME ||
               c == SCH_T_DURATION;
    case SCH_LIT_FLOAT: return c == SCH_T_FLOAT || c == SCH_T_DOUBLE || c == SCH_T_DECIMAL;
    case SCH_LIT_BOOLEAN: return c == SCH_T_BOOLEAN;
    case SCH_LIT_UUID: return c == SCH_T_UUID || c == SCH_T_TIMEUUID;
    case SCH_LIT_HEX: return c == SCH_T_BLOB;
    case SCH_LIT_DURATION: return c == SCH_T_DURATION;
    }
    return false;
}

/* ---- calendar (Howard Hinnant's civil algorithms, proleptic Gregorian) ---- */

int days_from_civil(int64_t y, unsigned m, unsigned d, int64_t *out)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *out = era * 146097 + (int64_t)doe - 719468;
    return 0;
}

void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* ---- small scanners ---- */

typedef struct {
    const char *p, *end;
} scan;

static bool sc_digits(scan *s, size_t minn, size_t maxn, int64_t *v, size_t *count)
{
    size_t n = 0;
    int64_t x = 0;
    while (s->p < s->end && isdigit((unsigned char)*s->p) && n < maxn) {
        x = x * 10 + (*s->p - '0');
        s->p++;
        n++;
    }
    if (count) *count = n;
    *v = x;
    return n >= minn;
}

static bool sc_char(scan *s, char c)
{
    if (s->p < s->end && *s->p == c) { s->p++; return true; }
    return false;
}

/* -?[0-9]+ with int64 overflow detection. */
static bool parse_i64(const char *t, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (t[i] == '-' || t[i] == '+')) neg = t[i++] == '-';
    if (i == n) return false;
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
    for (; i < n; i++) {
        if (!isdigit((unsigned char)t[i])) return false;
        unsigned d = (unsigned)(t[i] - '0');
        if (v > (lim - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static bool is_raw_int(const char *t, size_t n)
{
    size_t i = t[0] == '-' ? 1 : 0;
    if (n == 0 || i == n) return false;
    for (; i < n; i++)
        if (!isdigit((unsigned char)t[i])) return false;
    return true;
}

/* Optional fraction ".f{1,9}" as nanoseconds. */
static bool sc_fraction_ns(scan *s, int64_t *ns)
{
    *ns = 0;
    if (!sc_char(s, '.')) return true;
    int64_t v;
    size_t cnt;
    if (!sc_digits(s, 1, 9, &v, &cnt)) return false;
    for (size_t i = cnt; i < 9; i++) v *= 10;
    *ns = v;
    return true;
}

/* yyyy-mm-dd with optional sign, into days since epoch. */
static bool sc_date(scan *s, int64_t *days)
{
    bool neg = false;
    if (s->p < s->end && (*s->p == '-' || *s->p == '+')) neg = *s->p++ == '-';
    int64_t y, m, d;
    if (!sc_digits(s, 1, 9, &y, NULL) || !sc_char(s, '-') || !sc_digits(s, 1, 2, &m, NULL) || !sc_char(s, '-') ||
        !sc_digits(s, 1, 2, &d, NULL))
        return false;
    if (neg) y = -y;
    if (m < 1 || m > 12 || d < 1 || d > (int64_t)days_in_month(y, (unsigned)m)) return false;
    return days_from_civil(y, (unsigned)m, (unsigned)d, days) == 0;
}

/* Zone suffix in seconds east of UTC; absent = 0. */
static bool sc_zone(scan *s, int64_t *off)
{
    *off = 0;
    if (s->p == s->end) return true;
    if (sc_char(s, 'Z') || sc_char(s, 'z')) return true;
    if (*s->p != '+' && *s->p != '-') return false;
    bool neg = *s->p++ == '-';
    int64_t h, m = 0;
    if (!sc_digits(s, 2, 2, &h, NULL)) return false;
    if (s->p < s->end) {
        sc_char(s, ':');
        if (!sc_digits(s, 2, 2, &m, NULL)) return false;
    }
    if (h > 18 || m > 59) return false;
    *off = (h * 3600 + m * 60) * (neg ? -1 : 1);
    return true;
}

/* Cassandra's TimestampSerializer patterns: yyyy-MM-dd, then optionally
 * ( |T)HH:mm[:ss[.SSS]], then a zone: X forms glued to the text (Z, +hh,
 * +hhmm, +hh:mm) or " z", a general zone after a space (UTC, PST,
 * GMT+01:00, -0800, or a tz database name: tzone.c). As in Java's
 * SimpleDateFormat, SSS is a count of milliseconds (".5" is 5 ms), at most
 * 999. "now" is the current time. */
static bool parse_timestamp_text(const char *t, size_t n, int64_t *ms)
{
    if (n == 3 && strncasecmp(t, "now", 3) == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        *ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        return true;
    }
    scan s = { t, t + n };
    int64_t days, h = 0, mi = 0, sec = 0, msec = 0, off = 0;
    if (!sc_date(&s, &days)) return false;
    if (s.end - s.p > 1 && (*s.p == ' ' || *s.p == 'T') && isdigit((unsigned char)s.p[1])) {
        s.p++;
        if (!sc_digits(&s, 1, 2, &h, NULL) || !sc_char(&s, ':') || !sc_digits(&s, 1, 2, &mi, NULL)) return false;
        if (sc_char(&s, ':')) {
            if (!sc_digits(&s, 1, 2, &sec, NULL)) return false;
            /* SSS is a count of milliseconds, however many digits spell it:
             * ".5" is 5 ms and ".000999" 999 ms; a count past 999 (".1234",
             * or microseconds as ".123000") is refused, as Java's strict
             * parse refuses it. cqlsh prints milliseconds only. */
            if (sc_char(&s, '.') && (!sc_digits(&s, 1, 18, &msec, NULL) || msec > 999)) return false;
        }
        if (h > 23 || mi > 59 || sec > 59) return false;
    }
    int64_t local = days * 86400 + h * 3600 + mi * 60 + sec;
    if (s.p < s.end && *s.p == ' ') {
        s.p++;
        if (!sch_zone_offset(s.p, (size_t)(s.end - s.p), local, &off)) return false;
        s.p = s.end;
    } else if (!sc_zone(&s, &off) || s.p != s.end) {
        return false;
    }
    int64_t secs = local - off;
    if (secs > INT64_MAX / 1000 - 1 || secs < INT64_MIN / 1000 + 1) return false;
    *ms = secs * 1000 + msec;
    return true;
}

static bool parse_time_text(const char *t, size_t n, int64_t *out)
{
    scan s = { t, t + n };
    int64_t h, m, sec, ns;
    if (!sc_digits(&s, 1, 2, &h, NULL) || !sc_char(&s, ':') || !sc_digits(&s, 1, 2, &m, NULL) || !sc_char(&s, ':') ||
        !sc_digits(&s, 1, 2, &sec, NULL) || !sc_fraction_ns(&s, &ns) || s.p != s.end)
        return false;
    if (h > 23 || m > 59 || sec > 59) return false;
    *out = ((h * 60 + m) * 60 + sec) * 1000000000LL + ns;
    return true;
}

/* ---- duration ---- */

static void put_cvint(sib_buf *out, uint64_t v)
{
    int lz = v ? __builtin_clzll(v | 1) : 63;
    int size = (639 - lz * 9) >> 6;
    if (size <= 1) { sib_buf_u8(out, (uint8_t)v); return; }
    uint8_t b[9];
    int extra = size - 1;
    for (int i = size - 1; i >= 0; i--) {
        b[i] = (uint8_t)v;
        v >>= 8;
    }
    b[0] |= (uint8_t)~(0xFF >> extra);
    sib_buf_append(out, b, (size_t)size);
}

void duration_encode(int32_t months, int32_t days, int64_t nanos, sib_buf *out)
{
    put_cvint(out, zigzag_enc(months));
    put_cvint(out, zigzag_enc(days));
    put_cvint(out, zigzag_enc(nanos));
}

static bool add_checked(int64_t *acc, int64_t v, int64_t mul, int64_t lim)
{
    if (mul && v > lim / mul) return false;
    int64_t x = v * mul;
    if (*acc > lim - x) return false;
    *acc += x;
    return true;
}

/* Standard format: (N unit)+, units in decreasing order, each once. */
static bool parse_duration_std(const char *t, size_t n, int64_t *mo, int64_t *dd, int64_t *ns)
{
    static const struct {
        const char *u;
        int field; /* 0 months, 1 days, 2 nanos */
        int64_t mul;
    } units[] = {
        { "y", 0, 12 }, { "mo", 0, 1 }, { "w", 1, 7 }, { "d", 1, 1 },
        { "h", 2, 3600000000000LL }, { "m", 2, 60000000000LL }, { "s", 2, 1000000000LL },
        { "ms", 2, 1000000LL }, { "us", 2, 1000LL }, { "\xc2\xb5s", 2, 1000LL }, { "ns", 2, 1 },
    };
    int64_t acc[3] = { 0, 0, 0 };
    const int64_t lim[3] = { INT32_MAX, INT32_MAX, INT64_MAX };
    int last = -1;
    size_t i = 0;
    if (!n) return false;
    while (i < n) {
        int64_t v = 0;
        size_t st = i;
        while (i < n && isdigit((unsigned char)t[i])) {
            if (v > (INT64_MAX - 9) / 10) return false;
            v = v * 10 + (t[i++] - '0');
        }
        if (i == st) return false;
        /* longest unit match, case-insensitive */
        int best = -1;
        size_t bestlen = 0;
        for (size_t u = 0; u < SIB_ARRAY_LEN(units); u++) {
            size_t ul = strlen(units[u].u);
            if (ul > n - i || ul <= bestlen) continue;
            if (strncasecmp(t + i, units[u].u, ul) == 0) { best = (int)u; bestlen = ul; }
        }
        if (best < 0 || best <= last) return false;
        /* 'm' followed by 'o'/'s' was handled by longest match */
        last = best;
        i += bestlen;
        if (!add_checked(&acc[units[best].field], v, units[best].mul, lim[units[best].field])) return false;
    }
    *mo = acc[0], *dd = acc[1], *ns = acc[2];
    return true;
}

static bool parse_duration_iso(const char *t, size_t n, int64_t *mo, int64_t *dd, int64_t *ns)
{
    int64_t acc[3] = { 0, 0, 0 };
    const int64_t lim[3] = { INT32_MAX, INT32_MAX, INT64_MAX };
    size_t i = 1; /* after 'P' */
    if (n >= 2 && isdigit((unsigned char)t[1]) && memchr(t, '-', n)) {
        /* alternative format P yyyy-mm-ddThh:mm:ss */
        scan s = { t + 1, t + n };
        int64_t y, m, d, h, mi, sec;
        if (!sc_digits(&s, 4, 4, &y, NULL) || !sc_char(&s, '-') || !sc_digits(&s, 2, 2, &m, NULL) ||
            !sc_char(&s, '-') || !sc_digits(&s, 2, 2, &d, NULL) || !sc_char(&s, 'T') ||
            !sc_digits(&s, 2, 2, &h, NULL) || !sc_char(&s, ':') || !sc_digits(&s, 2, 2, &mi, NULL) ||
            !sc_char(&s, ':') || !sc_digits(&s, 2, 2, &sec, NULL) || s.p != s.end)
            return false;
        if (m > 11 || h > 23 || mi > 59 || sec > 59) return false;
        *mo = y * 12 + m;
        *dd = d;
        *ns = ((h * 60 + mi) * 60 + sec) * 1000000000LL;
        return true;
    }
    bool in_time = false, any = false;
    const char *order_date = "YMWD", *order_time = "HMS";
    int last = -1;
    while (i < n) {
        if (t[i] == 'T') {
            if (in_time) return false;
            in_time = true;
            last = -1;
            i++;
            continue;
        }
        int64_t v = 0;
        size_t st = i;
        while (i < n && isdigit((unsigned char)t[i])) {
            if (v > (INT64_MAX - 9) / 10) return false;
            v = v * 10 + (t[i++] - '0');
        }
        if (i == st || i == n) return false;
        const char *ord = in_time ? order_time : order_date;
        const char *pos = strchr(ord, t[i]);
        if (!pos || !t[i] || (int)(pos - ord) <= last) return false;
        last = (int)(pos - ord);
        int field;
        int64_t mul;
        switch (in_time ? 10 + last : last) {
        case 0: field = 0, mul = 12; break;
        case 1: field = 0, mul = 1; break;
        case 2: field = 1, mul = 7; break;
        case 3: field = 1, mul = 1; break;
        case 10: field = 2, mul = 3600000000000LL; break;
        case 11: field = 2, mul = 60000000000LL; break;
        default: field = 2, mul = 1000000000LL; break;
        }
        if (!add_checked(&acc[field], v, mul, lim[field])) return false;
        any = true;
        i++;
    }
    if (!any) return false;
    *mo = acc[0], *dd = acc[1], *ns = acc[2];
    return true;
}

static bool parse_duration(const char *t, size_t n, sib_buf *out)
{
    bool neg = n && t[0] == '-';
    if (neg) t++, n--;
    int64_t mo, dd, ns;
    bool ok = n && t[0] == 'P' ? parse_duration_iso(t, n, &mo, &dd, &ns) : parse_duration_std(t, n, &mo, &dd, &ns);
    if (!ok) return false;
    if (neg) mo = -mo, dd = -dd, ns = -ns;
    duration_encode((int32_t)mo, (int32_t)dd, ns, out);
    return true;
}

/* ---- per-type conversion ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool utf8_valid(const uint8_t *s, size_t n);

static int conv_int(sch_type_code c, const char *t, size_t n, sib_buf *out, sib_err *err)
{
    int64_t v;
    const char *what = c == SCH_T_TINYINT ? "byte" : c == SCH_T_SMALLINT ? "short" : c == SCH_T_INT ? "int" : "long";
    bool ok = parse_i64(t, n, &v);
    if (ok && c == SCH_T_TINYINT) ok = v >= INT8_MIN && v <= INT8_MAX;
    if (ok && c == SCH_T_SMALLINT) ok = v >= INT16_MIN && v <= INT16_MAX;
    if (ok && c == SCH_T_INT) ok = v >= INT32_MIN && v <= INT32_MAX;
    if (!ok) return sib_err_set(err, SIB_EINVAL, "Unable to make %s from '%.*s'", what, (int)n, t);
    switch (c) {
    case SCH_T_TINYINT: sib_buf_u8(out, (uint8_t)(int8_t)v); break;
    case SCH_T_SMALLINT: sib_buf_be16(out, (uint16_t)(int16_t)v); break;
    case SCH_T_INT: sib_buf_be32(out, (uint32_t)(int32_t)v); break;
    default: sib_buf_be64(out, (uint64_t)v); break;
    }
    return 0;
}

static int conv_float(sch_type_code c, const char *t, size_t n, sib_buf *out, sib_err *err)
{
    char tmp[128];
    const char *what = c == SCH_T_FLOAT ? "float" : "double";
    if (n == 0 || n >= sizeof tmp) return sib_err_set(err, SIB_EINVAL, "Unable to make %s from '%.*s'", what, (int)SIB_MIN(n, 200), t);
    memcpy(tmp, t, n);
    tmp[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (tmp[i] == 'x' || tmp[i] == 'X') return sib_err_set(err, SIB_EINVAL, "Unable to make %s from '%s'", what, tmp);
    char *end;
    errno = 0;
    if (c == SCH_T_FLOAT) {
        float f = strtof(tmp, &end);
        if (end != tmp + n) return sib_err_set(err, SIB_EINVAL, "Unable to make float from '%s'", tmp);
        if (isnan(f)) f = NAN;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        sib_buf_be32(out, bits);
    } else {
        double d = strtod(tmp, &end);
        if (end != tmp + n) return sib_err_set(err, SIB_EINVAL, "Unable to make double from '%s'", tmp);
        if (isnan(d)) d = NAN;
        uint64_t bits;
        memcpy(&bits, &d, 8);
        sib_buf_be64(out, bits);
    }
    return 0;
}

static int conv_varint(const char *t, size_t n, sib_buf *out, sib_err *err)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (t[i] == '-' || t[i] == '+')) neg = t[i++] == '-';
    if (i == n) return sib_err_set(err, SIB_EINVAL, "unable to make int from '%.*s'", (int)n, t);
    for (size_t k = i; k < n; k++)
        if (!isdigit((unsigned char)t[k])) return sib_err_set(err, SIB_EINVAL, "unable to make int from '%.*s'", (int)SIB_MIN(n, 200), t);
    while (i + 1 < n && t[i] == '0') i++;
    return big_from_digits(t + i, n - i, neg, out);
}

/* Java BigDecimal(String): [sign] digits [. digits] [e [sign] digits]. */
static int conv_decimal(const char *t, size_t n, sib_buf *out, sib_err *err)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (t[i] == '-' || t[i] == '+')) neg = t[i++] == '-';
    sib_buf digits;
    sib_buf_init(&digits);
    int64_t frac = 0, exp = 0;
    bool seen_dot = false, any = false, ok = true;
    for (; i < n; i++) {
        char ch = t[i];
        if (isdigit((unsigned char)ch)) {
            sib_buf_u8(&digits, (uint8_t)ch);
            if (seen_dot) frac++;
            any = true;
        } else if (ch == '.' && !seen_dot) {
            seen_dot = true;
        } else break;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        ok = parse_i64(t + i, n - i, &exp) && exp > INT32_MIN && exp < INT32_MAX;
        i = n;
    }
    int64_t scale = frac - exp;
    if (!any || i != n || !ok || scale < INT32_MIN || scale > INT32_MAX) {
        sib_buf_free(&digits);
        return sib_err_set(err, SIB_EINVAL, "unable to make BigDecimal from '%.*s'", (int)SIB_MIN(n, 200), t);
    }
    size_t z = 0;
    while (z + 1 < digits.len && digits.p[z] == '0') z++;
    sib_buf_be32(out, (uint32_t)(int32_t)scale);
    int rc = big_from_digits((const char *)digits.p + z, digits.len - z, neg, out);
    sib_buf_free(&digits);
    return rc;
}

static int conv_string(sch_type_code c, const char *t, size_t n, sib_buf *out, sib_err *err)
{
    if (c == SCH_T_ASCII) {
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)t[i] > 127)
                return sib_err_set(err, SIB_EINVAL, "Invalid ASCII character in string literal: %.*s", (int)SIB_MIN(n, 200), t);
    } else if (!utf8_valid((const uint8_t *)t, n)) {
        return sib_err_set(err, SIB_EINVAL, "Invalid UTF-8 in string literal");
    }
    sib_buf_append(out, t, n);
    return 0;
}

static int conv_temporal(sch_type_code c, const char *t, size_t n, sib_buf *out, sib_err *err)
{
    int len = (int)SIB_MIN(n, 200);
    if (n == 0) return 0; /* '' = empty value, as Cassandra's fromString */
    int64_t v;
    if (c == SCH_T_TIMESTAMP) {
        if (is_raw_int(t, n)) {
            if (!parse_i64(t, n, &v)) return sib_err_set(err, SIB_EINVAL, "Unable to make long (for date) from: '%.*s'", len, t);
        } else if (!parse_timestamp_text(t, n, &v)) {
            return sib_err_set(err, SIB_EINVAL, "Unable to coerce '%.*s' to a formatted date (long)", len, t);
        }
        sib_buf_be64(out, (uint64_t)v);
    } else if (c == SCH_T_DATE) {
        if (is_raw_int(t, n)) {
            if (!parse_i64(t, n, &v) || v < 0 || v > (int64_t)UINT32_MAX)
                return sib_err_set(err, SIB_EINVAL, "Unable to make unsigned int (for date) from: '%.*s'", len, t);
            sib_buf_be32(out, (uint32_t)v);
        } else {
            scan s = { t, t + n };
            int64_t days;
            if (!sc_date(&s, &days) || s.p != s.end)
                return sib_err_set(err, SIB_EINVAL, "Unable to coerce '%.*s' to a formatted date (long)", len, t);
            if (days < INT32_MIN || days > INT32_MAX)
                return sib_err_set(err, SIB_EINVAL, "Input date %.*s is out of the supported date range", len, t);
            sib_buf_be32(out, (uint32_t)(days + 2147483648LL));
        }
    } else {
        if (is_raw_int(t, n)) {
            if (!parse_i64(t, n, &v) || v < 0 || v >= 86400000000000LL)
                return sib_err_set(err, SIB_EINVAL, "Unable to make long (for time) from: '%.*s'", len, t);
        } else if (!parse_time_text(t, n, &v)) {
            return sib_err_set(err, SIB_EINVAL, "(TimeType) Unable to coerce '%.*s' to a formatted time (long)", len, t);
        }
        sib_buf_be64(out, (uint64_t)v);
    }
    return 0;
}

static int conv_inet(const char *t, size_t n, sib_buf *out, sib_err *err)
{
    char tmp[64];
    if (n == 0) return 0;
    uint8_t a[16];
    if (n < sizeof tmp) {
        memcpy(tmp, t, n);
        tmp[n] = 0;
        if (inet_pton(AF_INET, tmp, a) == 1) { sib_buf_append(out, a, 4); return 0; }
        if (inet_pton(AF_INET6, tmp, a) == 1) {
            /* Java's InetAddress turns IPv4-mapped IPv6 into the IPv4 address */
            static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };
            if (!memcmp(a, mapped, 12)) sib_buf_append(out, a + 12, 4);
            else sib_buf_append(out, a, 16);
            return 0;
        }
    }
    return sib_err_set(err, SIB_EINVAL, "Unable to make inet address from '%.*s'", (int)SIB_MIN(n, 200), t);
}

static int conv_native(sch_type_code c, sch_lit_kind kind, const char *t, size_t n, sib_buf *out, sib_err *err)
{
    int len = (int)SIB_MIN(n, 200);
    switch (c) {
    case SCH_T_TINYINT: case SCH_T_SMALLINT: case SCH_T_INT: case SCH_T_BIGINT: case SCH_T_COUNTER:
        return conv_int(c, t, n, out, err);
    case SCH_T_FLOAT: case SCH_T_DOUBLE: return conv_float(c, t, n, out, err);
    case SCH_T_VARINT: return conv_varint(t, n, out, err);
    case SCH_T_DECIMAL: return conv_decimal(t, n, out, err);
    case SCH_T_ASCII: case SCH_T_VARCHAR: return conv_string(c, t, n, out, err);
    case SCH_T_TIMESTAMP: case SCH_T_DATE: case SCH_T_TIME: return conv_temporal(c, t, n, out, err);
    case SCH_T_INET: return conv_inet(t, n, out, err);
    case SCH_T_BOOLEAN:
        if (n == 4 && strncasecmp(t, "true", 4) == 0) sib_buf_u8(out, 1);
        else if (n == 5 && strncasecmp(t, "false", 5) == 0) sib_buf_u8(out, 0);
        else return sib_err_set(err, SIB_EINVAL, "Unable to make boolean from '%.*s'", len, t);
        return 0;
    case SCH_T_UUID: case SCH_T_TIMEUUID: {
        uint8_t u[16];
        if (!sib_uuid_parse(t, n, u)) return sib_err_set(err, SIB_EINVAL, "Unable to make UUID from '%.*s'", len, t);
        if (c == SCH_T_TIMEUUID && (u[6] >> 4) != 1)
            return sib_err_set(err, SIB_EINVAL, "TimeUUID supports only version 1 UUIDs");
        sib_buf_append(out, u, 16);
        return 0;
    }
    case SCH_T_BLOB: {
        const char *h = t;
        size_t hn = n;
        if (kind == SCH_LIT_HEX && hn >= 2) h += 2, hn -= 2;
        bool ok = hn % 2 == 0;
        uint8_t *d = ok ? sib_buf_reserve(out, hn / 2 + 1) : NULL;
        if (ok && !d) return SIB_ENOMEM;
        for (size_t i = 0; ok && i < hn; i += 2) {
            int a = hexval((unsigned char)h[i]), b = hexval((unsigned char)h[i + 1]);
            if (a < 0 || b < 0) ok = false;
            else d[i / 2] = (uint8_t)(a << 4 | b);
        }
        if (!ok) return sib_err_set(err, SIB_EINVAL, "cannot parse '%.*s' as hex bytes", (int)SIB_MIN(hn, 200), h);
        out->len += hn / 2;
        return 0;
    }
    case SCH_T_DURATION:
        if (!parse_duration(t, n, out)) return sib_err_set(err, SIB_EINVAL, "Unable to convert '%.*s' to a duration", len, t);
        return 0;
    default: return sib_err_set(err, SIB_EINVAL, "Unsupported type for a constant");
    }
}

int sch_value_from_literal(const sch_type *t, sch_lit_kind kind, const char *text, size_t len,
                           const char *column_name, sib_buf *out, sib_err *err)
{
    if (!type_is_native(t) || !sch_literal_accepted(t->code, kind)) {
        sib_buf tn;
        sib_buf_init(&tn);
        sch_type_cql_name(t, &tn);
        sib_buf_u8(&tn, 0);
        int rc = sib_err_set(err, SIB_EINVAL, "Invalid %s constant (%.*s) for \"%s\" of type %s", sch_lit_kind_name(kind),
                             (int)SIB_MIN(len, 200), text, column_name ? column_name : "", tn.oom ? "?" : (char *)tn.p);
        sib_buf_free(&tn);
        return rc;
    }
    size_t mark = out->len;
    int rc = conv_native(t->code, kind, text, len, out, err);
    if (rc) out->len = mark;
    else if (out->oom) rc = sib_err_set(err, SIB_ENOMEM, "out of memory");
    return rc;
}

static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t k;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) k = 1, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0) k = 2, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0) k = 3, cp = c & 0x07;
        else return false;
        if (n - i <= k) return false; /* truncated sequence */
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

bool sch_utf8_valid(const uint8_t *s, size_t n) { return utf8_valid(s, n); }
