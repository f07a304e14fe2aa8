/* tmpdir_fixture.h: a cmocka fixture giving each test a fresh directory
 * under /tmp, removed (with everything in it) afterwards. Shared by the
 * suites of modules that write files (sstable, compaction). Include after
 * cmocka.h. */
#ifndef SIB_TMPDIR_FIXTURE_H
#define SIB_TMPDIR_FIXTURE_H

#include <dirent.h>
#include <ftw.h>
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

static inline int tmpdir_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP) rmdir(path);
    else unlink(path);
    return 0;
}

/* Removes the directory and everything under it (subdirectories too). */
static inline int tmpdir_teardown(void **state)
{
    fx *f = *state;
    nftw(f->dir, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

#endif
