"""Start-up refuses to run on damaged state it cannot prove harmless
(issue 13 part 3): a bad block in the local-state table used to give the
node a new identity (new host id, new tokens) instead of stopping."""

import glob
import json
import os
import time
import urllib.request

import pytest

from sibyl_harness import NodeError

LOCAL_TABLE_DIR = "system/local-5b1b5c4e000040008000000000000002"


def admin(node, path, method="GET"):
    req = urllib.request.Request("http://%s:%d%s" % (node.host, node.admin_port, path), method=method,
                                 data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read().decode())


def flip_middle_byte(path):
    n = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(n // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x40]))


def test_bad_local_state_block_stops_startup(make_node):
    node = make_node()
    host_id = admin(node, "/info")["id"]
    admin(node, "/flush", "POST")
    deadline = time.monotonic() + 30
    while admin(node, "/info")["flushes_pending"] and time.monotonic() < deadline:
        time.sleep(0.1)
    node.stop()
    datas = glob.glob(os.path.join(node.datadir, LOCAL_TABLE_DIR, "*-Data.db"))
    assert datas, "the local state was not flushed"
    for d in datas:
        flip_middle_byte(d)
    with pytest.raises(NodeError) as e:
        node.start(timeout=20)
    msg = str(e.value)
    assert "cannot read the node's local state" in msg and "Refusing to start with a new identity" in msg
    assert os.path.basename(datas[0]) in msg
    # Nothing was rewritten: the damaged SSTable is still the only local state.
    assert sorted(glob.glob(os.path.join(node.datadir, LOCAL_TABLE_DIR, "*-Data.db"))) == sorted(datas)
    assert host_id
