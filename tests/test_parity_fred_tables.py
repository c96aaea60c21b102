"""Parity: FreD's published settings in jaxdd (jaxdd/published/fred.py and the configs
configs/{tm,dm,dc}_fred.py) against the authors' own files (sdh0818/FreD @ 9f35a7a).

Fixture tests/parity/fixtures/fred_tables.npz (tests/parity/make_fred_tables.py) holds the
authors' hyper_params.py tables (TM/ and ImageNet-abcde/), the shell variables of their run
scripts, their main scripts' argparse defaults and dsa rule, DC's get_loops, the ImageNet
evaluation lr, the DCT's default normalization and the syn_lr clip. Every entry of every
table is checked twice: the transcription, and the config variant that uses it
(configs/tm_fred.py:<dataset>,ipc=<n>). Exact equality throughout (they are constants).
"""
import importlib.util
import json
import os

import pytest

from parity.common import load_fixture

from jaxdd.published import fred as P
from jaxdd.published import lookup

FX = load_fixture("fred_tables")
T = json.loads(str(FX["tables"]))
HP = T["hyper_params"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# the authors' dataset names -> jaxdd's; "Tiny" (Tiny ImageNet) has no jaxdd loader
NAMES = {"MNIST": "mnist", "FashionMNIST": "fashion_mnist", "SVHN": "svhn_cropped",
         "CIFAR10": "cifar10", "CIFAR100": "cifar100", "Tiny": None, "ImageNet": "imagenette"}
TM_SCRIPT = "TM/scripts/run_TM_FreD.sh"
TM_SCRIPT_128 = "ImageNet-abcde/scripts/run_TM_FreD.sh"
FIELDS = {"SYN_STEPS": "syn_steps", "EXPERT_EPOCHS": "expert_epochs",
          "MAX_START_EPOCH": "max_start_epoch", "LR_LR": "lr_lr", "LR_TEACHER": "lr_teacher"}


def _config(name, arg):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.get_config(arg)


def _tm_entries():
    return [(ds, int(ipc)) for ds in sorted(HP["SYN_STEPS"]) for ipc in HP["SYN_STEPS"][ds]]


def test_fixture_meta_and_both_hyper_params_files_agree():
    assert FX["meta"]["repository"] == "sdh0818/FreD"
    assert FX["meta"]["commit"] == P.COMMIT
    assert T["hyper_params"] == T["hyper_params_imagenet"]
    assert P.DATASET_NAMES == NAMES


def test_transcribed_hyper_params_exact():
    assert set(P.TM_FIELDS) == set(FIELDS.values())
    for table, field in FIELDS.items():
        theirs = {(ds, int(ipc)): v for ds, rows in HP[table].items() for ipc, v in rows.items()}
        ours = {(ds, ipc): dict(zip(P.TM_FIELDS, vals))[field]
                for ds, rows in P.TM_HYPER_PARAMS.items() for ipc, vals in rows.items()}
        assert ours == theirs, table


def test_transcribed_scripts_and_main_defaults_exact():
    rename = {"dataset": "dst", "model": "net"}
    assert set(P.SCRIPTS) == set(T["scripts"])
    for script, ours in P.SCRIPTS.items():
        theirs = T["scripts"][script]
        for k, v in ours.items():
            assert theirs[rename.get(k, k)] == v, (script, k)
    for main, ours in P.MAIN_DEFAULTS.items():
        theirs = T["main_defaults"][main]
        assert ours["batch_real"] == theirs["defaults"]["batch_real"], main
        assert ours["dsa"] == theirs["dsa"], main
        if "lr_net" in ours:
            assert ours["lr_net"] == theirs["defaults"]["lr_net"], main
        if main.startswith("ImageNet-abcde"):
            assert ours["eval_lr"] == T["imagenet_eval_lr"], main
        else:  # utils.evaluate_synset trains with args.lr_net
            assert ours["eval_lr"] == theirs["defaults"]["lr_net"], main
    # CIFAR DC runs without DSA (method 'DC'); every other FreD main with it
    assert [m for m, v in T["main_defaults"].items() if not v["dsa"]] == ["DC/main_DC_FreD.py"]


def test_composed_tm_table_covers_every_loadable_entry():
    expect = {(NAMES[ds], ipc) for ds, ipc in _tm_entries() if NAMES[ds] is not None}
    assert set(P.TM) == expect
    assert {ds for ds, _ in _tm_entries() if NAMES[ds] is None} == {"Tiny"}
    with pytest.raises(ValueError, match="unknown dataset variant"):
        _config("tm_fred", "tiny,ipc=1")


@pytest.mark.parametrize("ds, ipc", _tm_entries())
def test_tm_config_matches_the_authors(ds, ipc):
    if NAMES[ds] is None:
        return  # covered by test_composed_tm_table_covers_every_loadable_entry
    cfg = _config("tm_fred", f"{NAMES[ds]},ipc={ipc}")
    o = cfg.objective
    assert o.name == "tm" and cfg.param.name == "fred" and cfg.param.ipc == ipc
    assert o.syn_steps == HP["SYN_STEPS"][ds][str(ipc)]
    assert o.expert_epochs == HP["EXPERT_EPOCHS"][ds][str(ipc)]
    assert o.max_start_epoch == HP["MAX_START_EPOCH"][ds][str(ipc)]
    assert cfg.opt.lr.lr == HP["LR_LR"][ds][str(ipc)]
    assert cfg.opt.lr.init == HP["LR_TEACHER"][ds][str(ipc)]
    s = T["scripts"][TM_SCRIPT_128 if ds == "ImageNet" else TM_SCRIPT]
    assert cfg.param.k == s["msz_per_channel"]
    assert cfg.opt.syn.name == "sgd"
    assert cfg.opt.syn.lr == s["lr_freq"] and cfg.opt.syn.momentum == s["mom_freq"]
    assert o.batch_syn == s["batch_syn"]
    assert cfg.iterations == s["Iteration"]
    assert cfg.eval.num_nets == s["num_eval"]
    assert cfg.opt.lr.min_syn_lr == T["tm_syn_lr_min"]
    assert T["zca_refused"] and cfg.dataset.zca is False
    # the authors' DCT is unnormalized (norm=None): jaxdd's norm 'none' takes lr_freq as is
    assert T["dct_norm_default"] is None and cfg.param.norm == "none"
    assert cfg.param.transform == "dct" and cfg.param.mask == "evr"
    if ds == "ImageNet":
        assert cfg.dataset.resolution == s["res"] == 128
        assert cfg.model.name == f"ConvNetD{s['depth']}"
    else:
        assert cfg.model.name == s["net"] == "ConvNetD3"
    assert cfg.dsa_strategy == T["main_defaults"]["TM/main_TM_FreD.py"]["defaults"]["dsa_strategy"]


def _objective_cases(table):
    return sorted(table)


def _script_for(method, dataset):
    return (f"ImageNet-abcde/scripts/run_{method}_FreD.sh" if dataset == "imagenette"
            else f"{method}/scripts/run_{method}_FreD.sh")


def _main_for(method, dataset):
    return (f"ImageNet-abcde/main_{method}_FreD.py" if dataset == "imagenette"
            else f"{method}/main_{method}_FreD.py")


@pytest.mark.parametrize("method", ["DM", "DC"])
def test_dm_dc_tables_cover_the_scripts_datasets(method):
    table = getattr(P, method)
    assert {d for d, _ in table} == {"cifar10", "imagenette"}
    assert T["scripts"][_script_for(method, "cifar10")]["dst"] == "CIFAR10"
    assert T["scripts"][_script_for(method, "imagenette")]["dst"].startswith("imagenet")
    assert {i for d, i in table if d == "cifar10"} == {int(i) for i in HP["SYN_STEPS"]["CIFAR10"]}
    # the scripts' own example IPCs are included
    for d in ("cifar10", "imagenette"):
        assert (d, T["scripts"][_script_for(method, d)]["ipc"]) in table


@pytest.mark.parametrize("dataset, ipc", _objective_cases(P.DM))
def test_dm_config_matches_the_authors(dataset, ipc):
    cfg = _config("dm_fred", f"{dataset},ipc={ipc}")
    s = T["scripts"][_script_for("DM", dataset)]
    m = T["main_defaults"][_main_for("DM", dataset)]
    assert cfg.objective.name == "dm" and cfg.param.name == "fred" and cfg.param.ipc == ipc
    assert cfg.param.k == s["msz_per_channel"] and cfg.param.norm == "none"
    assert cfg.opt.syn.lr == s["lr_freq"] and cfg.opt.syn.momentum == s["mom_freq"]
    assert s["batch_syn"] == 0  # jaxdd's DM always uses every instance
    assert cfg.iterations == s["Iteration"]
    assert cfg.objective.batch_real == m["defaults"]["batch_real"]
    assert (cfg.dsa_strategy != "none") == m["dsa"]
    eval_lr = T["imagenet_eval_lr"] if dataset == "imagenette" else m["defaults"]["lr_net"]
    assert cfg.opt.lr.init == eval_lr


@pytest.mark.parametrize("dataset, ipc", _objective_cases(P.DC))
def test_dc_config_matches_the_authors(dataset, ipc):
    cfg = _config("dc_fred", f"{dataset},ipc={ipc}")
    s = T["scripts"][_script_for("DC", dataset)]
    m = T["main_defaults"][_main_for("DC", dataset)]
    assert cfg.objective.name == "dc" and cfg.param.name == "fred" and cfg.param.ipc == ipc
    assert cfg.param.k == s["msz_per_channel"] and cfg.param.norm == "none"
    assert cfg.opt.syn.lr == s["lr_freq"] and cfg.opt.syn.momentum == s["mom_freq"]
    assert s["batch_syn"] == 0
    outer = T["dc_loops"][str(ipc)][0]
    assert cfg.iterations == s["Iteration"] * outer  # DC iterations x outer_loop updates
    assert cfg.objective.batch_real == m["defaults"]["batch_real"]
    assert cfg.objective.lr_net == m["defaults"]["lr_net"]
    assert (cfg.dsa_strategy != "none") == m["dsa"]
    if dataset == "imagenette":
        assert cfg.opt.lr.init == T["imagenet_eval_lr"]
    else:
        assert cfg.opt.lr.init == m["defaults"]["lr_net"]
        # no DSA and no DC augmentation for CIFAR ConvNets: 300 evaluation epochs
        assert not m["dsa"] and cfg.eval.epochs == m["defaults"]["epoch_eval_train"] == 300


@pytest.mark.parametrize("name, table", [("tm_fred", P.TM), ("dm_fred", P.DM), ("dc_fred", P.DC)])
def test_unknown_setting_is_derived_and_the_table_lists_the_known_ones(name, table):
    for arg in ("cifar100,ipc=2", "svhn_cropped,ipc=7"):
        cfg = _config(name, arg)  # derived (jaxdd.config.derive), labelled so
        assert cfg.source.startswith("derived, not published: "), cfg.source
        with pytest.raises(ValueError, match="no published setting") as e:
            lookup(table, arg.split(",")[0], cfg.param.ipc, name)
        for d, i in table:
            assert f"{d}:ipc={i}" in str(e.value)
    with pytest.raises(ValueError, match="known: "):
        lookup(table, "cifar10", 3, name)


@pytest.mark.parametrize("name", ["tm_fred", "dm_fred", "dc_fred"])
def test_digits_default_uses_the_unnormalized_dct(name):
    cfg = _config(name, None)
    assert cfg.dataset.name == "digits" and cfg.param.norm == "none"
    # the tuned orthonormal lrs (TM 1000, DM 100, DC 1) x 4 H W at 16x16
    assert cfg.opt.syn.lr == {"tm_fred": 1000.0, "dm_fred": 100.0, "dc_fred": 1.0}[name] * 1024
