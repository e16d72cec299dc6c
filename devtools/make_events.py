"""Regenerate ``events/``: realistic API Gateway / EventBridge events for every handler.

Webhook events wrap each PiAPI sample of ``../shared/piapi`` exactly as PiAPI sends it (its JSON body and the
``x-webhook-secret`` header). Run ``make events`` after a sample changes; the files are committed.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from devtools.apigw import http_api_event

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
# The secret the samples echo in data.config.webhook_config.secret, sent in the header as PiAPI does.
SAMPLE_WEBHOOK_SECRET = "s3cr3t-from-config"  # noqa: S105 (the samples' made-up value)
WEBHOOK_SAMPLES = (
    "hunyuan_completed",
    "kling_works_completed",
    "kling3_completed",
    "luma_completed",
    "processing",
    "failed",
)


def webhook_event(sample: dict[str, object]) -> dict[str, object]:
    sent_at = datetime.fromtimestamp(int(sample["timestamp"]), UTC)  # type: ignore[call-overload]
    return http_api_event(
        "POST",
        "/webhooks/piapi",
        body=json.dumps(sample, separators=(",", ":")),
        headers={
            "content-type": "application/json",
            "user-agent": "Go-http-client/2.0",
            "x-webhook-secret": SAMPLE_WEBHOOK_SECRET,
            "x-forwarded-for": "198.51.100.23",
            "x-forwarded-proto": "https",
            "host": "api.example.com",
        },
        source_ip="198.51.100.23",
        now=sent_at,
    )


def write(name: str, event: dict[str, object]) -> None:
    path = EVENTS / f"{name}.json"
    path.write_text(json.dumps(event, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


def main(samples_dir: Path) -> None:
    EVENTS.mkdir(exist_ok=True)
    for name in WEBHOOK_SAMPLES:
        sample = json.loads((samples_dir / f"{name}.json").read_text())
        write(f"webhook_{name}", webhook_event(sample))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "piapi")
