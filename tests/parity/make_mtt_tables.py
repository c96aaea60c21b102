"""Fixture: MTT's published TM settings, extracted from the authors' repository.

    python tests/parity/make_mtt_tables.py --ref=<checkout of GeorgeCazenavette/mtt-distillation>

Writes tests/parity/fixtures/mtt_tables.npz with one JSON string `tables`:

* readme_distill: every `python distill.py ...` command line of readme.md, parsed
  mechanically (regex over the fenced code; placeholders {path...} dropped);
* readme_buffer: the `python buffer.py ...` command of readme.md;
* distill_defaults / buffer_defaults: the argparse defaults of distill.py / buffer.py, read
  with `ast` (no import: the scripts import wandb and need CUDA);
* table_image: the rows of readme.md's "full list of hyper-parameters". In the README that
  table is an IMAGE (user-images.githubusercontent.com/18726777/184226412-...png, the same
  table the author posted in issue #7), so it cannot be parsed from the repository. Its rows
  are stated below as command lines, as transcribed (author-provided) in DC-BENCH
  (justincui03/dc_benchmark methods/tm/readme.md @ 071901d430e8), and parsed like the
  README's own commands;
* author_issue_1: the author's ImageNet setting from issue #1 (a comment, not the repo).

MTT has no hyper_params.py; this is the closest thing to one. CI never runs this script.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity.common import add_commit_arg, save_fixture  # noqa: E402

# readme.md's table image, row by row (see the module docstring for the source).
TABLE_IMAGE_COMMANDS = """
python distill.py --dataset=CIFAR10 --ipc=1 --syn_steps=50 --expert_epochs=2 --max_start_epoch=2 --lr_img=100 --lr_lr=1e-07 --lr_teacher=0.01 --zca
python distill.py --dataset=CIFAR10 --ipc=10 --syn_steps=30 --expert_epochs=2 --max_start_epoch=20 --lr_img=100 --lr_lr=1e-05 --lr_teacher=0.001 --zca
python distill.py --dataset=CIFAR10 --ipc=50 --syn_steps=30 --expert_epochs=2 --max_start_epoch=40 --lr_img=1000 --lr_lr=1e-05 --lr_teacher=0.001
python distill.py --dataset=CIFAR100 --ipc=1 --syn_steps=20 --expert_epochs=3 --max_start_epoch=20 --lr_img=1000 --lr_lr=1e-05 --lr_teacher=0.01 --zca
python distill.py --dataset=CIFAR100 --ipc=10 --syn_steps=20 --expert_epochs=2 --max_start_epoch=20 --lr_img=1000 --lr_lr=1e-05 --lr_teacher=0.01
python distill.py --dataset=CIFAR100 --ipc=50 --syn_steps=80 --expert_epochs=2 --max_start_epoch=40 --lr_img=1000 --lr_lr=1e-05 --lr_teacher=0.01 --batch_syn=125 --zca
python distill.py --dataset=Tiny --model=ConvNetD4 --ipc=1 --syn_steps=10 --expert_epochs=2 --max_start_epoch=10 --lr_img=10000 --lr_lr=1e-04 --lr_teacher=0.01
python distill.py --dataset=Tiny --model=ConvNetD4 --ipc=10 --syn_steps=20 --expert_epochs=2 --max_start_epoch=40 --lr_img=10000 --lr_lr=1e-04 --lr_teacher=0.01 --batch_syn=200
python distill.py --dataset=Tiny --model=ConvNetD4 --ipc=50 --syn_steps=20 --expert_epochs=2 --max_start_epoch=40 --lr_img=10000 --lr_lr=1e-04 --lr_teacher=0.01 --batch_syn=300
"""

# GeorgeCazenavette/mtt-distillation issue #1 (author, 2022-03-24): "For ImageNet ... all of
# the experiments were run with --syn_steps=20 --expert_epochs=2 --max_start_epoch=10
# --lr_img=100000 --lr_lr=1e-06 --lr_teacher=0.01. For 10 images per class, we also used
# --batch_syn=20."
AUTHOR_ISSUE_1 = """
python distill.py --dataset=ImageNet --model=ConvNetD5 --ipc=1 --res=128 --syn_steps=20 --expert_epochs=2 --max_start_epoch=10 --lr_img=100000 --lr_lr=1e-06 --lr_teacher=0.01
python distill.py --dataset=ImageNet --model=ConvNetD5 --ipc=10 --res=128 --syn_steps=20 --expert_epochs=2 --max_start_epoch=10 --lr_img=100000 --lr_lr=1e-06 --lr_teacher=0.01 --batch_syn=20
"""


def parse_command(line: str) -> dict:
    """'python distill.py --a=1 --b 2 --flag ...' -> {'a': '1', 'b': '2', 'flag': True}."""
    toks = shlex.split(line.replace("{", "'{").replace("}", "}'"))
    out, i = {"script": toks[1]}, 2
    while i < len(toks):
        t = toks[i]
        if not t.startswith("--"):
            i += 1
            continue
        if "=" in t:
            k, v = t[2:].split("=", 1)
        elif i + 1 < len(toks) and not toks[i + 1].startswith("--"):
            k, v = t[2:], toks[i + 1]
            i += 1
        else:
            k, v = t[2:], True
        if not (isinstance(v, str) and v.startswith("{")):  # {path_to_...} placeholders
            out[k] = v
        i += 1
    return out


def commands(text: str, script: str) -> list:
    return [parse_command(m.group(0)) for m in
            re.finditer(rf"python {re.escape(script)}[^\n`]*", text)]


def argparse_defaults(path: str) -> dict:
    """{dest: default} of every parser.add_argument(...) call with a literal default."""
    tree = ast.parse(open(path).read())
    out = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument"
                and node.args and isinstance(node.args[0], ast.Constant)):
            name = node.args[0].value.lstrip("-")
            kw = {k.arg: k.value for k in node.keywords}
            if "default" in kw:
                try:
                    out[name] = ast.literal_eval(kw["default"])
                except ValueError:
                    out[name] = ast.unparse(kw["default"])
            elif "action" in kw and ast.literal_eval(kw["action"]) == "store_true":
                out[name] = False
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="checkout of GeorgeCazenavette/mtt-distillation")
    add_commit_arg(ap, "GeorgeCazenavette/mtt-distillation")
    args = ap.parse_args()
    readme = open(os.path.join(args.ref, "readme.md")).read()
    tables = dict(
        readme_distill=commands(readme, "distill.py"),
        readme_buffer=commands(readme, "buffer.py"),
        readme_buffer_note=[line.strip() for line in readme.splitlines()
                            if "epochs with the default learning rate" in line],
        distill_defaults=argparse_defaults(os.path.join(args.ref, "distill.py")),
        buffer_defaults=argparse_defaults(os.path.join(args.ref, "buffer.py")),
        table_image=commands(TABLE_IMAGE_COMMANDS, "distill.py"),
        author_issue_1=commands(AUTHOR_ISSUE_1, "distill.py"),
    )
    assert len(tables["readme_distill"]) == 3 and len(tables["table_image"]) == 9, tables
    print(json.dumps(tables, indent=1)[:3000])
    save_fixture("mtt_tables", repo="GeorgeCazenavette/mtt-distillation", ref=args.ref,
                 commit=args.commit,
                 script=__file__, tables=json.dumps(tables))


if __name__ == "__main__":
    main()
