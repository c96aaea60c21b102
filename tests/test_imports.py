"""The import rules of docs/design.md, checked on the source (ast) of every module under jaxdd/:

* parameterizations (jaxdd/param/) and objectives (jaxdd/objective/) never import each other;
* objectives and parameterizations never import the loop (distill and its parts: the
  run assembly, the outer step, checkpoints, guards, evaluators; evaluate, experts) nor
  the benchmarks;
* the loop (jaxdd.distill) names no parameterization or objective module: it reaches them
  through jaxdd.assemble, jaxdd.param.get and the objective registry;
* nothing under jaxdd/ imports launch/ or configs/, runs a file by path, or edits sys.path;
* no torch in the library except inside functions (the benchmark's PyTorch peer).
"""
import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PKG = os.path.join(ROOT, "jaxdd")
# the loop side (docs/design.md "Import rules"): what prepares an objective's inputs and drives it
LOOP = ("jaxdd.distill", "jaxdd.assemble", "jaxdd.outer_step", "jaxdd.checkpoints",
        "jaxdd.guards", "jaxdd.evaluators", "jaxdd.evaluate", "jaxdd.experts", "jaxdd.bench")


def _modules():
    out = []
    for root, _, files in os.walk(PKG):
        for f in sorted(files):
            if f.endswith(".py"):
                path = os.path.join(root, f)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out.append((rel[:-len(".__init__")] if rel.endswith(".__init__") else rel,
                            path))
    return sorted(out)


MODULES = _modules()


def _imports(name, path):
    """[(imported module, top_level: bool)] of a module (relative imports resolved;
    'from a import b' yields both a and a.b)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    pkg = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.append((base, id(node) in top))
            out += [(f"{base}.{a.name}", id(node) in top) for a in node.names]
    return out


def _hits(imports, prefixes):
    return sorted({m for m, _ in imports
                   if any(m == p or m.startswith(p + ".") for p in prefixes)})


def test_modules_found():
    names = [n for n, _ in MODULES]
    assert "jaxdd.objective.tm" in names and "jaxdd.param.pixel" in names


@pytest.mark.parametrize("name,path", [m for m in MODULES if m[0].startswith("jaxdd.objective")])
def test_objectives_import_neither_loop_nor_parameterizations(name, path):
    bad = _hits(_imports(name, path), LOOP + ("jaxdd.param",))
    assert not bad, f"{name} imports {bad}: an objective must not know the loop or the " \
                    "parameterizations (docs/design.md); the loop hands it what it needs"


@pytest.mark.parametrize("name,path", [m for m in MODULES if m[0].startswith("jaxdd.param")])
def test_parameterizations_import_neither_loop_nor_objectives(name, path):
    bad = _hits(_imports(name, path), LOOP + ("jaxdd.objective",))
    assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize("name,path", MODULES)
def test_library_never_imports_launch_or_configs(name, path):
    imports = _imports(name, path)
    bad = _hits(imports, ("launch", "configs"))
    assert not bad, f"{name} imports {bad}"
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("spec_from_file_location",
                                                             "run_path"):
            pytest.fail(f"{name} runs a file by path ({node.attr}, line {node.lineno})")
        if isinstance(node, ast.Attribute) and node.attr == "path" and \
                isinstance(node.value, ast.Name) and node.value.id == "sys":
            pytest.fail(f"{name} touches sys.path (line {node.lineno})")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.value in ("configs", "launch"):
            pytest.fail(f"{name} builds a path into {node.value}/ (line {node.lineno})")
    torch_top = [m for m, top in imports if top and (m == "torch" or m.startswith("torch."))]
    assert not torch_top, f"{name} imports torch at module level (only inside functions)"


def test_launch_scripts_do_not_edit_sys_path():
    for f in sorted(os.listdir(os.path.join(ROOT, "launch"))):
        if f.endswith(".py"):
            with open(os.path.join(ROOT, "launch", f)) as fh:
                src = fh.read()
            assert "sys.path" not in src, f"launch/{f} edits sys.path (install jaxdd instead)"


def test_the_loop_names_no_parameterization_or_objective():
    """jaxdd/distill.py imports no jaxdd.param.<name> / jaxdd.objective.<name> module and
    mentions no method by name in its code (strings and docstrings aside)."""
    path = os.path.join(PKG, "distill.py")
    mods = [m for m, _ in _imports("jaxdd.distill", path)]
    named = [m for m in mods if m.startswith(("jaxdd.param.", "jaxdd.objective."))]
    assert not named, named
    with open(path) as f:
        tree = ast.parse(f.read())
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    methods = {"pixel", "fred", "ddif", "nsd", "tm", "dm", "dc", "cfm", "teacher_needed",
               "warmup_steps"}
    assert not (names & methods), names & methods
