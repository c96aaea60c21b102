"""Make tests/parity/fixtures/modal_tables.npz: the published settings of the non-image rows,
read from the authors' repositories by machine, for tests/test_parity_modal_tables.py.

    python tests/parity/make_modal_tables.py --ref=<aailab-kaist/DDiF checkout> \
        --fred_ref=<sdh0818/FreD checkout>

The fixture's meta names aailab-kaist/DDiF (its pinned commit, --commit); FreD's commit
(--fred_commit, checked against --fred_ref the same way) is stored as ``fred_commit``.
Stored as one JSON string (key ``tables``):
  hyper     {"3D_Voxel", "Video"}: every UPPER_CASE table of <dir>/hyper_params.py (imported).
  argparse  {file: {option: default}} of 3D_Voxel/main_DM.py, 3D_Voxel/main_DC.py,
            Video/distill_DDiF.py, 3D-MNIST/main_DM_FreD.py (``ast`` of their add_argument
            calls); for the voxel mains also ``_eval_stride`` (their np.arange stride).
  scripts   {file: {variable: value, "flags": [...]}} of 3D_Voxel/scripts/run_DDiF#DM.sh,
            run_DDiF#DC.sh, Video/scripts/run_DDiF.sh, 3D-MNIST/scripts/run_DM_FreD.sh.
  rules     what the code does with those values, evaluated from the authors' own lines:
            the voxel mains' ``args.dsa`` for the default --dsa_strategy, whether their
            DiffAugment returns the input for it, the DC evaluation-epoch override when
            args.dsa, the networks' width / depth (get_default_convnet_setting / get_network),
            3D_Voxel get_loops(1), the Video fields-per-class rule (num_per_class = dipc),
            and whether FreD's 3D-MNIST main augments at all.
  budget    {dir: {key: {ipc: [budget_per_instance, num_per_class]}}}: the authors' DDiF
            classes (3D_Voxel/DDiF.py with dipc 0 at 32^3 x 1 channel; Video/DDiF.py with the
            script's dipc at 16 x 112 x 112 x 3).
  paper     facts stated only in the DDiF / FreD papers, labelled: Table 9 (a) (audio), the
            audio data (App. B.1 / B.2), Fig. 4's decoded instances per class (video), FreD
            Table 4's IPCs (3D MNIST).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity.common import add_commit_arg, checked_commit, save_fixture  # noqa: E402
from parity.make_ddif_tables import argparse_defaults, load_tables, script_values  # noqa: E402

REPO, FRED = "aailab-kaist/DDiF", "sdh0818/FreD"
PAPER = {
    "ddif_table9a": {"quote": "(a) Gradient matching (DC) ... Mini Speech Commands 10 20 | 64 "
                              "64 | 10^-5 10^-4", "ipc": [10, 20], "batch_syn": [64, 64],
                     "lr_nf": [1e-5, 1e-4]},
    "ddif_audio": {"quote": "Each data is 64 x 64 log-scale magnitude spectrograms [...] The "
                            "dataset consists of 8 classes [...] ConvNetD4 for 64 x 64 Audio "
                            "spectrograms", "shape": [64, 64, 1], "classes": 8,
                   "model": "ConvNetD4"},
    "ddif_fig4": {"quote": "Each black line denotes the same number of decoded instances per "
                           "class, 1 and 5, respectively.", "decoded_per_class": [1, 5]},
    "fred_table4": {"quote": "Table 4: Test accuracies (%) on 3D MNIST. IPC 1 10 50",
                    "ipc": [1, 10, 50]},
}


def _stub_modules():
    tv, tvu = types.ModuleType("torchvision"), types.ModuleType("torchvision.utils")
    tvu.save_image = lambda *a, **k: None
    tv.utils = tvu
    sys.modules.setdefault("torchvision", tv)
    sys.modules.setdefault("torchvision.utils", tvu)
    ut = types.ModuleType("utils")
    ut.get_time, ut.save_and_print = (lambda: "t"), (lambda *a, **k: None)
    sys.modules["utils"] = ut


def _import(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _function(path, name):
    """Execute one top-level function of an authors' file (its own lines) in a clean
    namespace with numpy (the helpers read here need nothing else)."""
    import ast

    text = open(path).read()
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            ns = {"np": np, "exit": lambda msg: (_ for _ in ()).throw(SystemExit(msg))}
            exec(compile(ast.Module([node], []), path, "exec"), ns)  # noqa: S102
            return ns[name]
    raise SystemExit(f"{path}: no function {name}")


def _line(path, pattern):
    m = re.search(pattern, open(path).read(), re.M)
    if m is None:
        raise SystemExit(f"{path}: the line /{pattern}/ was not found: read the authors' "
                         "new code and update the generator")
    return m


def rules(ref, fred_ref):
    vox = os.path.join(ref, "3D_Voxel")
    out = {}
    # args.dsa for the default --dsa_strategy ("") (main_DM.py / main_DC.py)
    for main in ("main_DM.py", "main_DC.py"):
        path = os.path.join(vox, main)
        line = _line(path, r"^\s*(args\.dsa = .*)$").group(1)
        default = argparse_defaults(path)["dsa_strategy"]
        ns = {"args": types.SimpleNamespace(dsa_strategy=default)}
        exec(line, ns)  # noqa: S102 - the authors' own line
        out[f"3D_Voxel/{main}:args.dsa"] = bool(ns["args"].dsa)
    # DiffAugment(x, "") -> x (3D_Voxel/utils.py)
    diff = _function(os.path.join(vox, "utils.py"), "DiffAugment")
    x = np.arange(6.0)
    out["3D_Voxel/utils.py:DiffAugment(x, '') is x"] = diff(x, "", param=None) is x
    # main_DC.py: the evaluation epochs when args.dsa (lines 131-143)
    dc = open(os.path.join(vox, "main_DC.py")).read()
    m = re.search(r"if args\.dsa:\s*\n\s*args\.epoch_eval_train = (\d+)", dc)
    out["3D_Voxel/main_DC.py:epoch_eval_train if args.dsa"] = int(m.group(1))
    # networks: width / depth
    for d in ("3D_Voxel", "Video"):
        m = _line(os.path.join(ref, d, "utils.py"),
                  r"net_width, net_depth, net_act, net_norm, net_pooling = (\d+), (\d+),")
        out[f"{d}/utils.py:get_default_convnet_setting"] = [int(m.group(1)), int(m.group(2))]
    m = _line(os.path.join(fred_ref, "3D-MNIST", "utils.py"),
              r"net_width, net_depth = (\d+), (\d+)")
    out["3D-MNIST/utils.py:get_network width, depth"] = [int(m.group(1)), int(m.group(2))]
    out["3D_Voxel/utils.py:get_loops(1)"] = list(
        _function(os.path.join(vox, "utils.py"), "get_loops")(1))
    # Video: fields per class = dipc (no budget rule)
    vd = open(os.path.join(ref, "Video", "DDiF.py")).read()
    out["Video/DDiF.py:num_per_class = args.dipc"] = bool(
        re.search(r"self\.num_per_class = self\.args\.dipc\s*\n", vd))
    # Video: the DM loss and the evaluation augment nothing
    vm = open(os.path.join(ref, "Video", "distill_DDiF.py")).read()
    out["Video/distill_DDiF.py:augments"] = "DiffAugment" in vm or "augment(" in vm
    out["Video/distill_DDiF.py:evaluate mode"] = re.search(
        r"evaluate_synset_nf\(.*mode='(\w+)'\)", vm).group(1)
    out["Video/distill_DDiF.py:eval lr = syn_lr"] = float(
        _line(os.path.join(ref, "Video", "distill_DDiF.py"),
              r"syn_lr = torch\.tensor\(([\d.e-]+)\)").group(1))
    # FreD 3D-MNIST: no augmentation in the DM loop or the evaluation
    fm = open(os.path.join(fred_ref, "3D-MNIST", "main_DM_FreD.py")).read()
    live = "\n".join(ln.split("#", 1)[0] for ln in fm.splitlines())
    out["3D-MNIST/main_DM_FreD.py:augments"] = "DiffAugment" in live or "dsa_strategy" in live
    fu = open(os.path.join(fred_ref, "3D-MNIST", "utils.py")).read()
    out["3D-MNIST/utils.py:evaluate aug"] = sorted(set(re.findall(
        r"epoch\('(?:train|test)', .*aug = (\w+)\)", fu)))
    return out


def budgets(ref, hyper, scripts):
    _stub_modules()
    out = {}
    for d, im_size, channel, classes in (("3D_Voxel", (32, 32, 32), 1, None),
                                         ("Video", (112, 112), 3, 50)):
        cls = _import(os.path.join(ref, d, "DDiF.py"), f"ddif_{d.lower()}").DDiF
        t = hyper[d]
        out[d] = {}
        for key, rows in t["LAYER_SIZE"].items():
            out[d][key] = {}
            for ipc in rows:
                g = lambda name: t[name][key][ipc]  # noqa: E731
                dipc = 0 if d == "3D_Voxel" else scripts["Video/scripts/run_DDiF.sh"]["dipc"]
                args = types.SimpleNamespace(
                    log_path=os.devnull, channel=channel, num_classes=classes or 10,
                    im_size=im_size, device="cpu", ipc=int(ipc), dim_in=g("DIM_IN"),
                    num_layers=g("NUM_LAYERS"), layer_size=g("LAYER_SIZE"),
                    dim_out=g("DIM_OUT"), w0_initial=g("W0_INITIAL"), w0=g("W0"), lr_nf=1e-4,
                    epochs_init=0, lr_nf_init=5e-4, dipc=dipc, frames=16, res=32)
                s = cls(args)
                out[d][key][ipc] = [int(s.budget_per_instance), int(s.num_per_class)]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="checkout of aailab-kaist/DDiF")
    ap.add_argument("--fred_ref", required=True, help="checkout of sdh0818/FreD")
    add_commit_arg(ap, REPO)
    add_commit_arg(ap, FRED, flag="--fred_commit")
    args = ap.parse_args()
    ref, fred_ref = os.path.abspath(args.ref), os.path.abspath(args.fred_ref)
    for r in (ref, fred_ref):
        if not os.path.isdir(r):
            raise SystemExit(f"authors' code not found at {r}")
    fred_commit = checked_commit(fred_ref, args.fred_commit)
    hyper = {d: load_tables(os.path.join(ref, d, "hyper_params.py"), f"modal_hp_{d}")
             for d in ("3D_Voxel", "Video")}
    files = {"3D_Voxel/main_DM.py": ref, "3D_Voxel/main_DC.py": ref,
             "Video/distill_DDiF.py": ref, "3D-MNIST/main_DM_FreD.py": fred_ref}
    defaults = {f: argparse_defaults(os.path.join(r, f)) for f, r in files.items()}
    for f in ("3D_Voxel/main_DM.py", "3D_Voxel/main_DC.py"):
        m = _line(os.path.join(ref, f), r"np\.arange\(0, args\.Iteration\s*\+\s*1, (\d+)\)")
        defaults[f]["_eval_stride"] = int(m.group(1))
    sh = {"3D_Voxel/scripts/run_DDiF#DM.sh": ref, "3D_Voxel/scripts/run_DDiF#DC.sh": ref,
          "Video/scripts/run_DDiF.sh": ref, "3D-MNIST/scripts/run_DM_FreD.sh": fred_ref}
    scripts = {f: script_values(os.path.join(r, f)) for f, r in sh.items()}
    tables = dict(hyper=hyper, argparse=defaults, scripts=scripts,
                  rules=rules(ref, fred_ref), budget=budgets(ref, hyper, scripts), paper=PAPER)
    save_fixture("modal_tables", repo=REPO, ref=ref, commit=args.commit, script=__file__,
                 fred_commit=np.array(fred_commit),
                 tables=np.array(json.dumps(tables, sort_keys=True)))


if __name__ == "__main__":
    main()
