"""Parity: configs/tm_pixel.py (and jaxdd.published.mtt) against MTT's own settings.

Fixture: tests/parity/make_mtt_tables.py (readme.md commands and the table image's rows,
distill.py / buffer.py argparse defaults). Exact comparison: these are transcribed numbers.
"""
import importlib.util
import json
import os

import pytest

from parity.common import load_fixture
from jaxdd import config as C
from jaxdd.published import mtt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET = {"CIFAR10": "cifar10", "CIFAR100": "cifar100", "Tiny": "tinyimagenet",
           "ImageNet": "imagenette"}  # MTT's ImageNet subsets share one setting
SIDE = {"cifar10": 32, "cifar100": 32, "tinyimagenet": 64, "imagenette": 128}
DEPTH = {32: 3, 64: 4, 128: 5}  # MTT's --model=ConvNet default is depth 3 (utils.py:189)


@pytest.fixture(scope="module")
def ref():
    return json.loads(str(load_fixture("mtt_tables")["tables"]))


def _config(name, arg):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs",
                                                                     f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, mod.get_config(arg)


def _row(cmd, defaults):
    """A parsed authors' command -> the jaxdd table fields (argparse defaults fill gaps)."""
    get = lambda k: cmd.get(k, defaults[k])  # noqa: E731
    ds = DATASET[cmd["dataset"]]
    model = get("model")
    if model == "ConvNet":
        model = f"ConvNetD{DEPTH[SIDE[ds]]}"
    bs = get("batch_syn")
    return (ds, int(cmd["ipc"])), dict(
        syn_steps=int(get("syn_steps")), expert_epochs=int(get("expert_epochs")),
        max_start_epoch=int(get("max_start_epoch")), lr_img=float(get("lr_img")),
        lr_lr=float(get("lr_lr")), lr_teacher=float(get("lr_teacher")),
        zca=bool(get("zca")), batch_syn=0 if bs is None else int(bs), model=model)


def _published(ref):
    """The authors' rows: the table image, overridden by readme.md's own commands (the
    repository wins); IPC 10 of the ImageNet subsets: the README's IPC 1 command + the
    batch_syn the author gave in issue #1 (the README has no IPC 10 command)."""
    d = ref["distill_defaults"]
    rows = dict(_row(c, d) for c in ref["table_image"])
    for c in ref["readme_distill"]:
        if c.get("texture") or c.get("res", "128") != "128":
            continue  # the texture example (256 px tiles) is not a dataset setting
        key, row = _row(c, d)
        if key in rows:  # README command and table agree where both exist
            assert rows[key] == row, (key, rows[key], row)
        rows[key] = row
    issue = {k: r for k, r in (_row(c, d) for c in ref["author_issue_1"])}
    rows[("imagenette", 10)] = dict(rows[("imagenette", 1)],
                                    batch_syn=issue[("imagenette", 10)]["batch_syn"])
    return rows


def test_published_table_matches_the_authors(ref):
    want = _published(ref)
    assert set(mtt.TABLE) == set(want)
    for key, row in want.items():
        got = {k: v for k, v in mtt.TABLE[key].items() if k != "source"}
        assert got == row, key
    d = ref["distill_defaults"]
    assert mtt.ITERATIONS == d["Iteration"]
    assert mtt.EVAL == dict(epochs=d["epoch_eval_train"], num_nets=d["num_eval"],
                            every=d["eval_it"], batch_size=d["batch_train"])


def test_imagenette_differs_from_the_authors_issue_comment_on_purpose(ref):
    """Issue #1 (a comment) says lr_img 1e5 for ImageNet; the repository's README 1000."""
    issue = dict(_row(c, ref["distill_defaults"]) for c in ref["author_issue_1"])
    for ipc in (1, 10):
        assert issue[("imagenette", ipc)]["lr_img"] == 1e5
        assert mtt.TABLE[("imagenette", ipc)]["lr_img"] == 1000.0
        assert mtt.TABLE[("imagenette", ipc)]["lr_lr"] == issue[("imagenette", ipc)]["lr_lr"]


