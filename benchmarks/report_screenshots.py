"""Make the README's two screenshots of the HTML report (docs/report-index.png, docs/report-scenario.png).

    hdbench run --workers 2 --report site        # the quick suite, from the repository root
    python benchmarks/report_screenshots.py site "lsq sgd alpha=2 gamma=0.5"

Needs Debian's chromium and chromium-driver, and selenium (the test extra).
"""
import json
import re
import sys
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

DOCS = Path(__file__).resolve().parents[1] / "docs"


def shoot(driver, url, out, height):
    driver.set_window_size(1280, height)
    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    driver.save_screenshot(str(out))
    print(out)


def main(site, label):
    site = Path(site).resolve()
    data = json.loads(re.fullmatch(r"window\.HDBENCH = (.*);\n", (site / "data.js").read_text(), re.S).group(1))
    page, = [s["page"] for s in data["scenarios"] if s["label"] == label]
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        shoot(driver, (site / "index.html").as_uri(), DOCS / "report-index.png", 1000)
        shoot(driver, (site / page).as_uri(), DOCS / "report-scenario.png", 1350)
    finally:
        driver.quit()


if __name__ == "__main__":
    main(*sys.argv[1:3])
