"""What ``hdbench run`` prints: under 100 lines for the quick suite on a 120-column terminal, with a
progress bar (ETA, the item running) there and one plain line per item where stderr is not a terminal."""
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

from conftest import TINY_SUITE, run_cli

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_in_terminal(args, cwd, columns=120, rows=40, timeout=900):
    """``hdbench ARGS`` with stdout and stderr on a pseudo-terminal of this size: (exit code, what
    a user would see, the raw bytes as text)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "TERM")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-m", "hdbench", *map(str, args)], stdin=slave, stdout=slave,
                            stderr=slave, env=env, cwd=cwd, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:          # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=timeout)
    os.close(master)
    raw = b"".join(chunks).decode(errors="replace")
    # a transient progress bar redraws itself in place: keep what remains after each carriage return
    shown = "\n".join(line.split("\r")[-1] for line in ESCAPES.sub("", raw).replace("\r\n", "\n").split("\n"))
    return proc.returncode, shown, raw


def test_the_quick_suite_fits_a_terminal(tmp_path):
    code, shown, raw = run_in_terminal(["run", "--db", tmp_path / "r.sqlite", "--workers", "2"], cwd=tmp_path)
    assert code == 0, shown[-3000:]
    lines = [line for line in shown.split("\n") if line.strip()]
    assert len(lines) < 100, "\n".join(lines)
    assert "eta" in ESCAPES.sub("", raw)                 # the progress bar showed an estimate
    assert "Suite 'quick': aggregate" in shown and "(--all: why)" not in shown
    assert "[d=100]" in shown and "[d=200]" in shown      # a sweep's tags stay in the labels


def test_progress_is_a_plain_line_per_item_off_a_terminal(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    out = run_cli("run", "--suite", suite, "--db", tmp_path / "r.sqlite", "--predictor", "lsq-online-ode",
                  "--predictor", "population-gf")
    assert out.returncode == 0, out.stderr
    items = re.findall(r"^\[\s*(\d+)/(\d+) \d+:\d\d:\d\d, eta \d+:\d\d:\d\d\] (.+): (.+)$", out.stderr, re.M)
    assert [int(i) for i, *_ in items] == list(range(1, 10)) and {int(n) for _, n, *_ in items} == {9}
    assert {label for _, _, label, _ in items} >= {"online g0.5 · simulation", "adam · population-gf"}
    assert "\x1b" not in out.stderr and "eta" not in out.stdout
