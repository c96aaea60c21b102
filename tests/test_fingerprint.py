"""jaxdd.fingerprint: one comparison for 'same run' (workdir resume) and 'same buffer'
(expert metadata), and data identified by content (an npz file's sha256), here on the
workdir side (the expert side, with real experts: tests/test_experts.py)."""
import json
import os
import shutil

import numpy as np
import pytest

from jaxdd import fingerprint as F
from jaxdd import workdir as wd
from tinyrun import tiny_config, write_npz


def test_flatten_and_matches():
    tree = {"a": 1, "m": {"overrides": {}, "name": "x"}, "l": [1, 2], "d": {"e": {"f": None}}}
    assert F.flatten(tree) == {"a": 1, "m.overrides": {}, "m.name": "x", "l": [1, 2],
                               "d.e.f": None}
    assert F.flatten({}) == {}
    assert F.matches("eval.every", ("eval",)) and F.matches("eval", ("eval",))
    assert not F.matches("evaluation", ("eval",))


def test_diff_both_sides_and_expected_only():
    old = {"a": 1, "eval": {"every": 0}, "opt": {"lr": 1}, "m": {"overrides": {}}}
    new = {"a": 2, "eval": {"every": 5}, "opt": {"lr": 1, "x": 0},
           "m": {"overrides": {"width": 64}}, "t": (1, 2)}
    blocking, allowed = F.diff(old, new, allowed=("eval",))
    assert blocking == [("a", 1, 2), ("m.overrides.width", F.ABSENT, 64),
                        ("opt.x", F.ABSENT, 0), ("t", F.ABSENT, [1, 2])]
    assert allowed == [("eval.every", 0, 5)]
    # only the expected fields, except under `whole`; ignored fields never compared
    stored = {"a": 1, "extra": 3, "m": {"overrides": {"width": 64, "conv_impl": "native"}}}
    blocking, _ = F.diff(stored, {"a": 1, "m": {"overrides": {}}}, only_expected=True,
                         whole=("m.overrides",), ignored=("m.overrides.conv_impl",))
    assert blocking == [("m.overrides.width", 64, F.ABSENT)]
    assert F.diff(stored, {"a": 1, "m": {"overrides": {"width": 64}}}, only_expected=True,
                  whole=("m.overrides",), ignored=("m.overrides.conv_impl",)) == ([], [])
    # tuples equal lists; an empty dict equals an absent field
    assert F.diff({"t": [1, 2], "o": {}}, {"t": (1, 2)}) == ([], [])
    # a field added later with a None default is nothing, both ways; a value is not
    assert F.diff({"p": {"t4": 2}}, {"p": {"t4": 2, "t5": None}}) == ([], [])
    assert F.diff({"p": {"t5": None}}, {"p": {}}) == ([], [])
    assert F.diff({"p": {"t4": 2}}, {"p": {"t4": 2, "t5": 0}})[0] == [("p.t5", F.ABSENT, 0)]


def test_content_replaces_the_path_only_when_both_sides_have_it():
    a = {"dataset": {"name": "/old/x.npz", "sha256": "aa"}}
    moved = {"dataset": {"name": "/new/x.npz", "sha256": "aa"}}
    other = {"dataset": {"name": "/old/x.npz", "sha256": "bb"}}
    assert F.diff(a, moved) == ([], [("dataset.name", "/old/x.npz", "/new/x.npz")])
    blocking, _ = F.diff(a, other)
    assert blocking == [("dataset.sha256", "aa", "bb")]
    assert F.content_change(blocking) == ("aa", "bb")
    # an old record without the hash: the path decides, the hash is not compared
    old = {"dataset": {"name": "/old/x.npz"}}
    assert F.diff(old, other) == ([], [])
    assert F.diff(old, moved)[0] == [("dataset.name", "/old/x.npz", "/new/x.npz")]


