"""The HTML report (``hdbench report``) and every leaderboard format read back against the JSON export.

The browser test drives headless Chromium (Debian's ``chromium`` and ``chromium-driver``, which
``.ci/run`` installs) through selenium; where they are missing it is skipped, unless
``HDBENCH_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure.
"""
import csv
import io
import json
import os
import re
import shutil

import pytest

import hdbench
from conftest import TINY_SUITE, cli, run_cli
from hdbench.report import TIDY_HEAD

PREDICTORS = ["lsq-online-ode", "lsq-exact-recursion", "lsq-homogenized-sgd", "population-gf"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    suite = root / "tiny.toml"
    suite.write_text(TINY_SUITE)
    db = root / "r.sqlite"
    hdbench.run_suite(suite, predictors=PREDICTORS, db=db, workers=0)
    return db


def _export(capsys, db):
    code, out = cli(capsys, "leaderboard", "--db", db, "--format", "json")
    assert code == 0
    return json.loads(out)


def _value(cell):
    """A tidy CSV cell read back (``hdbench.report.tidy_value``'s rules)."""
    if cell == "":
        return None
    if cell in ("true", "false"):
        return cell == "true"
    try:
        return json.loads(cell) if cell[0] in "[-0123456789" or cell in ("NaN", "Infinity") else cell
    except json.JSONDecodeError:
        return cell


def test_csv_is_one_tidy_table_that_reads_back_to_the_json_export(store, capsys):
    code, text = cli(capsys, "leaderboard", "--db", store, "--format", "csv")
    assert code == 0 and "\r" not in text
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == TIDY_HEAD and all(len(line) == len(TIDY_HEAD) for line in lines)
    back = {}
    for view, scenario, h, predictor, status, message, observable, quantity, value in lines[1:]:
        row = back.setdefault((view, scenario, predictor), {"status": status, "message": message})
        if quantity:
            (row.setdefault("observables", {}).setdefault(observable, {}) if observable else row)[quantity] = _value(value)
    views = {"per scenario": "scenarios", "aggregate": "aggregate", "d = infinity": "finite-size"}
    count = 0
    for title, rows in _export(capsys, store).items():
        view = next(v for k, v in views.items() if k in title)
        for r in rows:
            got = back[(view, r.get("scenario", r.get("family", "")), r.get("predictor", ""))]
            for k, v in r.items():
                if k not in ("scenario", "family", "hash", "predictor"):
                    assert got.get(k, "" if k in ("status", "message") else None) == v, (title, r["predictor"], k)
                    count += 1
    assert count > 100


def test_markdown_and_table_show_the_json_exports_ranks_and_ratios(store, capsys):
    rows = [r for r in _export(capsys, store)["Suite 'tiny': per scenario"] if r["status"] == "ok"]
    md = cli(capsys, "leaderboard", "--db", store, "--format", "markdown", "--view", "scenarios", "--all")[1]
    table = cli(capsys, "leaderboard", "--db", store, "--format", "table", "--view", "scenarios", "--all")[1]
    for r in rows:
        rank = f"{r['rank']}{'=' if r.get('tied') else ''}"
        name = r["predictor"] + ("" if r["complete"] else f" (partial: no {', '.join(r['missing'])})")
        cells = f"| {r['scenario']} | {rank} | {name} | {r['ratio']:.2f} |"
        assert cells in md, cells
        assert re.search(rf"{re.escape(rank)}\s+{re.escape(r['predictor'])}\b.*\s{r['ratio']:.2f}\s", table), r["predictor"]


def test_the_report_holds_the_json_export(store, capsys, tmp_path):
    assert cli(capsys, "report", "--db", store, "--out", tmp_path / "site")[0] == 0
    site = tmp_path / "site"
    export = _export(capsys, store)
    assert json.loads((site / "leaderboard.json").read_text()) == export
    data = json.loads(re.fullmatch(r"window\.HDBENCH = (.*);\n", (site / "data.js").read_text(), re.S).group(1))
    assert data["export"] == export
    pages = sorted(p.name for p in site.glob("scenario-*.html"))
    assert pages == sorted(s["page"] for s in data["scenarios"]) and len(pages) == 3
    assert (site / "plotly.min.js").stat().st_size > 1_000_000       # bundled, not fetched
    for page in [site / "index.html", *site.glob("scenario-*.html")]:
        assert "http" not in page.read_text()
    assert run_cli("report", "--db", store, "--out", site / "index.html").returncode == 2


def _browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("HDBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail("HDBENCH_REQUIRE_BROWSER=1 but Debian's chromium and chromium-driver are not installed")
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def _open(browser, url):
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(url)
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return document.body.dataset.ready === '1'"))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def _column(browser, table, col):
    return browser.execute_script(
        f"return Array.from(document.querySelectorAll('#{table} tbody tr')).map(r => r.cells[{col}].textContent)")


def test_the_report_in_a_real_browser(store, capsys, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    site = tmp_path / "site"
    assert cli(capsys, "report", "--db", store, "--out", site)[0] == 0
    export = _export(capsys, store)
    browser = _browser()
    try:
        _open(browser, (site / "index.html").as_uri())
        browser.save_screenshot(str(tmp_path / "index.png"))
        names = [r["predictor"] for r in export["Suite 'tiny': aggregate"]]
        assert _column(browser, "leaderboard", 1) == names            # the aggregate's order
        header = browser.find_element(By.XPATH, "//table[@id='leaderboard']//th[.='predictor']")
        header.click()
        assert _column(browser, "leaderboard", 1) == sorted(names)
        header.click()
        assert _column(browser, "leaderboard", 1) == sorted(names, reverse=True)
        browser.find_element(By.XPATH, "//table[@id='leaderboard']//th[.='median err/floor']").click()
        medians = [float(x) for x in _column(browser, "leaderboard", 5) if x]
        assert medians == sorted(medians) and len(medians) >= 3

        browser.find_element(By.LINK_TEXT, "online g0.5").click()
        _open(browser, browser.current_url)
        browser.save_screenshot(str(tmp_path / "scenario.png"))
        scored = {r["predictor"] for r in export["Suite 'tiny': per scenario"]
                  if r["scenario"] == "online g0.5" and r["status"] == "ok"}
        traces = browser.execute_script("return document.getElementById('curves').data.map("
                                        "t => [t.legendgroup, t.meta, t.xaxis || 'x'])")
        panels = {axis for _, _, axis in traces}
        assert {g for g, kind, _ in traces if kind == "theory"} == scored and len(scored) == 3
        for axis in panels:            # every panel: the band, the mean and one curve per predictor
            here = [(g, kind) for g, kind, a in traces if a == axis]
            assert ("simulation", "band") in here and ("simulation", "simulation") in here
            assert sorted(g for g, kind in here if kind == "theory") == sorted(scored)
        assert len(panels) == 4                       # risk, D, m, q
        declined = dict(zip(_column(browser, "na-table", 0), _column(browser, "na-table", 1)))
        assert declined == {r["predictor"]: r["message"] for r in export["Suite 'tiny': per scenario"]
                            if r["scenario"] == "online g0.5" and r["status"] == "n/a"} and declined

        hidden = sorted(scored)[0]             # a click on its legend entry hides it in every panel
        entry = browser.find_element(By.XPATH, f"//*[contains(@class,'legendtext') and text()='{hidden}']")
        ActionChains(browser).move_to_element(entry).click().perform()
        state = ("return document.getElementById('curves').data.map("
                 "t => [t.legendgroup, t.visible === undefined ? true : t.visible])")
        WebDriverWait(browser, 10).until(lambda b: any(v != True for _, v in b.execute_script(state)))  # noqa: E712
        visible = browser.execute_script(state)       # plotly waits out a double-click before it toggles
        assert {v for g, v in visible if g == hidden} == {"legendonly"}
        assert {v for g, v in visible if g != hidden} == {True}
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        browser.quit()
