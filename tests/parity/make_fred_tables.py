"""Parity fixture for FreD's published settings: the authors' tables, read from their files.

    python tests/parity/make_fred_tables.py --ref=<checkout of sdh0818/FreD>

Writes tests/parity/fixtures/fred_tables.npz with one JSON string `tables`:
  hyper_params      TM/hyper_params.py's SYN_STEPS, EXPERT_EPOCHS, MAX_START_EPOCH, LR_LR,
                    LR_TEACHER (imported, as load_default reads them), keyed dataset -> ipc
  hyper_params_imagenet  the same five tables from ImageNet-abcde/hyper_params.py
  scripts           the shell variables of the run scripts (TM, DM, DC, ImageNet-abcde)
  main_defaults     argparse defaults of the main scripts (read with ast, literal values
                    only) and the value of their `args.dsa = ...` rule at those defaults
  tm_syn_lr_min     the clip applied to syn_lr after each step in main_TM_FreD.py
  dc_loops          DC/utils.py get_loops(ipc) for the IPCs of the tables (function executed
                    alone, it is pure)
  imagenet_eval_lr  ImageNet-abcde/glad_utils.py get_eval_lrs(args)[args.model] (same)
  dct_norm_default  the `norm` default of TM/frequency_transforms.DCT (None = unnormalized)
  zca_refused       whether load_default exits on --zca
Needs torch only for the DCT import; never edits the authors' files.
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
import json
import os
import re
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

TABLES = ("SYN_STEPS", "EXPERT_EPOCHS", "MAX_START_EPOCH", "LR_LR", "LR_TEACHER")
SCRIPTS = ("TM/scripts/run_TM_FreD.sh", "ImageNet-abcde/scripts/run_TM_FreD.sh",
           "DM/scripts/run_DM_FreD.sh", "DC/scripts/run_DC_FreD.sh",
           "ImageNet-abcde/scripts/run_DM_FreD.sh", "ImageNet-abcde/scripts/run_DC_FreD.sh")
MAINS = ("TM/main_TM_FreD.py", "DM/main_DM_FreD.py", "DC/main_DC_FreD.py",
         "ImageNet-abcde/main_TM_FreD.py", "ImageNet-abcde/main_DM_FreD.py",
         "ImageNet-abcde/main_DC_FreD.py")


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def hyper_tables(path):
    mod = load_module(path, "fred_hyper_params_" + str(abs(hash(path))))
    return {t: {ds: {str(ipc): v for ipc, v in rows.items()}
                for ds, rows in getattr(mod, t).items()} for t in TABLES}


def zca_refused(path):
    mod = load_module(path, "fred_hyper_zca_" + str(abs(hash(path))))
    try:
        mod.load_default(argparse.Namespace(zca=True))
    except SystemExit:
        return True
    return False


def parse_script(path):
    out = {}
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", line)
        if not m:
            continue
        k, v = m.group(1), m.group(2).strip('"')
        for cast in (int, float):
            try:
                v = cast(v)
                break
            except ValueError:
                pass
        out[k] = v
    return out


def argparse_defaults(src):
    """{'--name': default} of every parser.add_argument(...) with a literal default."""
    out = {}
    for node in ast.walk(ast.parse(src)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument" and node.args
                and isinstance(node.args[0], ast.Constant)):
            for kw in node.keywords:
                if kw.arg == "default":
                    try:
                        out[node.args[0].value.lstrip("-")] = ast.literal_eval(kw.value)
                    except ValueError:
                        pass
    return out


def dsa_rule(src, defaults):
    """Evaluate the script's own `args.dsa = <expr>` at the argparse defaults."""
    for node in ast.walk(ast.parse(src)):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and ast.unparse(node.targets[0]) == "args.dsa"):
            expr = ast.unparse(node.value)
            return expr, bool(eval(expr, {}, {"args": argparse.Namespace(**defaults)}))
    raise AssertionError("no args.dsa rule")


def function_from(path, name):
    src = open(path).read()
    for node in ast.parse(src).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            ns = {}
            exec(compile(ast.Module([node], []), path, "exec"), ns)
            return ns[name]
    raise AssertionError(f"{name} not in {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", required=True, help="checkout of sdh0818/FreD")
    common.add_commit_arg(ap, "sdh0818/FreD")
    args = ap.parse_args()
    ref = os.path.abspath(args.ref)
    j = lambda *p: os.path.join(ref, *p)

    tables = {
        "hyper_params": hyper_tables(j("TM", "hyper_params.py")),
        "hyper_params_imagenet": hyper_tables(j("ImageNet-abcde", "hyper_params.py")),
        "zca_refused": zca_refused(j("TM", "hyper_params.py")),
        "scripts": {s: parse_script(j(s)) for s in SCRIPTS},
    }
    # ImageNet-abcde mains take most arguments from shared_args.add_shared_args()
    sys.path.insert(0, j("ImageNet-abcde"))
    shared = vars(load_module(j("ImageNet-abcde", "shared_args.py"), "fred_shared_args")
                  .add_shared_args().parse_args([]))
    mains = {}
    for m in MAINS:
        src = open(j(m)).read()
        d = dict(shared) if m.startswith("ImageNet-abcde") else {}
        d.update(argparse_defaults(src))
        expr, dsa = dsa_rule(src, d)
        mains[m] = dict(defaults=d, dsa_rule=expr, dsa=dsa)
    tables["main_defaults"] = mains

    tm_src = open(j("TM", "main_TM_FreD.py")).read()
    clip = re.findall(r"syn_lr\.data\.clip\(min=([0-9.e-]+)\)", tm_src)
    assert len(clip) == 1, clip
    tables["tm_syn_lr_min"] = float(clip[0])

    get_loops = function_from(j("DC", "utils.py"), "get_loops")
    tables["dc_loops"] = {str(i): list(get_loops(i)) for i in (1, 2, 10, 11, 50, 51)}
    get_eval_lrs = function_from(j("ImageNet-abcde", "glad_utils.py"), "get_eval_lrs")
    im_model = tables["scripts"]["ImageNet-abcde/scripts/run_TM_FreD.sh"]["net"]
    tables["imagenet_eval_lr"] = get_eval_lrs(argparse.Namespace(model=im_model))[im_model]

    common.add_reference_path(ref, "TM")
    import frequency_transforms  # the authors' DCT class (torch only)
    tables["dct_norm_default"] = inspect.signature(
        frequency_transforms.DCT.__init__).parameters["norm"].default

    import numpy as np
    common.save_fixture("fred_tables", repo="sdh0818/FreD", ref=ref, commit=args.commit,
                        script=__file__,
                        tables=np.array(json.dumps(tables, sort_keys=True)))


if __name__ == "__main__":
    main()