def test_data_file_and_sha256_cache(tmp_path):
    p = write_npz(tmp_path / "a.npz")
    assert F.data_file({"name": p}) == p
    assert F.data_file({"name": "npz", "path": p}) == p
    assert F.data_file({"name": "digits"}) is None and F.data_sha256({"name": "cifar10"}) is None
    assert F.data_sha256({"name": str(tmp_path / "absent.npz")}) is None
    import hashlib
    want = hashlib.sha256(open(p, "rb").read()).hexdigest()
    assert F.file_sha256(p) == want == F.data_sha256({"name": p})
    # a rewritten file (other pixels, same size) is hashed again, not served from the cache
    _other_pixels(p)
    assert F.file_sha256(p) == hashlib.sha256(open(p, "rb").read()).hexdigest() != want


def _other_pixels(path):
    """Rewrite an npz in place with other pixels (same shapes, same file size)."""
    with np.load(path) as z:
        arrays = dict(z)
    arrays["images"] = 1.0 - arrays["images"]
    st = os.stat(path)
    np.savez(path, **arrays)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a later write
    return path


# ----------------------------------------------------------------------------- workdir


def test_resume_identity_by_content(tmp_path):
    """config.json records the npz's sha256: the same bytes at another path resume (the
    path change is recorded as allowed); other bytes at the same path are refused, naming
    the file and both hashes."""
    os.makedirs(tmp_path / "a")
    p = write_npz(tmp_path / "a" / "tiny.npz")
    w = str(tmp_path / "w")
    os.makedirs(w)
    wd.write_identity(w, tiny_config(p))
    recorded = wd.read_identity(w)
    sha = F.file_sha256(p)
    assert recorded["dataset"]["sha256"] == sha and recorded["dataset"]["name"] == p
    assert wd.check_resume(w, tiny_config(p), recorded) == []
    # moved: accepted, the new path an allowed change
    q = str(tmp_path / "b" / "moved.npz")
    os.makedirs(os.path.dirname(q))
    shutil.move(p, q)
    assert wd.check_resume(w, tiny_config(q), recorded) == [("dataset.name", p, q)]
    # other pixels under the recorded path: refused
    shutil.copy(q, p)
    _other_pixels(p)
    with pytest.raises(wd.WorkdirError) as e:
        wd.check_resume(w, tiny_config(p), recorded)
    msg = str(e.value)
    assert "dataset.sha256" in msg and sha in msg and F.file_sha256(p) in msg
    assert f"The data file {p} holds other bytes" in msg and "Put the original file back" in msg
    assert "dataset.name" not in msg  # same path: only the content differs


def test_old_workdir_without_hash_compares_the_path(tmp_path):
    p = write_npz(tmp_path / "tiny.npz")
    w = str(tmp_path / "w")
    os.makedirs(w)
    old = json.loads(tiny_config(p).to_json_best_effort())  # config.json before hashes
    with open(wd.config_path(w), "w") as f:
        json.dump(old, f)
    recorded = wd.read_identity(w)
    assert wd.check_resume(w, tiny_config(p), recorded) == []
    q = str(tmp_path / "moved.npz")
    shutil.copy(p, q)
    with pytest.raises(wd.WorkdirError, match=r"dataset.name: recorded '.*tiny.npz', now "):
        wd.check_resume(w, tiny_config(q), recorded)


def test_tfds_data_keep_their_name_embedded_data_their_content(tmp_path, monkeypatch):
    from jaxdd import config as C
    from jaxdd.data import datasets as D
    cfg = C.base_config("cifar10", 1)
    ident = F.run_identity(cfg)
    assert "sha256" not in ident["dataset"] and ident["dataset"]["name"] == "cifar10"
    # embedded sources (generated by code) are identified by their generated arrays
    digits = F.run_identity(C.base_config("digits", 1))
    sha = digits["dataset"]["sha256"]
    assert len(sha) == 64 and sha == F.data_sha256({"name": "digits"})
    assert F.data_sha256({"name": "digits_voxel"}) not in (None, sha)
    # another version of a generator: other data, though the name is the same
    D._EMBEDDED_SHA.pop("digits")
    real = D._load_digits
    monkeypatch.setattr(D, "_load_digits",
                        lambda: (real()[0] * 0.5,) + tuple(real()[1:]))
    other = F.run_identity(C.base_config("digits", 1))
    D._EMBEDDED_SHA.pop("digits")
    blocking, _ = F.diff(digits, other)
    assert ("dataset.sha256", sha, other["dataset"]["sha256"]) in blocking
    assert F.content_change(blocking) == (sha, other["dataset"]["sha256"])
