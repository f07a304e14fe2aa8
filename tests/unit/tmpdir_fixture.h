/* tmpdir_fixture.h: a cmocka fixture giving each test a fresh directory
 * under /tmp, removed (with the files in it) afterwards. Shared by the
 * suites of modules that write files (sstable, compaction). Include after
 * cmocka.h. */
#ifndef SIB_TMPDIR_FIXTURE_H
#define SIB_TMPDIR_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fx { char dir[64]; } fx;

static inline int tmpdir_setup(void **state, const char *prefix)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/%s.XXXXXX", prefix);
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static inline int tmpdir_teardown(void **state)
{
    fx *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *de;
    char p[512];
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", f->dir, de->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

#endif
