"""The layers of loopwise (docs/architecture.md), held by reading every import in src/loopwise.

Every ``import``/``from ... import`` counts: at module level, inside functions and under
``TYPE_CHECKING``. No two modules import each other (directly or round a loop), no two top-level
packages do, and no import runs from a layer to a higher one. A new top-level package or module
must be given its layer in ``LAYERS`` below (and in docs/architecture.md).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "loopwise"

# Low to high. A module may import its own layer (without a loop) and the layers below it.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"utils", "backend"}),  # general helpers; which frameworks are installed
    frozenset({"record"}),  # run folder, store, schema, the one store reader; no torch
    frozenset({"distributed"}),  # process group, reducer, sharding, resumable sampler, RNG
    frozenset({"watch"}),  # the loop's eyes: bar, accumulator, system sampler, health
    frozenset({"checkpoint"}),  # the one checkpoint write path
    frozenset({"view", "export"}),  # readers of the record: reports, plots, CLI views, exporters
    frozenset({"train"}),  # fit, Workflow, resume, callbacks (writes its report through view)
    frozenset({"keras", "lightning", "transformers", "cli", "callbacks", "demo", "__main__",
               "loopwise"}),  # front doors
)
LAYER_OF = {name: index for index, layer in enumerate(LAYERS) for name in layer}


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _targets(module: str, is_package: bool, node: ast.AST) -> Iterable[str]:
    """The loopwise modules one import statement of ``module`` imports."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        # ``from pkg import sub`` imports the module pkg.sub; ``from mod import name`` imports mod
        names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                 for alias in node.names]
    else:
        return []
    found = []
    for name in names:
        while name not in MODULES and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in MODULES and name != module:
            found.append(name)
    return found


def _imports() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for module, (path, is_package) in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            edges[module].update(_targets(module, is_package, node))
    return edges


IMPORTS = _imports()


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_walk_sees_imports_inside_functions() -> None:
    # the control: these imports sit inside functions (or under TYPE_CHECKING) in the source
    assert "loopwise.train.reference" in IMPORTS["loopwise.train.fit.cli"]
    assert "loopwise.record.run" in IMPORTS["loopwise.export.base"]
    assert len(MODULES) > 150


def test_the_cycle_finder_finds_a_loop() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_two_modules_import_each_other() -> None:
    assert _cycles(IMPORTS) == []


def test_no_two_top_level_packages_import_each_other() -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in IMPORTS.items():
        packages.setdefault(_top(module), set()).update(
            _top(t) for t in targets if _top(t) != _top(module))
    assert _cycles(packages) == []


def test_every_top_level_package_has_a_layer() -> None:
    assert sorted({_top(m) for m in MODULES} - set(LAYER_OF)) == []


def _upward(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} ({_top(module)}) imports {target} ({_top(target)})"
                  for module, targets in edges.items() for target in targets
                  if LAYER_OF[_top(target)] > LAYER_OF[_top(module)])


def test_no_import_runs_up_the_layers() -> None:
    # the control: an import from record/ to train/ is seen as one going up
    assert _upward({"loopwise.record.run": {"loopwise.train.fit.entry"}}) == [
        "loopwise.record.run (record) imports loopwise.train.fit.entry (train)"]
    assert _upward(IMPORTS) == []


def test_the_docs_draw_the_same_layers() -> None:
    text = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    drawing = text[text.index("## Layers"):]
    start = drawing.index("```") + 3
    drawing = drawing[start:drawing.index("```", start)]
    # the drawing lists the layers high to low, one line each
    rows = [line for line in drawing.splitlines() if "/" in line and not line.startswith("#")]
    drawn = [sorted(w.rstrip("/,") for w in row.split() if w.endswith(("/", "/,")))
             for row in rows]
    expected = [sorted(n for n in layer if (PACKAGE / n).is_dir()) for layer in LAYERS][::-1]
    assert drawn == expected


RUN_FOLDER_FILES = {"run.json", "config.json", "store.sqlite", "log.jsonl", "writer.lock",
                    "report.html"}
STORE_READERS = {"loopwise.record.reader", "loopwise.record.follow", "loopwise.record.store",
                 "loopwise.record.storefile"}


