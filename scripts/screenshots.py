"""Screenshots of the web front end for the README, taken from the real application.

Starts a throwaway Neo4j of its own (never the user's catalogue), ``heritage serve`` on a
free port, registers the wild model zoo (models as the ecosystem's writers publish them,
with every relation type: fine-tunes, a head-only model, a dtype conversion, a PEFT
adapter, two merges, a layer-subset student, GGUF quantisations; built once and cached,
see ``heritage.evaluation.zoo``) through the REST API, opens the explorer in headless
Chromium at 1280x800 and saves:

* ``docs/ui-family.png``  the family view of all-MiniLM-L6-v2's family;
* ``docs/ui-model.png``   the model view of a grandchild, compared with a merge;
* ``docs/ui-catalogue.png`` the catalogue view.

Run it again whenever the front end changes:  python scripts/screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from live_server import heritage_serve, register_zoo  # noqa: E402
from neo4j_servers import private_server  # noqa: E402
from ui_browser import launch_chromium, wait_until_ready  # noqa: E402

log = logging.getLogger("screenshots")

VIEWPORT = {"width": 1280, "height": 800}
MODEL = "movie-review-polarity"
OTHER = "support-fusion"
FOCUSED = "review-sentiment-small"
HOVERED = ("ticket-router", "support-fusion")  # a merge edge: its weight shows on hover


def take(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from heritage.evaluation.zoo import ensure_zoo

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    zoo = ensure_zoo("wild")
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with tempfile.TemporaryDirectory() as tmp, private_server() as neo4j:
        os.environ.update(NEO4J_URI=neo4j.uri, NEO4J_USER=neo4j.user, NEO4J_PASSWORD=neo4j.password or "",
                          NEO4J_DATABASE=neo4j.database)
        key = secrets.token_urlsafe(24)
        with heritage_serve(Path(tmp) / "serve.log", api_keys=key, upload_dir=str(Path(tmp) / "uploads"),
                            import_roots=str(zoo / "models"), db_timeout_s="60") as url:
            ids = register_zoo(url, key, zoo)
            log.info("registered %d models", len(ids))
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
                page.goto(f"{url}/ui/#/models/{ids[MODEL]}")
                wait_until_ready(page, "model")
                family = page.locator("a.button", has_text="Family tree").get_attribute("href")
                page.goto(f"{url}/ui/{family}")
                wait_until_ready(page, "family")
                page.locator(f'g.node[data-model-id="{ids[FOCUSED]}"]').focus()
                # Hover the point halfway along an edge (on the stroke itself, curved or straight).
                middle = page.locator(f'g.edge[data-parent-id="{ids[HOVERED[0]]}"][data-child-id="{ids[HOVERED[1]]}"] '
                                      'path.line').evaluate(
                    "p => { const t = p.getPointAtLength(p.getTotalLength() / 2), m = p.getScreenCTM();"
                    "  return [t.x * m.a + t.y * m.c + m.e, t.x * m.b + t.y * m.d + m.f]; }")
                page.mouse.move(*middle)
                saved.append(out / "ui-family.png")
                page.screenshot(path=str(saved[-1]))
                page.goto(f"{url}/ui/#/models/{ids[MODEL]}?depth=3&other={ids[OTHER]}")
                wait_until_ready(page, "model")
                page.locator(".comparison").wait_for()
                saved.append(out / "ui-model.png")
                page.screenshot(path=str(saved[-1]), full_page=True)
                page.goto(f"{url}/ui/#/")
                wait_until_ready(page, "catalogue")
                saved.append(out / "ui-catalogue.png")
                page.screenshot(path=str(saved[-1]))
                browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="folder for the PNG files")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("neo4j").setLevel(logging.WARNING)
    for path in take(args.out):
        print(path)


if __name__ == "__main__":
    main()
