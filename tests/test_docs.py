"""The documentation is part of the repository: README.md is an index into docs/, every
link resolves, and nothing cites a file outside the repository.

* the docs the README promises exist, the README links every one of them and stays an
  index (at most 230 lines) holding CI's exact test command;
* every `docs/<name>.md` mentioned in any repository file exists;
* every relative markdown link in README.md and docs/*.md resolves to a file, and a
  `#fragment` to a heading of that file (GitHub's anchors);
* every repository path written in backticks in README.md and docs/*.md exists;
* no repository file mentions the design / reference notes kept outside the repository or
  a path into the shared folder next to it (cite docs/design.md, docs/methods.md instead).
"""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ("design", "methods", "results", "parity", "operations", "performance")
CI_TEST_COMMAND = 'pip install -e ".[test]" && pytest -q -n 2 --dist loadfile'
# built from pieces so that this file does not mention them itself
OUTSIDE = ("DESIGN" + ".md", "REFERENCE" + ".md", "../" + "shared", "shared" + "/papers")


def _read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def _doc_files():
    return ["README.md"] + sorted(
        os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs"))
        if f.endswith(".md"))


def _repository_files():
    """Tracked files plus untracked ones git does not ignore (a clean clone: the tracked
    files); without git, every file outside .git and the usual build outputs."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
        files = sorted({f for f in out.decode().split("\0") if f})
        if files:
            return [f for f in files if os.path.isfile(os.path.join(ROOT, f))]
    except (OSError, subprocess.SubprocessError):
        pass
    skip = {".git", "__pycache__", "workdirs", "buffers", "bench_results", "build"}
    files = []
    for root, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
        files += [os.path.relpath(os.path.join(root, n), ROOT) for n in names]
    return sorted(files)


def _text(rel):
    """The file's text, None for binary files (fixtures, images)."""
    with open(os.path.join(ROOT, rel), "rb") as f:
        data = f.read()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _anchors(markdown):
    """GitHub's heading anchors of a markdown text (code blocks skipped)."""
    anchors, seen, fenced = set(), {}, False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip()
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link keeps its text
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _links(markdown):
    """Targets of the inline markdown links of a text, outside code spans and blocks."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", text)


def test_docs_exist_and_the_readme_is_an_index():
    readme = _read("README.md")
    for name in DOCS:
        assert os.path.isfile(os.path.join(ROOT, "docs", f"{name}.md")), f"docs/{name}.md"
        assert f"](docs/{name}.md" in readme, f"README.md does not link docs/{name}.md"
    n = readme.count("\n")
    assert n <= 230, f"README.md has {n} lines: it is an index, move the content to docs/"
    assert any(line.strip() == CI_TEST_COMMAND for line in readme.splitlines()), \
        f"README.md must show CI's test command on a line of its own: {CI_TEST_COMMAND}"
    ci = _read(os.path.join(".ci", "run")).splitlines()
    assert any(line.strip() == CI_TEST_COMMAND for line in ci), \
        "README's test command and CI's (.ci/run) must be the same line"


def test_every_mentioned_doc_exists():
    missing = []
    for rel in _repository_files():
        text = _text(rel)
        if text is None:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            for m in re.finditer(r"\bdocs/([\w.-]+\.md)\b", line):
                if not os.path.isfile(os.path.join(ROOT, "docs", m.group(1))):
                    missing.append(f"{rel}:{lineno}: docs/{m.group(1)}")
    assert not missing, "mentions of docs that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("rel", _doc_files())
def test_relative_links_resolve(rel):
    base = os.path.dirname(os.path.join(ROOT, rel))
    bad = []
    for target in _links(_read(rel)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        full = os.path.normpath(os.path.join(base, path)) if path else os.path.join(ROOT, rel)
        if not full.startswith(ROOT + os.sep) or not os.path.exists(full):
            bad.append(f"{target}: no such file in the repository")
            continue
        if fragment and full.endswith(".md"):
            with open(full, encoding="utf-8") as f:
                if fragment not in _anchors(f.read()):
                    bad.append(f"{target}: no heading #{fragment} in {os.path.relpath(full, ROOT)}")
    assert not bad, f"{rel}: broken links:\n" + "\n".join(bad)


@pytest.mark.parametrize("rel", _doc_files())
def test_repository_paths_in_docs_exist(rel):
    """`jaxdd/...`, `launch/...`, `configs/...`, `tests/...`, `examples/...` paths written
    in backticks or starting an indented line (the layout and the module map; placeholders
    such as <name> or {a,b} are patterns, not paths)."""
    text = _read(rel)
    # backticked spans, plus the first word of indented lines (layout / module maps)
    spans = re.findall(r"`([^`\n]+)`", text)
    spans += [m.group(1) for m in re.finditer(r"(?m)^ {4,}(\S+)", text)]
    bad = []
    for span in spans:
        for m in re.finditer(r"(?<![\w./-])((?:jaxdd|launch|configs|tests|examples|docs)/"
                             r"[\w./-]*)", span):
            path = m.group(1).rstrip(".")
            tail = span[m.end():m.end() + 1]
            if tail and tail in "<{*[":
                continue
            if not os.path.exists(os.path.join(ROOT, path)):
                bad.append(path)
    assert not bad, f"{rel} names paths that do not exist: {sorted(set(bad))}"


def test_nothing_cites_files_outside_the_repository():
    hits = []
    for rel in _repository_files():
        text = _text(rel)
        if text is None:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            for word in OUTSIDE:
                if word in line:
                    hits.append(f"{rel}:{lineno}: {line.strip()}")
    assert not hits, ("files cite notes outside the repository; cite docs/design.md or "
                      "docs/methods.md instead:\n" + "\n".join(hits))
