"""docs/writing-a-theory.md followed verbatim: its files written as its code blocks name them, its
``sh`` block run line by line in a fresh virtual environment where only hdbench is installed."""
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs/writing-a-theory.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks():
    """``[(language, text)]`` of every fenced block."""
    return BLOCK.findall(TUTORIAL.read_text())


def test_the_tutorial_runs_end_to_end_in_a_fresh_venv(tmp_path):
    files = {}
    for lang, text in blocks():
        first = text.split("\n", 1)[0]
        if lang in ("python", "toml") and re.fullmatch(r"# my-theory/\S+", first):
            files[first[2:]] = text
    assert {"my-theory/pyproject.toml", "my-theory/my_theory/hdbench_plugin.py", "my-theory/tiny.toml"} <= set(files)
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    commands, = [text for lang, text in blocks() if lang == "sh"]

    # A fresh venv holding hdbench alone (built from this checkout); its dependencies, pip and
    # setuptools are read from this environment through a .pth file, so the test needs no network.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = venv / "bin" / "pip"            # the tutorial's `pip` must be this venv's
    pip.write_text(f"#!{py}\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n")
    pip.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", VIRTUAL_ENV=str(venv), PIP_NO_INDEX="1",
               PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1", COLUMNS="200")
    install = subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", str(ROOT)], env=env,
                             capture_output=True, text=True, cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-2000:]

    outputs = {}
    for line in commands.strip().splitlines():
        out = subprocess.run(line, shell=True, cwd=tmp_path / "my-theory", env=env, capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, (line, out.stdout[-2000:], out.stderr[-2000:])
        outputs[line.split()[1] if line.startswith("hdbench") else line] = out.stdout
    assert "my-theory 0.1.0 (my_theory)" in " ".join(outputs["list"].split())
    assert "my-theory: 2 passed, 0 failed" in outputs["check"]
    board = outputs["leaderboard"]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"\| online gamma=2 \| [\d=]+ \| ([\w-]+) \| ([\d.]+) \|", board)}
    assert rows.keys() == {"my-ode", "lsq-online-ode"} and rows["my-ode"] == rows["lsq-online-ode"], board
    assert (tmp_path / "my-theory" / "report" / "index.html").exists()