def test_buffer_recipe(ref):
    b, cmd = ref["buffer_defaults"], ref["readme_buffer"][0]
    assert mtt.BUFFER["num_experts"] == int(cmd["num_experts"]) == b["num_experts"]
    assert mtt.BUFFER["epochs"] == int(cmd["train_epochs"]) == b["train_epochs"]
    assert mtt.BUFFER["lr_teacher"] == b["lr_teacher"]
    assert mtt.BUFFER["batch_size"] == b["batch_train"]
    assert (mtt.BUFFER["momentum"], mtt.BUFFER["weight_decay"]) == (b["mom"], b["l2"])
    assert mtt.BUFFER["dsa"] == (b["dsa"] == "True") and b["decay"] is False
    assert ref["readme_buffer_note"]  # "50 epochs with the default learning rate"


@pytest.mark.parametrize("variant", _config("tm_pixel", None)[0].VARIANTS)
def test_tm_pixel_variants_match(ref, variant):
    _, cfg = _config("tm_pixel", variant)
    key = (variant.split(",")[0], cfg.param.ipc)
    row = _published(ref)[key]
    o = cfg.objective
    assert (o.syn_steps, o.expert_epochs, o.max_start_epoch, o.batch_syn) == (
        row["syn_steps"], row["expert_epochs"], row["max_start_epoch"], row["batch_syn"])
    assert (cfg.opt.syn.lr, cfg.opt.lr.lr, cfg.opt.lr.init) == (
        row["lr_img"], row["lr_lr"], row["lr_teacher"])
    assert cfg.opt.syn.momentum == cfg.opt.lr.momentum == 0.5  # distill.py:137-138
    assert cfg.dataset.zca == row["zca"] and cfg.model.name == row["model"]
    assert cfg.iterations == ref["distill_defaults"]["Iteration"]
    b = ref["buffer_defaults"]
    assert (cfg.buffer.num_experts, cfg.buffer.epochs, cfg.buffer.lr_teacher,
            cfg.buffer.batch_size) == (b["num_experts"], b["train_epochs"], b["lr_teacher"],
                                       b["batch_train"])
    d = ref["distill_defaults"]
    assert (cfg.eval.epochs, cfg.eval.final_nets, cfg.eval.every, cfg.eval.batch_size) == (
        d["epoch_eval_train"], d["num_eval"], d["eval_it"], d["batch_train"])
    assert cfg.dsa_strategy == d["dsa_strategy"]
    assert cfg.source.startswith("MTT")


def test_every_loadable_published_row_is_a_variant(ref):
    mod, _ = _config("tm_pixel", None)
    want = {f"{d},ipc={i}" for d, i in _published(ref) if d in C.DATASETS}
    assert set(mod.VARIANTS) == want


@pytest.mark.parametrize("arg, row", [("mnist,ipc=1", None), ("cifar10,ipc=2", ("cifar10", 1)),
                                      ("imagenette,ipc=50", ("imagenette", 10)),
                                      ("svhn_cropped,ipc=10", ("cifar10", 10))])
def test_unpublished_setting_is_derived_and_labelled(arg, row):
    """No MTT row: the config is derived from MTT's nearest row of the same image shape
    (else the digits TM setting) and says so; the table still refuses the setting."""
    _, cfg = _config("tm_pixel", arg)
    assert cfg.source.startswith("derived, not published: ")
    if row is None:
        assert "digits TM setting" in cfg.source
    else:
        r = mtt.TABLE[row]
        assert f"{row[0]} IPC {row[1]}" in cfg.source
        assert (cfg.objective.syn_steps, cfg.opt.syn.lr, cfg.opt.lr.lr) == (
            r["syn_steps"], r["lr_img"], r["lr_lr"])
        assert cfg.dataset.zca == (r["zca"] and row[0] == arg.split(",")[0])
    with pytest.raises(ValueError, match=r"no published setting.*known: cifar10:ipc=1"):
        mtt.setting(arg.split(",")[0], cfg.param.ipc)
