"""How the library page is laid out: a phone shows a card on its first screen, dates stay on one line, toasts
never lie over a control, the favicon loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import TIMEOUT_MS, Screenshot, screenshots_of
from tests.browser.library_page import Api, card_of, saved_mark_of, sign_in, status_of, toasts
from tests.stack_process import RunningStack

PHONE = {"width": 390, "height": 844}  # an iPhone 12-15's CSS viewport

# Every visible control of the scrolling page whose middle is in view, and whether a click there would reach it.
_CONTROLS_HIT = """() => {
    const view = document.getElementById('page').getBoundingClientRect();
    return [...document.querySelectorAll('#page button, #page a[href], #page input, #page select')]
    .filter((e) => e.checkVisibility({ visibilityProperty: true }))  // not in a folded <details> either
    .map((e) => {
        const r = e.getBoundingClientRect();
        const x = r.left + r.width / 2, y = r.top + r.height / 2;
        if (y < view.top || y > view.bottom || x < view.left || x > view.right) return null;
        const hit = document.elementFromPoint(x, y);
        return { control: e.textContent.trim() || e.getAttribute('aria-label') || e.id, reachable: e.contains(hit) };
    })
    .filter(Boolean);
}"""


@pytest.fixture
def phone_page(browser: Browser, stack: RunningStack) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_a_phone_shows_a_card_on_the_first_screen(
    phone_page: Page, stack: RunningStack, request: pytest.FixtureRequest, artifacts: Path
) -> None:
    page = phone_page
    screenshot = screenshots_of(page, request.node.name, artifacts)
    # GIVEN a user with two completed videos
    api = Api(stack, "jules")
    prompts = ["a kite surfer jumping a wave", "morning fog over a lake"]
    ids = [api.generate(prompt, model="kling", task_type="video_generation") for prompt in prompts]
    api.wait_until_generated(*ids)

    # WHEN they open the library on a 390 px phone
    sign_in(page, stack, "jules")
    newest = card_of(page, prompts[-1])
    expect(status_of(newest)).to_have_text("Completed")

    # THEN the newest card is on the first screen, its picture, title and Save button whole, without scrolling
    assert page.evaluate("document.getElementById('page').scrollTop") == 0
    for part in (newest.locator(".thumb"), newest.locator("h3"), newest.get_by_role("button", name="Save to Library")):
        box = part.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
    # AND nothing is wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate("document.getElementById('page').scrollWidth") <= PHONE["width"]
    # AND the date stays on one line
    created = newest.locator(".facts time")
    assert created.evaluate("(t) => t.getClientRects().length") == 1
    assert created.evaluate("(t) => t.getBoundingClientRect().height < 2 * parseFloat(getComputedStyle(t).lineHeight)")
    # AND the generate form is folded, one tap away
    expect(page.get_by_label("Prompt")).to_be_hidden()
    page.get_by_text("Generate a video").click()
    expect(page.get_by_label("Prompt")).to_be_visible()
    page.get_by_text("Generate a video").click()
    screenshot("first-screen")

    # WHEN the user saves the first card
    newest.get_by_role("button", name="Save to Library").click()

    # THEN the toast takes its own room at the bottom: every control on screen can still be reached
    expect(saved_mark_of(newest)).to_be_visible()
    expect(toasts(page)).to_have_count(1)
    _assert_toasts_cover_nothing(page)
    screenshot("saved-toast", show=newest)


def test_toasts_cover_nothing_and_do_not_repeat(page: Page, stack: RunningStack, screenshot: Screenshot) -> None:
    # GIVEN a full first row of cards (four columns on a 1280 px screen)
    api = Api(stack, "kim")
    prompts = [f"a clock tower, take {n}" for n in range(1, 6)]
    ids = [api.generate(prompt, model="luma", task_type="video_generation") for prompt in prompts]
    api.wait_until_generated(*ids)
    sign_in(page, stack, "kim")
    for prompt in prompts:
        expect(status_of(card_of(page, prompt))).to_have_text("Completed")
    # (the page scrolls in its own area, from the keyboard too, before anything in it has been clicked)
    page.keyboard.press("PageDown")
    page.wait_for_function("() => document.getElementById('page').scrollTop > 0")
    page.keyboard.press("Home")
    page.wait_for_function("() => document.getElementById('page').scrollTop === 0")

    # WHEN several things are said at once: a save, then the same failing request twice
    card_of(page, prompts[-1]).get_by_role("button", name="Save to Library").click()
    expect(saved_mark_of(card_of(page, prompts[-1]))).to_be_visible()
    page.get_by_label("Prompt").fill("   ")
    for _ in range(2):
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(page.locator("#toast-alert")).to_contain_text("Could not generate the video")

    # THEN each message shows once
    expect(toasts(page)).to_have_count(2)
    expect(toasts(page).filter(has_text="Could not generate the video")).to_have_count(1)

    # AND the toasts sit below the scrolling page, never over it: the fourth column's buttons can be pressed,
    # at the top of the page and scrolled to the bottom
    page_box = page.locator("#page").bounding_box()
    for toast in toasts(page).all():
        box = toast.bounding_box()
        assert page_box is not None and box is not None
        assert box["y"] >= page_box["y"] + page_box["height"] - 1, (box, page_box)
    fourth = card_of(page, prompts[1])  # newest first: the fourth card of the first row
    fourth.get_by_role("button", name="Save to Library").scroll_into_view_if_needed()
    _assert_toasts_cover_nothing(page)
    screenshot("toasts-beside-the-fourth-column")
    page.locator("#page").focus()
    page.keyboard.press("End")
    page.wait_for_function(
        "() => { const p = document.getElementById('page');"
        " return p.scrollTop + p.clientHeight >= p.scrollHeight - 1; }"
    )
    _assert_toasts_cover_nothing(page)
    fourth.get_by_role("button", name="Save to Library").click(trial=True)  # nothing intercepts the click
    screenshot("toasts-scrolled-down")


def test_the_page_has_a_favicon(page: Page, stack: RunningStack) -> None:
    page.goto(f"{stack.url}/")
    icon = page.locator("link[rel=icon]")
    expect(icon).to_have_attribute("href", "favicon.svg")
    loaded = page.evaluate(
        """async () => {
            const answer = await fetch(document.querySelector('link[rel=icon]').href);
            return [answer.status, answer.headers.get('content-type'), (await answer.text()).includes('<svg')];
        }"""
    )
    assert loaded == [200, "image/svg+xml", True]


def _assert_toasts_cover_nothing(page: Page) -> None:
    hits = page.evaluate(_CONTROLS_HIT)
    assert hits, "no control on screen to check"
    covered = [hit["control"] for hit in hits if not hit["reachable"]]
    assert covered == [], f"controls under something else: {covered}"
