"""Open the built documentation site in headless Chromium and check that it renders.

For the home page, one tutorial and one API page: every ``<img>`` has loaded (``complete`` with a
non-zero natural width), MathJax has typeset the math (``mjx-container`` elements present and no
raw ``\\(`` left in the text), and the page has no JavaScript errors. Screenshots go to
``site-check/`` for a person to look at.

Usage: ``python scripts/check_site.py [SITE_DIR]`` (default ``site``); needs the ``chromium``
binary (Debian: ``apt-get install chromium``) and the ``playwright`` package (``[docs]`` extra).
Exits non-zero with the reason on the first failed page.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

PAGES = {
    "index.html": {"min_images": 1, "min_math": 1},
    "tutorials/fit-normal.html": {"min_images": 1, "min_math": 3},
    "api/reparam.html": {"min_images": 0, "min_math": 3},
}


def main(argv: list[str]) -> int:
    from playwright.sync_api import sync_playwright

    site = Path(argv[0] if argv else "site").resolve()
    out = Path("site-check")
    out.mkdir(exist_ok=True)
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        print("check_site: no chromium binary; install it with `apt-get install -y chromium`.")
        return 2
    failures = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        for page_path, need in PAGES.items():
            file = site / page_path
            if not file.exists():
                failures.append(f"{page_path}: not built (run `make docs`)")
                continue
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            errors: list[str] = []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.goto(file.as_uri(), wait_until="load")
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000
            )
            page.evaluate("() => MathJax.startup.promise")
            images = page.evaluate(
                "() => [...document.querySelectorAll('article img')]"
                ".map(i => [i.src, i.complete && i.naturalWidth > 0])"
            )
            math = page.evaluate("() => document.querySelectorAll('article mjx-container').length")
            raw = page.evaluate("() => document.querySelector('article').innerText.includes('\\\\(')")
            page.screenshot(path=str(out / (page_path.replace("/", "_") + ".png")), full_page=False)
            broken = [src for src, ok in images if not ok]
            line = f"{page_path}: {len(images)} images ({len(broken)} broken), {math} typeset formulas"
            print(line)
            if broken or len(images) < need["min_images"]:
                failures.append(f"{page_path}: images not loaded: {broken or 'none on the page'}")
            if math < need["min_math"] or raw:
                failures.append(f"{page_path}: math not typeset ({math} mjx-container, raw TeX left: {raw})")
            if errors:
                failures.append(f"{page_path}: JavaScript errors {errors}")
            page.close()
        browser.close()
    for failure in failures:
        print("FAILED", failure)
    print("site check:", "passed" if not failures else "FAILED", f"(screenshots in {out}/)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
