"""The web page in a real headless browser: Debian's Chromium driven by Playwright.

Skipped with a reason where /usr/bin/chromium or the playwright package is missing
(.ci/run installs both). The screenshot is written under the test's tmp folder and
its path printed (``pytest -s`` shows it)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 30_000


@pytest.fixture
def browser_page():
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.skip("no browser: /usr/bin/chromium is missing (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            yield page, sync_api.expect
        finally:
            browser.close()


def rec_ids(page) -> list[str]:
    return page.locator("#recs li.rec").evaluate_all("els => els.map(e => e.dataset.item)")


def test_page_user_event_and_sentence(browser_page, semrec_server, tmp_path):
    server = semrec_server
    page, expect = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    expect(page).to_have_title(re.compile("semrec"))
    expect(page.locator("#health")).to_contain_text("semgraph", timeout=WAIT_MS)

    # search a user by part of the id and pick them
    page.get_by_label("User id").fill("u1")
    pick = page.locator('button.user-pick[data-user="u1"]')
    expect(pick).to_be_visible(timeout=WAIT_MS)
    pick.click()
    expect(page.locator("#user-heading")).to_have_text("User u1")

    # history with titles, top 10 with titles and an explanation each
    expect(page.locator("#history li")).to_have_count(8, timeout=WAIT_MS)
    expect(page.locator("#history")).to_contain_text("(s")  # science-fiction titles end "(sN)"
    recs = page.locator("#recs li.rec")
    expect(recs).to_have_count(10, timeout=WAIT_MS)
    expect(recs.first.locator(".why")).to_contain_text("recommended to user u1", timeout=WAIT_MS)
    expect(recs.first.locator(".why")).to_contain_text("text")  # the text/behaviour share
    before = rec_ids(page)
    assert all(i and i[0] in "sr" for i in before)

    # long-tail items are marked, as GET /popularity says
    expect(page.locator("#recs-status")).to_contain_text("from the long tail", timeout=WAIT_MS)
    popularity = httpx.get(server.url + "/popularity", params={"items": ",".join(before)}).json()
    tails = sorted(r["item"] for r in popularity["items"] if r["tail"])
    marked = page.locator("#recs li.rec:has(.badge.tail)").evaluate_all("els => els.map(e => e.dataset.item)")
    assert sorted(marked) == tails
    expect(page.locator("#recs-status")).to_contain_text(f"{len(tails)} from the long tail")

    # the diversity knob (keyboard: End = 1) re-ranks: the page shows the server's re-ranked list
    page.get_by_label("Diversity").press("End")
    expect(page.locator("#diversity-value")).to_have_text("1")
    expect(page.locator("#recs-status")).to_contain_text("re-ranked: diversity 1", timeout=WAIT_MS)
    diverse = httpx.get(server.url + "/recommend", params={"user": "u1", "k": 10, "diversity": 1}).json()
    expect(page.locator("#recs li.rec").first).to_have_attribute("data-item", diverse["items"][0]["item"])
    assert rec_ids(page) == [x["item"] for x in diverse["items"]] != before
    page.get_by_label("Diversity").press("Home")  # back to the model's own order
    # the status ends so only once the plain list is shown ("loading…" and re-ranked ones do not)
    expect(page.locator("#recs-status")).to_have_text(re.compile(r"from the long tail$"), timeout=WAIT_MS)
    expect(page.locator("#recs li.rec")).to_have_count(10, timeout=WAIT_MS)
    assert rec_ids(page) == before

    # post an interaction with the form (keyboard: Enter submits) and watch the list change
    liked = before[0]
    page.get_by_label("Item id").fill(liked)
    page.get_by_label("Item id").press("Enter")
    expect(page.locator("#event-status")).to_contain_text(f"u1 interacted with {liked}", timeout=WAIT_MS)
    expect(page.locator(f'#recs li.rec[data-item="{liked}"]')).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator("#recs-status")).to_contain_text("updated", timeout=WAIT_MS)
    expect(page.locator("#history li").first).to_contain_text(liked)
    expect(page.locator("#history li").first.locator(".badge")).to_have_text("posted")
    after = rec_ids(page)
    assert liked not in after and after != before
    assert page.locator("#recs li.fresh").count() >= 1  # the item that moved up is marked new

    # "Liked it" on a recommendation posts too
    second = after[0]
    page.locator(f'#recs li.rec[data-item="{second}"] button.like').click()
    expect(page.locator(f'#recs li.rec[data-item="{second}"]')).to_have_count(0, timeout=WAIT_MS)

    # someone new, described by a sentence: science fiction comes first
    page.get_by_label("A sentence").fill("space adventures with starships, robots and aliens")
    page.get_by_role("button", name="Recommend").click()
    cold = page.locator("#cold-recs li")
    expect(cold).to_have_count(10, timeout=WAIT_MS)
    top = cold.evaluate_all("els => els.slice(0, 5).map(e => e.textContent)")
    assert sum("(s" in t for t in top) >= 4, top

    shot = tmp_path / "semrec-page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert not errors, errors
