"""Make tests/parity/fixtures/ddif_tables.npz: DDiF's published settings, read from the
authors' repository (aailab-kaist/DDiF) by machine, for tests/test_parity_ddif_tables.py.

    python tests/parity/make_ddif_tables.py --ref=<checkout of aailab-kaist/DDiF>

Stored as one JSON string (key ``tables``):
  hyper      {TM, DM, DC}: every UPPER_CASE table of <obj>/hyper_params.py (imported).
  argparse   {file: {option: default}} of TM/main_TM.py, DM/main_DM.py, DC/main_DC.py and
             TM/buffer.py, parsed with ``ast`` from their ``parser.add_argument`` calls
             (store_true options -> False; no default -> None); for DM / DC also
             ``_eval_stride``, the N of their ``np.arange(0, args.Iteration+1, N)``.
  scripts    {file: {variable: value, "flags": [...]}} of <obj>/scripts/run_DDiF.sh and
             TM/scripts/run_buffer.sh: the shell variables and the ``--`` options that are
             not commented out (e.g. '--zca' is commented out in every script).
  budget     {obj: {key: {ipc: [budget_per_instance, num_per_class]}}}: the authors' DDiF
             class (SynSet/DDiF.py __init__) built for every row of the field tables at the
             row's resolution (3 channels).
  paper      facts stated only in the paper (App. B.4), quoted: the ZCA settings and the
             iteration counts. Not from the repository; kept apart and labelled.
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import re
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity.common import add_commit_arg, add_reference_path, save_fixture  # noqa: E402

REPO = "aailab-kaist/DDiF"
PAPER_B4 = ("We adopt ZCA whitening on CIFAR-10 (IPC=1, 10) and CIFAR-100 (IPC=1) with the "
            "Kornia implementation. [...] We run 15,000 iterations for TM and 20,000 "
            "iterations for DM.")


def load_tables(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {k: {kk: {str(i): v for i, v in vv.items()} for kk, vv in t.items()}
            for k, t in vars(mod).items() if k.isupper() and isinstance(t, dict)}


def argparse_defaults(path):
    tree = ast.parse(open(path).read())
    out = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument" and node.args
                and isinstance(node.args[0], ast.Constant)):
            name = node.args[0].value.lstrip("-")
            kw = {k.arg: k.value for k in node.keywords}
            if "default" in kw:
                out[name] = ast.literal_eval(kw["default"])
            elif "action" in kw and ast.literal_eval(kw["action"]) == "store_true":
                out[name] = False
            else:
                out[name] = None
    return out


def script_values(path):
    text = open(path).read()
    out = {}
    for m in re.finditer(r"^(\w+)=\"?([^\"#\s]*)\"?", text, re.M):
        v = m.group(2)
        try:
            v = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            pass
        out[m.group(1)] = v
    live = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    out["flags"] = sorted(set(re.findall(r"(--\w+)", live)))
    return out


def budgets(ref, fields_tables):
    # SynSet/DDiF.py imports torchvision.utils.save_image and utils.save_and_print (image
    # dumps / logging only): stubbed; DDiF.__init__ computes the budget.
    tv, tvu = types.ModuleType("torchvision"), types.ModuleType("torchvision.utils")
    tvu.save_image = lambda *a, **k: None
    tv.utils = tvu
    sys.modules.setdefault("torchvision", tv)
    sys.modules.setdefault("torchvision.utils", tvu)
    ut = types.ModuleType("utils")
    ut.get_time, ut.save_and_print = (lambda: "t"), (lambda *a, **k: None)
    sys.modules["utils"] = ut
    add_reference_path(ref)
    import SynSet  # noqa: F401
    DDiF = sys.modules["SynSet.DDiF"].DDiF
    out = {}
    for obj, t in fields_tables.items():
        out[obj] = {}
        for key, rows in t["LAYER_SIZE"].items():
            res = int(key.split("_")[1])
            out[obj][key] = {}
            for ipc in rows:
                g = lambda name: t[name][key][ipc]  # noqa: E731
                args = types.SimpleNamespace(
                    log_path=os.devnull, channel=3, num_classes=10, im_size=(res, res),
                    device="cpu", ipc=int(ipc), dim_in=g("DIM_IN"), num_layers=g("NUM_LAYERS"),
                    layer_size=g("LAYER_SIZE"), dim_out=g("DIM_OUT"),
                    w0_initial=g("W0_INITIAL"), w0=g("W0"), lr_nf=1e-4, epochs_init=0,
                    lr_nf_init=5e-4, dipc=0)
                s = DDiF(args)
                out[obj][key][ipc] = [int(s.budget_per_instance), int(s.num_per_class)]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="checkout of aailab-kaist/DDiF")
    add_commit_arg(ap, REPO)
    args = ap.parse_args()
    ref = os.path.abspath(args.ref)
    if not os.path.isdir(ref):
        raise SystemExit(f"authors' code not found at {ref}")
    hyper = {o: load_tables(os.path.join(ref, o, "hyper_params.py"), f"ddif_hp_{o}")
             for o in ("TM", "DM", "DC")}
    files = ["TM/main_TM.py", "DM/main_DM.py", "DC/main_DC.py", "TM/buffer.py"]
    defaults = {f: argparse_defaults(os.path.join(ref, f)) for f in files}
    # DM / DC evaluate at a hard-coded stride: eval_it_pool = np.arange(0, Iteration+1, N)
    for f in ("DM/main_DM.py", "DC/main_DC.py"):
        m = re.search(r"np\.arange\(0, args\.Iteration\s*\+\s*1, (\d+)\)",
                      open(os.path.join(ref, f)).read())
        defaults[f]["_eval_stride"] = int(m.group(1))
    scripts = {f: script_values(os.path.join(ref, f))
               for f in ("TM/scripts/run_DDiF.sh", "DM/scripts/run_DDiF.sh",
                         "DC/scripts/run_DDiF.sh", "TM/scripts/run_buffer.sh")}
    paper = {"quote": PAPER_B4, "section": "App. B.4",
             "zca": {"CIFAR10_32": [1, 10], "CIFAR100_32": [1], "ImageNet_128": []},
             "iterations": {"TM": 15000, "DM": 20000}}
    tables = dict(hyper=hyper, argparse=defaults, scripts=scripts,
                  budget=budgets(ref, hyper), paper=paper)
    save_fixture("ddif_tables", repo=REPO, ref=ref, commit=args.commit, script=__file__,
                 tables=np.array(json.dumps(tables, sort_keys=True)))


if __name__ == "__main__":
    main()
