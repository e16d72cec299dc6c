"""What a saved video keeps on the library page once the provider has deleted its files: its picture, served from
R2, and a Download that downloads (R2 answers with Content-Disposition: attachment and the prompt's file name).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Screenshot
from tests.browser.library_page import Api, card_of, expire_at_piapi, saved_mark_of, sign_in
from tests.stack_process import RunningStack, read_its_table
from video_library import db


def test_a_saved_video_keeps_its_picture_from_r2_and_downloads_under_its_name(
    page: Page, stack: RunningStack, screenshot: Screenshot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a saved Luma video (Luma gives a thumbnail, copied beside the video when it was saved)
    api = Api(stack, "noor")
    prompt = "A lighthouse at dawn, by the sea!"
    video_id = api.generate(prompt, model="luma", task_type="video_generation")
    api.wait_until_generated(video_id)
    assert api.client.post("/api/video/save-to-library", json={"video_id": video_id}).status_code == 202
    saved = api.wait_for(video_id, "save_state", "saved")
    read_its_table(stack, monkeypatch)
    record = db.get_video(video_id, consistent=True)
    assert record is not None and record.thumbnail_url
    provider_thumbnail = record.thumbnail_url

    # AND PiAPI has deleted its files since
    expire_at_piapi(stack, monkeypatch, video_id)
    assert httpx.get(provider_thumbnail, timeout=30).status_code == 404

    # WHEN the user opens the library
    sign_in(page, stack, "noor")
    card = card_of(page, prompt)
    expect(saved_mark_of(card)).to_be_visible()

    # THEN the card's picture is the copy in R2, and it loads
    picture = card.locator("img")
    expect(picture).to_have_attribute(
        "src", re.compile(f"^{re.escape(stack.aws_url)}/video-library/campaigns/42/thumbnails/{video_id}\\.jpg")
    )
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
    expect(card.locator("video.first-frame")).to_have_count(0)  # the picture, not the fallback
    screenshot("picture-from-r2", show=card)

    # WHEN the user presses Download
    page_before = page.url
    with page.expect_download() as downloading:
        card.get_by_role("link", name="Download").click()

    # THEN the browser downloads the file under a name made from the prompt, and the page stays where it was
    download = downloading.value
    assert download.suggested_filename == "a-lighthouse-at-dawn-by-the-sea.mp4" == saved["download_filename"]
    kept = tmp_path / download.suggested_filename
    download.save_as(kept)
    assert kept.read_bytes() == httpx.get(saved["video_url"], timeout=30).content
    assert kept.stat().st_size == saved["size_bytes"]
    assert page.url == page_before
    expect(card).to_be_visible()
    screenshot("downloaded", show=card)
