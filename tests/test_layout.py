"""The shape of the code base: registered plugin modules never import one another (so one theory failing to
import cannot take another with it), every file the code cites exists, the plugin contract states its rules,
and the tutorial's plugin runs as printed."""
import ast
import importlib.metadata as md
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import hdbench
from hdbench import contract
from hdbench.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"


def builtin_entry_points():
    return [ep for ep in md.entry_points(group="hdbench") if ep.value.startswith("hdbench_plugins.")]


def _source(module: str) -> Path:
    rel = PLUGINS.joinpath(*module.split(".")[1:])
    return rel.with_suffix(".py") if rel.with_suffix(".py").exists() else rel / "__init__.py"


def _imports(module: str) -> set[str]:
    """The hdbench_plugins modules ``module`` imports (anywhere in its source, lazily or not)."""
    out = set()
    for node in ast.walk(ast.parse(_source(module).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hdbench_plugins"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if _source(sub).exists() else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("hdbench_plugins")}
    return out


def test_no_registered_module_imports_another_even_through_shared_code():
    registered = {ep.value for ep in builtin_entry_points()}
    assert len(registered) > 10
    reached = {}
    for module in registered:
        seen, stack = set(), [module]
        while stack:
            for imported in _imports(stack.pop()):
                if imported not in seen:
                    seen.add(imported)
                    stack.append(imported)
        if seen & registered:
            reached[module] = sorted(seen & registered)
    assert not reached, f"registered modules reaching other registered modules: {reached}"


def test_one_theory_failing_to_import_leaves_every_other_component_loaded():
    code = textwrap.dedent("""
        import importlib.metadata as md, sys
        from hdbench.registry import Registry
        eps = [ep for ep in md.entry_points(group="hdbench") if ep.value.startswith("hdbench_plugins.")]
        full = Registry(eps)
        assert not full.failures, full.failures
        for ep in eps:
            for name in [m for m in sys.modules if m.startswith("hdbench_plugins")]:
                del sys.modules[name]
            sys.modules[ep.value] = None          # importing it now raises ImportError
            reg = Registry(eps)
            del sys.modules[ep.value]
            assert [f.plugin for f in reg.failures] == [ep.name], (ep.name, reg.failures)
            for kind, entries in full.entries.items():
                expected = {n for n, e in entries.items() if e.plugin != ep.name}
                assert set(reg.entries[kind]) == expected, (ep.name, kind, expected ^ set(reg.entries[kind]))
        print("ok", len(eps))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")


CITED = re.compile(r"(?<![\w/.-])((?:docs|benchmarks|tests|plugins|hdbench)/[\w./-]+\.(?:md|py|toml))")


def test_every_file_the_code_cites_exists():
    sources = [p for d in ("hdbench", "plugins", "benchmarks", "tests") for p in (ROOT / d).rglob("*")
               if p.suffix in (".py", ".toml") and ".venv" not in p.parts]
    missing = {}
    for path in sources:
        text = path.read_text()
        for cited in CITED.findall(text):
            if not (ROOT / cited).exists():
                missing.setdefault(str(path.relative_to(ROOT)), []).append(cited)
        for bare in re.findall(r"(?<![\w/.-])([\w-]+\.md)\b", text):   # a bare note name: where would a reader look?
            if bare != "README.md":
                missing.setdefault(str(path.relative_to(ROOT)), []).append(bare)
    assert not missing, missing


def test_every_markdown_link_in_the_docs_resolves():
    broken = []
    for page in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_contract_classes_state_their_rules():
    public = {name: obj for name, obj in vars(contract).items()
              if isinstance(obj, type) and obj.__module__ == contract.__name__ and not name.startswith("_")}
    assert {"Model", "Dynamics", "Predictor", "Support"} <= set(public)
    for name, cls in public.items():
        assert cls.__doc__ and len(cls.__doc__.split()) > 10, f"{name} has no rules in its docstring"
    for cls in (contract.Model, contract.Dynamics, contract.Predictor):
        abstract = {m for m in vars(cls) if getattr(getattr(cls, m), "__isabstractmethod__", False)}
        undocumented = {m for m in abstract if f"``{m}" not in cls.__doc__}
        assert not undocumented, f"{cls.__name__}: {undocumented} not in its docstring"
    for rule in ("std(NAME)", "unc(NAME)", "limit(NAME)", "+inf"):
        assert rule in contract.Predictor.__doc__


def test_the_tutorial_plugin_runs_as_printed(tmp_path, monkeypatch):
    """The tutorial's closed form equals lsq-online-ode's ODE, at gamma = 2 (the rate's zero) too;
    tests/test_tutorial.py follows the whole tutorial in a fresh venv."""
    text = (ROOT / "docs/writing-a-theory.md").read_text()
    module = re.search(r"```python\n# my-theory/my_theory/hdbench_plugin.py\n(.*?)```", text, re.S).group(1)
    value = re.search(r'\[project.entry-points.hdbench\]\n(\w+) = "([\w.]+)"', text)
    package = tmp_path / "my_theory"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hdbench_plugin.py").write_text(module)
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = md.EntryPoint(value.group(1), value.group(2), "hdbench")
    reg = Registry(builtin_entry_points() + [ep])
    assert not reg.failures, reg.failures
    theirs = reg.predictor("my-ode")
    for gamma in (0.5, 2.0):
        s = hdbench.Scenario.from_dict({"model": {"name": "linear", "params": {"sigma": 0.5}},
                                        "dynamics": {"name": "online-sgd", "params": {"gamma": gamma}},
                                        "d": 50, "t_max": 4.0, "seeds": 2}, reg)
        assert theirs.supports(s)
        ours, got = reg.predictor("lsq-online-ode").predict(s, s.times()), theirs.predict(s, s.times())
        assert set(got) == set(ours) == {"risk", "D", "m", "q"}
        for name in got:
            np.testing.assert_allclose(got[name], ours[name], rtol=1e-7, atol=1e-9)


def test_the_wheel_ships_every_source_file(tmp_path):
    """``pip install .`` (the README's first command) installs a wheel, not the checkout: every module,
    suite file and the report's page code under ``hdbench/`` and ``plugins/`` must be in it (a
    subpackage missing from pyproject's package list loads nowhere but an editable install)."""
    import shutil
    import zipfile
    src = tmp_path / "src"          # a clean copy: a checkout's build/ folder would hide what is missing
    for name in ("hdbench", "plugins"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(src)], check=True, capture_output=True, timeout=300)
    wheel, = tmp_path.glob("hdbench-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"hdbench/{p.relative_to(ROOT / 'hdbench')}" for p in (ROOT / "hdbench").rglob("*")
                if p.suffix in (".py", ".toml", ".js", ".css")}
    expected |= {f"hdbench_plugins/{p.relative_to(PLUGINS)}" for p in PLUGINS.rglob("*.py")}
    assert not expected - shipped, sorted(expected - shipped)
