"""Parity fixture for the per-dataset normalization constants (issue 13 item 2): the
(mean, std) each authors' get_dataset hard-codes, extracted from their source with `ast`
(torchvision is not needed: nothing is executed).

    python tests/parity/make_data_constants.py --ref=<folder holding the four checkouts>

--ref is the folder holding the checkouts mtt-distillation, FreD, DDiF and UniDD. For every
listed file, every `if dataset == ...` / `dataset.startswith(...)` branch of get_dataset that
assigns `mean = [...]` and `std = [...]` gives one entry; where a branch assigns them more
than once under a further condition (FreD ImageNet-abcde/utils.py: `if args.space == "p" or
True:` / `if True or (...)`), the first assignment is the one that runs for the published
pixel-space setting and is stored. Keys: '<repo>/<file>|<authors' dataset name>|mean|std'
(+ '|line' with the source line of the mean).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity.common import PINNED, add_commit_arg, checked_commit, save_fixture  # noqa: E402

# checkout folder under --ref -> (repository, its --commit flag)
REPOS = {"mtt-distillation": ("GeorgeCazenavette/mtt-distillation", "--commit"),
         "FreD": ("sdh0818/FreD", "--commit-fred"), "DDiF": ("aailab-kaist/DDiF", "--commit-ddif"),
         "UniDD": ("bdy9527/UniDD", "--commit-unidd")}
assert {r for r, _ in REPOS.values()} == set(PINNED)

FILES = [
    "mtt-distillation/utils.py",
    "FreD/TM/utils.py", "FreD/DC/utils.py", "FreD/DM/utils.py", "FreD/ImageNet-abcde/utils.py",
    "DDiF/TM/utils.py", "DDiF/DC/utils.py", "DDiF/DM/utils.py",
    "UniDD/baseline.py",
]


def _branch_name(test: ast.expr):
    """'CIFAR10' from `dataset == 'CIFAR10'` / `dataset.startswith('CIFAR100')` /
    `'LSUN' in dataset`; None for conditions on anything else."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right = test.left, test.comparators[0]
        if isinstance(test.ops[0], ast.Eq) and isinstance(left, ast.Name) and left.id == "dataset":
            return ast.literal_eval(right)
        if isinstance(test.ops[0], ast.In) and isinstance(right, ast.Name) and right.id == "dataset":
            return ast.literal_eval(left)
    if (isinstance(test, ast.Call) and isinstance(test.func, ast.Attribute)
            and test.func.attr == "startswith" and isinstance(test.func.value, ast.Name)
            and test.func.value.id == "dataset"):
        return ast.literal_eval(test.args[0]).rstrip("-")
    return None


def extract(path):
    tree = ast.parse(open(path).read())
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "get_dataset")
    found = {}

    def assigns(body, out):
        for st in body:
            if (isinstance(st, ast.Assign) and len(st.targets) == 1
                    and isinstance(st.targets[0], ast.Name) and st.targets[0].id in ("mean", "std")):
                out.setdefault(st.targets[0].id, (ast.literal_eval(st.value), st.lineno))
            elif isinstance(st, ast.If) and _branch_name(st.test) is None:
                assigns(st.body, out)  # e.g. `if args.space == "p" or True:` -> first wins
                assigns(st.orelse, out)

    def walk(body):
        for st in body:
            if isinstance(st, ast.If):
                name = _branch_name(st.test)
                if name is not None:
                    out = {}
                    assigns(st.body, out)
                    if "mean" in out and "std" in out:
                        found[name] = out
                    walk(st.orelse)
                else:
                    walk(st.body)
                    walk(st.orelse)

    walk(fn.body)
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True,
                    help="folder holding the checkouts mtt-distillation, FreD, DDiF, UniDD")
    for folder, (repo, flag) in REPOS.items():
        add_commit_arg(ap, repo, flag)
    args = ap.parse_args()
    arrays, commits = {}, {}
    for rel in FILES:
        repo = rel.split("/")[0]
        commits[repo] = checked_commit(os.path.join(args.ref, repo), getattr(
            args, REPOS[repo][1][2:].replace("-", "_")))
        for name, d in extract(os.path.join(args.ref, rel)).items():
            key = f"{rel}|{name}"
            arrays[f"{key}|mean"] = np.asarray(d["mean"][0], np.float64)
            arrays[f"{key}|std"] = np.asarray(d["std"][0], np.float64)
            arrays[f"{key}|line"] = np.asarray(d["mean"][1])
            print(f"{key:45s} mean {d['mean'][0]} std {d['std'][0]} (line {d['mean'][1]})")
    save_fixture("data_constants", repo="mtt-distillation, FreD, DDiF, UniDD (commits in "
                 "'commits')", ref=os.path.join(args.ref, "mtt-distillation"), commit=args.commit,
                 script=__file__,
                 commits=np.array(json.dumps(commits)), **arrays)


if __name__ == "__main__":
    main()
