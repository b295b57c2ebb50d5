"""What ``hdbench run`` prints on a terminal: under 100 lines for the quick suite at 120 columns, and a
progress bar with an ETA (off a terminal, one plain line per item: tests/test_plugins.py)."""
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios


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


def test_the_compact_table_folds_a_scenarios_tail_but_never_a_failure():
    from hdbench.report import COMPACT_ROWS, compact_table
    rows = [{"scenario": "s", "status": "ok", "predictor": f"p{i}", "ratio": 1.0 + i, "rank": i + 1, "complete": True,
             "worst_observable": "D", "z_max": 2.0, "cold_s": 1.0, "warm_s": 0.5, "speedup": 1.0} for i in range(7)]
    rows.append({"scenario": "s", "status": "timeout", "predictor": "slow", "message": "took long", "rank": 8})
    _, body = compact_table(rows)
    assert [b[2] for b in body] == [f"p{i}" for i in range(COMPACT_ROWS - 1)] + ["+4 more", "slow"]
    assert body[COMPACT_ROWS - 1][3] == "4.00-7.00"
