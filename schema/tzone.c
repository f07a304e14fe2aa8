/* tzone.c: the zone part of a timestamp literal ('2011-02-03 04:05 UTC').
 *
 * Cassandra parses timestamps with SimpleDateFormat patterns ending in " z"
 * (a general time zone): a zone abbreviation ("UTC", "PST", "CEST"), a
 * "GMT+hh:mm" offset, or an RFC 822 "-0800" offset. Abbreviations resolve to
 * a fixed offset, as Java does (PDT is always -07:00). Sibyl also accepts a
 * tz database name ("Europe/Paris"), read from the system's tzdata
 * (/usr/share/zoneinfo, TZif format, RFC 8536): its offset is the one in
 * force at that local time.
 */
#include "schema_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#define ZONEINFO_DIR "/usr/share/zoneinfo/"
#define TZIF_MAX (256 * 1024)

/* Java's short zone names (English locale) and their fixed offsets, minutes. */
static const struct {
    const char *name;
    int minutes;
} abbrevs[] = {
    {"UTC", 0},     {"UT", 0},      {"GMT", 0},     {"Z", 0},        {"WET", 0},     {"WEST", 60},
    {"BST", 60},    {"CET", 60},    {"CEST", 120},  {"MET", 60},     {"MEST", 120},  {"EET", 120},
    {"EEST", 180},  {"MSK", 180},   {"IST", 330},   {"JST", 540},    {"KST", 540},   {"HKT", 480},
    {"AEST", 600},  {"AEDT", 660},  {"ACST", 570},  {"AWST", 480},   {"NZST", 720},  {"NZDT", 780},
    {"EST", -300},  {"EDT", -240},  {"CST", -360},  {"CDT", -300},   {"MST", -420},  {"MDT", -360},
    {"PST", -480},  {"PDT", -420},  {"AKST", -540}, {"AKDT", -480},  {"HST", -600},  {"AST", -240},
    {"NST", -210},  {"NDT", -150},
};

static bool word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

/* [+-]h[h][[:]mm] -> seconds east of UTC. */
static bool parse_offset(const char *s, size_t n, int64_t *off)
{
    if (n < 2 || (s[0] != '+' && s[0] != '-')) return false;
    int sign = s[0] == '-' ? -1 : 1;
    size_t i = 1, hd = 0;
    int h = 0, m = 0;
    while (i < n && isdigit((unsigned char)s[i]) && hd < 2) h = h * 10 + (s[i++] - '0'), hd++;
    if (!hd) return false;
    if (i < n && s[i] == ':') i++;
    if (i < n) {
        if (n - i != 2 || !isdigit((unsigned char)s[i]) || !isdigit((unsigned char)s[i + 1])) return false;
        m = (s[i] - '0') * 10 + (s[i + 1] - '0');
    }
    if (h > 23 || m > 59) return false;
    *off = sign * (h * 3600 + m * 60);
    return true;
}

/* ---- TZif ---- */

typedef struct tzif {
    size_t ntimes, ntypes;
    const uint8_t *times; /* ntimes * tsize, big endian */
    const uint8_t *idx;   /* ntimes type indexes */
    const uint8_t *types; /* ntypes * 6: be32 utoff, isdst, desigidx */
    size_t tsize;
} tzif;

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Parses the header at p; on success the data block follows and *next is
 * just past it. */
static bool tzif_block(const uint8_t *p, size_t len, size_t tsize, tzif *z, size_t *next)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0) return false;
    size_t isut = be32(p + 20), isstd = be32(p + 24), leap = be32(p + 28), ntimes = be32(p + 32),
           ntypes = be32(p + 36), nchars = be32(p + 40);
    if (ntypes == 0 || ntypes > 256 || ntimes > TZIF_MAX || leap > TZIF_MAX || nchars > TZIF_MAX) return false;
    size_t need = 44 + ntimes * tsize + ntimes + ntypes * 6 + nchars + leap * (tsize + 4) + isstd + isut;
    if (need > len) return false;
    z->ntimes = ntimes;
    z->ntypes = ntypes;
    z->tsize = tsize;
    z->times = p + 44;
    z->idx = z->times + ntimes * tsize;
    z->types = z->idx + ntimes;
    *next = need;
    return true;
}

static int64_t tz_time(const tzif *z, size_t i)
{
    const uint8_t *p = z->times + i * z->tsize;
    if (z->tsize == 4) return (int32_t)be32(p);
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* UTC offset in force at instant t (seconds). Before the first transition:
 * the first type, as RFC 8536 says for version 1 data. */
static int64_t tz_offset_at(const tzif *z, int64_t t)
{
    size_t lo = 0, hi = z->ntimes; /* first transition > t */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tz_time(z, mid) <= t) lo = mid + 1;
        else hi = mid;
    }
    size_t type = lo == 0 ? 0 : z->idx[lo - 1];
    if (type >= z->ntypes) type = 0;
    return (int32_t)be32(z->types + type * 6);
}

static bool valid_zone_id(const char *s, size_t n)
{
    if (n == 0 || n > 64 || !isalpha((unsigned char)s[0])) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '/' && c != '_' && c != '-' && c != '+') return false;
        if (c == '/' && i + 1 < n && s[i + 1] == '.') return false;
    }
    return true;
}

/* Offset of tz database zone `id` for a local time (seconds since the epoch
 * read as UTC). */
static bool zoneinfo_offset(const char *id, size_t n, int64_t local, int64_t *off)
{
    if (!valid_zone_id(id, n)) return false;
    char path[128];
    snprintf(path, sizeof path, ZONEINFO_DIR "%.*s", (int)n, id);
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    uint8_t *buf = malloc(TZIF_MAX);
    size_t len = buf ? fread(buf, 1, TZIF_MAX, f) : 0;
    fclose(f);
    bool ok = false;
    tzif z;
    size_t next;
    if (buf && tzif_block(buf, len, 4, &z, &next)) {
        tzif z2;
        size_t next2;
        if (buf[4] >= '2' && tzif_block(buf + next, len - next, 8, &z2, &next2)) z = z2;
        /* the offset in force at the local time: try the offset at the
         * local instant read as UTC, then correct once */
        int64_t o = tz_offset_at(&z, local);
        *off = tz_offset_at(&z, local - o);
        ok = true;
    }
    free(buf);
    return ok;
}

bool sch_zone_offset(const char *s, size_t n, int64_t local, int64_t *off)
{
    if (parse_offset(s, n, off)) return true; /* RFC 822 -0800 */
    for (size_t i = 0; i < SIB_ARRAY_LEN(abbrevs); i++) {
        if (word_is(s, n, abbrevs[i].name)) {
            *off = abbrevs[i].minutes * 60;
            return true;
        }
    }
    /* GMT+hh:mm / UTC-8 */
    if (n > 3 && (strncasecmp(s, "GMT", 3) == 0 || strncasecmp(s, "UTC", 3) == 0)) return parse_offset(s + 3, n - 3, off);
    return zoneinfo_offset(s, n, local, off);
}
