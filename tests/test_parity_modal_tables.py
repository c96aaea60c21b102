"""The published settings of the non-image rows -- jaxdd.published.ddif_modal (DDiF video /
voxels / audio), jaxdd.published.fred's 3D MNIST rows and every config variant that reads
them -- against the authors' files (fixture tests/parity/fixtures/modal_tables.npz, written
by tests/parity/make_modal_tables.py from aailab-kaist/DDiF @ b628e7b and sdh0818/FreD @
9f35a7a: hyper_params.py imported, argparse defaults and script values parsed, the rules
their code applies evaluated, budgets from their DDiF classes). Values only the papers state
(audio, Fig. 4, FreD Table 4) are checked against what the fixture stores from them.

Exact equality throughout (constants).
"""
import importlib.util
import json
import os

import pytest
from parity.common import PINNED, load_fixture

from jaxdd.param import ddif
from jaxdd.published import ddif_modal as M
from jaxdd.published import fred as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FX = load_fixture("modal_tables")
T = json.loads(str(FX["tables"]))
FIELD_KEYS = {"DIM_IN": "dim_in", "NUM_LAYERS": "num_layers", "LAYER_SIZE": "layer_size",
              "DIM_OUT": "dim_out", "W0_INITIAL": "w0_initial", "W0": "w0"}
SHAPE = {"modelnet10": (32, 32, 32, 1), "shapenet": (32, 32, 32, 1),
         "miniucf": (16, 112, 112, 3), "mini_speech_commands": (64, 64, 1),
         "3dmnist": (16, 16, 16, 1)}
VOXEL_MAIN = {"dm": "3D_Voxel/main_DM.py", "dc": "3D_Voxel/main_DC.py"}
VOXEL_SH = {"dm": "3D_Voxel/scripts/run_DDiF#DM.sh", "dc": "3D_Voxel/scripts/run_DDiF#DC.sh"}
VIDEO_MAIN, VIDEO_SH = "Video/distill_DDiF.py", "Video/scripts/run_DDiF.sh"
FRED_MAIN, FRED_SH = "3D-MNIST/main_DM_FreD.py", "3D-MNIST/scripts/run_DM_FreD.sh"


