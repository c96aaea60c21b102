"""Provenance of the parity fixtures: every fixture was generated from the authors'
repository at its pinned commit, and where a generator restates the authors' lines (instead
of importing them) the fixture carries the hash of those lines at that commit.

The tests cannot fetch the authors' repositories; they check what the fixtures record
against the pins in tests/parity/common.py (PINNED, RESTATED), that every generator takes
--commit, and that the generator-side checks (`checked_commit`, `restated_sources`) refuse a
checkout at another commit or with other lines (on a throw-away git repository).
"""
import glob
import json
import os
import subprocess

import pytest

from parity import common
from parity.common import PINNED, RESTATED, load_fixture

PARITY = os.path.dirname(common.__file__)
NAMES = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(common.FIXTURES,
                                                                        "*.npz")))


def _repository(meta):
    """The pinned repository a fixture's meta['repository'] names."""
    for repo in PINNED:
        if meta["repository"].startswith(repo):
            return repo
    return None


def test_every_fixture_has_its_generator():
    assert NAMES, "no parity fixtures found"
    for name in NAMES:
        assert os.path.exists(os.path.join(PARITY, f"make_{name}.py")), name


@pytest.mark.parametrize("name", NAMES)
def test_fixture_is_from_the_pinned_commit(name):
    fx = load_fixture(name)
    meta = fx["meta"]
    assert meta["script"] == f"make_{name}.py"
    if name == "data_constants":  # four repositories, one commit each
        commits = json.loads(str(fx["commits"]))
        assert sorted(commits.values()) == sorted(PINNED.values()), commits
        assert meta["commit"] == PINNED["GeorgeCazenavette/mtt-distillation"]
    else:
        repo = _repository(meta)
        assert repo is not None, meta["repository"]
        assert meta["commit"] == PINNED[repo], (name, meta["commit"], PINNED[repo])
    if name == "dsa":  # its DDiF DM/utils.py part
        assert PINNED["aailab-kaist/DDiF"] in str(fx["dm_source"])
    if name == "modal_nets":  # its FreD 3D-MNIST Conv3DNet part
        assert PINNED["sdh0818/FreD"] in str(fx["fred_source"])
    if name == "modal_tables":  # its FreD 3D-MNIST rows
        assert str(fx["fred_commit"]) == PINNED["sdh0818/FreD"]
    if name == "zca":
        for call in json.loads(str(fx["zca_calls"])):
            assert call["commit"] == PINNED[call["repository"]], call


@pytest.mark.parametrize("name", sorted(RESTATED))
def test_restated_lines_are_hashed_in_the_fixture(name):
    """The fixture was generated while the authors' lines its generator restates had the
    pinned hash (save_fixture re-hashes them from the checkout and records them)."""
    assert name in NAMES
    meta = load_fixture(name)["meta"]
    assert meta.get("sources") == [list(e) for e in RESTATED[name]], (
        f"{name}.npz records {meta.get('sources')}, the generator restates "
        f"{RESTATED[name]}: regenerate it with tests/parity/make_{name}.py")
    for path, first, last, sha in RESTATED[name]:
        assert 1 <= first <= last and len(sha) == 64


@pytest.mark.parametrize("name", NAMES)
def test_generator_takes_the_commit(name):
    """Every generator has --commit (common.add_commit_arg) and passes it to save_fixture,
    which checks it against the checkout."""
    with open(os.path.join(PARITY, f"make_{name}.py")) as f:
        text = f.read()
    assert "add_commit_arg(ap" in text, name
    assert "commit=" in text[text.index("save_fixture("):], name


def _git(repo, *args):
    return subprocess.check_output(["git", "-C", str(repo), *args], text=True).strip()


def test_generator_checks_refuse_another_commit_or_other_lines(tmp_path, monkeypatch):
    repo = tmp_path / "authors"
    repo.mkdir()
    (repo / "distill.py").write_text("a = 1\nfor i in range(3):\n    a += i\nprint(a)\n")
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", "distill.py")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x")
    head = _git(repo, "rev-parse", "HEAD")
    assert common.checked_commit(str(repo), head[:7]) == head
    with pytest.raises(SystemExit, match="not at --commit"):
        common.checked_commit(str(repo), "0" * 40)
    plain = tmp_path / "copy"
    plain.mkdir()
    assert common.checked_commit(str(plain), "abcdef1") == "abcdef1"  # no .git: as given

    sha = common.source_sha256((repo / "distill.py").read_text(), 2, 3)
    monkeypatch.setitem(RESTATED, "toy", (("distill.py", 2, 3, sha),))
    assert common.restated_sources("toy", str(repo)) == [["distill.py", 2, 3, sha]]
    (repo / "distill.py").write_text("a = 1\nfor i in range(4):\n    a += i\nprint(a)\n")
    with pytest.raises(SystemExit, match="differs from the lines"):
        common.restated_sources("toy", str(repo))