def _strings(path: Path) -> Iterable[str]:
    """The string constants of a module, its docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.value


def test_one_module_names_the_run_folders_files() -> None:
    named = sorted(f"{module}: {text!r}" for module, (path, _) in MODULES.items()
                   if module != "loopwise.record.folder"
                   for text in _strings(path) if text in RUN_FOLDER_FILES)
    # fit's own file <model_name>_config.json (the reference's layout) is not the run's config
    assert named == ["loopwise.train.fit.files: 'config.json'"]
    folder = {text for text in _strings(PACKAGE / "record" / "folder.py")}
    assert folder >= RUN_FOLDER_FILES  # the control: the walk sees them where they are


def test_only_the_store_readers_know_its_sql() -> None:
    sql = ("SELECT ", "INSERT ", "FROM scalar_chunks", "FROM events", "FROM system")
    knowing = sorted(module for module, (path, _) in MODULES.items()
                     if any(word in text for text in _strings(path) for word in sql))
    assert knowing and set(knowing) <= STORE_READERS, knowing
    importing = sorted(module for module, (path, _) in MODULES.items()
                       if "sqlite3" in {alias.name for node in ast.walk(ast.parse(
                           path.read_text(encoding="utf-8"))) if isinstance(node, ast.Import)
                           for alias in node.names})
    assert set(importing) <= STORE_READERS | {"loopwise.record.errors"}, importing


def _modules_loaded(code: str, cwd: Path) -> set[str]:
    """The top-level modules in ``sys.modules`` after running ``code`` in a fresh Python."""
    script = textwrap.dedent(code) + "\nimport sys\nprint(' '.join(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin"})
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())


@pytest.mark.parametrize("module", ["loopwise.cli", "loopwise.view", "loopwise.view.cli",
                                    "loopwise.record", "loopwise"])
def test_the_cli_and_the_views_import_no_torch(module: str, tmp_path: Path) -> None:
    loaded = _modules_loaded(f"import {module}", tmp_path)
    assert f"{module}" in loaded
    assert "torch" not in loaded


def test_the_view_verbs_run_without_torch(tmp_path: Path) -> None:
    from loopwise.record import Run

    with Run.create(tmp_path / "runs", "one", config={"lr": 0.1}) as run:
        run.log_scalars({"loss": 0.5}, step=1)
    code = f"""
        from loopwise.cli import main
        for argv in (["--help"], ["runs", "--help"], ["runs", {str(tmp_path / "runs")!r}],
                     ["show", {str(tmp_path / "runs" / "one")!r}]):
            try:
                code = main(argv)
            except SystemExit as exit:
                code = exit.code
            assert code == 0, (argv, code)
    """
    loaded = _modules_loaded(code, tmp_path)
    assert "loopwise.view.cli" in loaded
    assert "torch" not in loaded


def test_the_fit_verb_imports_torch_when_it_runs(tmp_path: Path) -> None:
    # the control of the two tests above: the same check sees torch once fit runs
    code = """
        from loopwise.cli import main
        try:
            main(["fit", "missing.csv"])
        except SystemExit:
            pass
    """
    assert "torch" in _modules_loaded(code, tmp_path)


# -- argument checks: one module -----------------------------------------------------------------
# An ``if`` that tests for an int or a number (``type(x) is not int``, ``isinstance(x, int)``,
# ``isinstance(x, (int, float))``) and raises is a hand-written argument check: it goes through
# loopwise.utils.validate instead (check_int, check_count, check_optional_int, check_step,
# check_float, check_positive, check_number), which has the one message style. The places
# below are allowed, each for the reason given ("loopwise/<path>.py:<function>": "why").
INT_CHECK_ALLOWED: dict[str, str] = {
}


def _tests_for_int(test: ast.expr) -> bool:
    """``type(x) is (not) int``, or ``isinstance(x, int)`` / ``isinstance(x, (int, float))``,
    anywhere in an ``if`` test."""
    def is_number_type(node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and node.id in ("int", "float", "bool")

    for node in ast.walk(test):
        if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Call)
                and isinstance(node.left.func, ast.Name) and node.left.func.id == "type"
                and any(isinstance(c, ast.Name) and c.id == "int" for c in node.comparators)):
            return True
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "isinstance" and len(node.args) == 2):
            kinds = node.args[1]
            names = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]
            # int, or only number types (a dispatch over dicts, lists... is no argument check)
            if (any(isinstance(n, ast.Name) and n.id == "int" for n in names)
                    and all(is_number_type(n) for n in names)):
                return True
    return False


def hand_written_int_checks(path: Path, relative: str) -> list[str]:
    """``relative:function:line`` of each ``if`` in ``path`` that tests for an int and raises."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [node for node in ast.walk(tree)
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for node in ast.walk(tree):
        if (isinstance(node, ast.If) and _tests_for_int(node.test)
                and any(isinstance(s, ast.Raise) for b in node.body for s in ast.walk(b))):
            owner = min((f for f in functions
                         if f.lineno <= node.lineno <= (f.end_lineno or f.lineno)),
                        key=lambda f: (f.end_lineno or f.lineno) - f.lineno, default=None)
            found.append(f"{relative}:{owner.name if owner else '<module>'}:{node.lineno}")
    return found


def test_the_int_check_finder_sees_each_spelling(tmp_path: Path) -> None:
    # the control: the walk sees the forms the audit found (issue 20)
    sample = tmp_path / "sample.py"
    sample.write_text(textwrap.dedent("""
        def f(step, width, value, image):
            if type(step) is not int or step < 0:
                raise ValueError("step")
            if not isinstance(width, int) or isinstance(width, bool) or width < 1:
                raise ValueError("width")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError("value")
            if isinstance(image, (int, float, dict, list)):
                raise TypeError("a dispatch, not an int check")
            if type(step) is not int:
                step = check_count(step, what="step")
    """), encoding="utf-8")
    assert hand_written_int_checks(sample, "s.py") == ["s.py:f:3", "s.py:f:5", "s.py:f:7"]


def test_int_argument_checks_go_through_utils_validate() -> None:
    found = [hit for path in sorted(PACKAGE.rglob("*.py"))
             if path != PACKAGE / "utils" / "validate.py"
             for hit in hand_written_int_checks(path, path.relative_to(SRC).as_posix())]
    left = [hit for hit in found if hit.rsplit(":", 1)[0] not in INT_CHECK_ALLOWED]
    assert not left, (
        "hand-written int checks: use loopwise.utils.validate (check_int, check_count, "
        "check_optional_int, check_float...), or add the place to INT_CHECK_ALLOWED with the "
        f"reason: {left}")
    stale = set(INT_CHECK_ALLOWED) - {hit.rsplit(":", 1)[0] for hit in found}
    assert not stale, f"INT_CHECK_ALLOWED names places that have no such check now: {stale}"


def test_only_the_run_opener_creates_runs() -> None:
    # Run.create (a new run folder) and Run.reopen (a resume) are called by
    # loopwise.record.opening alone (open_run: the five entry points; docs/architecture.md)
    callers: dict[str, set[str]] = {}
    for module, (path, _) in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("create", "reopen")
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "Run"):
                callers.setdefault(node.func.attr, set()).add(module)
    assert callers == {"create": {"loopwise.record.opening"},
                       "reopen": {"loopwise.record.opening"}}