def _config(name, arg):
    spec = importlib.util.spec_from_file_location(f"_m_{name}",
                                                  os.path.join(ROOT, "configs", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod if arg is None else mod.get_config(arg)


def _authors_fields(d):
    out = {}
    for theirs, ours in FIELD_KEYS.items():
        for key, rows in T["hyper"][d][theirs].items():
            for ipc, v in rows.items():
                out.setdefault((key, int(ipc)), {})[ours] = v
    return out


def test_fixture_commits_are_the_pinned_ones():
    assert FX["meta"]["repository"] == "aailab-kaist/DDiF"
    assert FX["meta"]["commit"] == PINNED["aailab-kaist/DDiF"]
    assert str(FX["fred_commit"]) == PINNED["sdh0818/FreD"] == F.COMMIT


def test_field_tables_transcribed_exactly():
    theirs = _authors_fields("3D_Voxel")
    assert {(M.AUTHORS_KEY[d], i): f for (d, i), f in M.FIELDS_VOXEL.items()} == theirs
    theirs = _authors_fields("Video")
    assert {(M.AUTHORS_KEY[d], i): f for (d, i), f in M.FIELDS_VIDEO.items()} == theirs


@pytest.mark.parametrize("obj", ["dm", "dc"])
def test_voxel_run_settings(obj):
    a, s, r = T["argparse"][VOXEL_MAIN[obj]], T["scripts"][VOXEL_SH[obj]], T["rules"]
    run = M.VOXEL_RUN[obj]
    assert (run["iterations"], run["batch_real"], run["num_eval"], run["batch_train"]) == (
        a["Iteration"], a["batch_real"], a["num_eval"], a["batch_train"])
    assert (run["lr_nf"], run["batch_syn"], run["dipc"]) == (s["lr_nf"], s["batch_syn"],
                                                            s["dipc"])
    assert run["eval_every"] == a["_eval_stride"] and s["eval_mode"] == "S"
    assert run["eval_lr"] == a["lr_net"]
    if obj == "dc":
        assert run["lr_net"] == a["lr_net"]
        # args.dsa is True for the default "", so main_DC.py evaluates 1000 epochs, not 300
        assert a["epoch_eval_train"] == 300 and r["3D_Voxel/main_DC.py:args.dsa"]
        assert run["eval_epochs"] == r["3D_Voxel/main_DC.py:epoch_eval_train if args.dsa"]
        assert r["3D_Voxel/utils.py:get_loops(1)"] == [1, 1]
    else:
        assert run["eval_epochs"] == a["epoch_eval_train"]
    # "" is not 'none' (args.dsa True) but DiffAugment returns its input: no augmentation
    assert a["dsa_strategy"] == "" and r[f"{VOXEL_MAIN[obj]}:args.dsa"]
    assert r["3D_Voxel/utils.py:DiffAugment(x, '') is x"] and run["dsa_strategy"] == "none"
    assert [M.VOXEL_NET["width"], M.VOXEL_NET["depth"]] == r[
        "3D_Voxel/utils.py:get_default_convnet_setting"]
    assert s["net"] == "Conv3DNet" and s["res"] == 32 and s["ipc"] == 1


def test_video_run_settings():
    a, s, r = T["argparse"][VIDEO_MAIN], T["scripts"][VIDEO_SH], T["rules"]
    run = M.VIDEO_RUN["dm"]
    assert (run["iterations"], run["batch_real"], run["num_eval"], run["batch_train"],
            run["eval_every"], run["eval_epochs"], run["frames"]) == (
        a["Iteration"], a["batch_real"], a["num_eval"], a["batch_train"], a["eval_it"],
        a["epoch_eval_train"], a["frames"])
    assert (run["lr_nf"], run["batch_syn"]) == (s["lr_nf"], s["batch_syn"])
    assert run["eval_lr"] == r["Video/distill_DDiF.py:eval lr = syn_lr"]
    assert not r["Video/distill_DDiF.py:augments"] and run["dsa_strategy"] == "none"
    assert r["Video/distill_DDiF.py:evaluate mode"] == "none"
    assert r["Video/DDiF.py:num_per_class = args.dipc"]
    assert M.VIDEO_DIPC[s["ipc"]] == s["dipc"] == 1 and a["dipc"] == 0
    assert M.VIDEO_DIPC[5] == T["paper"]["ddif_fig4"]["decoded_per_class"][1]
    assert "not published" in M.DM[("miniucf", 5)]["source"]
    assert [M.VIDEO_NET["width"], M.VIDEO_NET["depth"]] == r[
        "Video/utils.py:get_default_convnet_setting"]
    assert s["net"] == "ConvNet3D" and s["dst"] == "miniUCF101"


def test_audio_rows_are_the_papers():
    p, a = T["paper"]["ddif_table9a"], T["paper"]["ddif_audio"]
    assert sorted(i for _, i in M.AUDIO) == p["ipc"]
    for i, bs, lr in zip(p["ipc"], p["batch_syn"], p["lr_nf"]):
        row = M.DC[("mini_speech_commands", i)]
        assert (row["batch_syn"], row["lr_nf"]) == (bs, lr)
        assert row["source"].startswith("DDiF paper Table 9 (a), no code")
        assert "not published" in row["source"]
    assert (M.AUDIO_NET["model"], list(M.AUDIO_NET["shape"]), M.AUDIO_NET["num_classes"]) == (
        a["model"], a["shape"], a["classes"])
    assert ("mini_speech_commands", 10) not in M.DM  # DC only (Table 9 (a))


def test_budgets_match_the_authors_classes():
    for d, key, shape in (("3D_Voxel", "ModelNet_32", SHAPE["modelnet10"]),
                          ("3D_Voxel", "ShapeNet_32", SHAPE["shapenet"]),
                          ("Video", "miniUCF101", SHAPE["miniucf"])):
        for ipc, (b, n) in T["budget"][d][key].items():
            name = {v: k for k, v in M.AUTHORS_KEY.items()}[key]
            cfg = _config("dm_ddif", f"{name},ipc={ipc}")
            assert ddif.params_per_field(cfg.param, shape) == b
            fixed = T["scripts"][VIDEO_SH]["dipc"] if d == "Video" else 0
            assert ddif.fields_per_class(int(ipc), shape, b, fixed) == n


def test_fred_3d_mnist_rows():
    s, a, r = T["scripts"][FRED_SH], T["argparse"][FRED_MAIN], T["rules"]
    mine = F.SCRIPTS_3D[FRED_SH]
    for k in ("ipc", "msz_per_channel", "lr_freq", "mom_freq", "batch_syn", "Iteration",
              "num_eval"):
        assert mine[k] == s[k], k
    assert (mine["dataset"], mine["model"]) == (s["dst"], s["net"])
    d = F.MAIN_DEFAULTS_3D[FRED_MAIN]
    assert (d["batch_real"], d["eval_lr"], d["eval_epochs"], d["eval_every"],
            d["batch_train"]) == (a["batch_real"], a["lr_net"], a["epoch_eval_train"],
                                  a["eval_it"], a["batch_train"])
    assert "dsa_strategy" not in a and not r["3D-MNIST/main_DM_FreD.py:augments"]
    assert r["3D-MNIST/utils.py:evaluate aug"] == ["False"] and d["dsa"] is False
    assert [d["model_width"], d["model_depth"]] == r["3D-MNIST/utils.py:get_network width, depth"]
    assert sorted(i for _, i in F.DM_3D) == T["paper"]["fred_table4"]["ipc"]
    for (ds, ipc), row in F.DM_3D.items():
        assert ds == "3dmnist" and row["k"] == s["msz_per_channel"]
        assert ("not published" in row["source"]) == (ipc != s["ipc"])


@pytest.mark.parametrize("name, table", [("dm_ddif", M.DM), ("dc_ddif", M.DC)])
def test_ddif_config_variants(name, table):
    mod = _config(name, None)
    mine = [v for v in mod.VARIANTS if v.split(",")[0] in M.MODALITY]
    assert sorted(mine) == sorted(f"{d},ipc={i}" for d, i in table)
    for v in mine:
        cfg = mod.get_config(v)
        d, ipc = v.split(",")[0], cfg.param.ipc
        r = table[(d, ipc)]
        f, p = r["fields"], cfg.param
        assert (p.width, p.num_layers, p.w0, p.w0_initial, p.dim_in, p.dim_out) == (
            f["layer_size"], f["num_layers"], f["w0"], f["w0_initial"], f["dim_in"],
            f["dim_out"])
        assert p.fields_per_class == r.get("dipc", 0)
        outer = 1 if name == "dm_ddif" else {10: 10, 20: 20}.get(ipc, 1)
        assert cfg.iterations == r["iterations"] * outer
        assert cfg.eval.every == r["eval_every"] * outer
        assert (cfg.opt.syn.name, cfg.opt.syn.lr) == ("adam", r["lr_nf"])
        assert (cfg.eval.epochs, cfg.eval.num_nets, cfg.opt.lr.init) == (
            r["eval_epochs"], r["num_eval"], r["eval_lr"])
        assert cfg.objective.batch_real == r["batch_real"]
        assert cfg.decode_subset == r["batch_syn"] * {"mini_speech_commands": 8}.get(d, 0)
        assert cfg.dsa_strategy == "none" and cfg.source == r["source"]
        assert cfg.model.name == r["model"]
        assert cfg.model.overrides.get("width") == r.get("width")


def test_fred_config_variants():
    mod = _config("dm_fred", None)
    mine = [v for v in mod.VARIANTS if v.startswith("3dmnist")]
    assert sorted(mine) == sorted(f"3dmnist,ipc={i}" for _, i in F.DM_3D)
    for v in mine:
        cfg = mod.get_config(v)
        r = F.DM_3D[("3dmnist", cfg.param.ipc)]
        assert (cfg.param.k, cfg.param.norm) == (r["k"], "none")
        assert (cfg.opt.syn.lr, cfg.opt.syn.momentum) == (r["lr_freq"], r["mom_freq"])
        assert (cfg.iterations, cfg.objective.batch_real) == (r["iterations"], r["batch_real"])
        assert (cfg.eval.epochs, cfg.eval.every, cfg.opt.lr.init) == (
            r["eval_epochs"], r["eval_every"], r["eval_lr"])
        assert cfg.dsa_strategy == "none"
        assert (cfg.model.name, cfg.model.overrides.width) == ("conv3dnet", 64)
        assert cfg.source == f"{F.REPOSITORY} {r['source']}"


def test_unpublished_modal_settings_are_derived():
    for name, arg in (("dm_ddif", "modelnet10,ipc=10"), ("dc_ddif", "miniucf,ipc=1"),
                      ("dm_ddif", "mini_speech_commands,ipc=10"), ("dm_fred", "modelnet10"),
                      ("dc_fred", "3dmnist"), ("dm_pixel", "shapenet"),
                      ("dm_nsd", "miniucf"), ("dc_pixel", "mini_speech_commands,ipc=10")):
        cfg = _config(name, arg)
        assert cfg.source.startswith("derived, not published: "), (name, arg, cfg.source)
        assert cfg.dsa_strategy == "none", (name, arg)
    with pytest.raises(ValueError, match="no published setting"):
        M.row("dm", "modelnet10", 10)
