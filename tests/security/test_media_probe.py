"""Media type confusion: an edge box uploads script as its evidence; a regulator's browser opens it.

The edge belongs to the enterprise under supervision. Whatever type it announces and whatever
bytes it sends, a regulator who opens the alert's media in headless Chromium must not run them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from security_tally import Tally
from security_targets import Targets, camera_jpeg
from security_world import SITE_A, SecurityWorld

HERE = Path(__file__).resolve().parent
SCRIPT = b"""<html><body><script>
document.title = "PWNED"; window.name = "PWNED";
fetch("/api/v1/auth/me").then((r) => r.json()).then((me) => {
  document.title = "PWNED " + me.csrf_token;
});
</script></body></html>"""
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>document.title="PWNED";'
    b'window.name="PWNED";</script></svg>'
)

# (announced name, announced content type, bytes): what a hostile edge would try.
VARIANTS = [
    ("snapshot.html", "text/html", SCRIPT),
    ("snapshot.htm", "text/html", SCRIPT),
    ("snapshot.jpg", "text/html", SCRIPT),
    ("snapshot.jpg", "image/jpeg", SCRIPT),  # the bytes are no JPEG
    ("snapshot.svg", "image/svg+xml", SVG),
    ("snapshot.xhtml", "application/xhtml+xml", SCRIPT),
    ("snapshot.jpg", "image/jpeg", camera_jpeg(5)[:200] + SCRIPT),  # JPEG magic, then HTML
    ("clip.mp4", "text/html", SCRIPT),
    ("snapshot.png", "image/png", b"\x89PNG\r\n\x1a\n" + SCRIPT),
]


def test_media_type_confusion_in_chromium(
    world: SecurityWorld, targets: Targets, tally: Tally
) -> None:
    count = tally["media_type_confusion"]
    node = shutil.which("node")
    assert node, "node is not installed"
    assert (HERE.parent / "browser" / "node_modules" / "playwright-core").is_dir(), (
        "playwright-core is missing: npm ci --prefix tests/browser (or link node_modules)"
    )
    urls = []
    for name, ctype, data in VARIANTS:
        alert_id = world.raise_alert(SITE_A, (name, data, ctype), wait=False)
        # Events of a site are taken in order: once a plain one behind it is an alert, the
        # hostile one was either taken or refused.
        world.raise_alert(SITE_A)
        if world.request("GET", f"/api/v1/alerts/{alert_id}", user="admin").status == 404:
            count.record(True, f"{name} {ctype}: event refused", "event refused at ingest")
            continue
        put = world.put_media(SITE_A, alert_id, name, data, ctype)
        stored = 200 <= put.status < 300
        if not stored:
            count.record(True, f"{name} {ctype}: upload refused ({put.status})", "upload refused")
            continue
        urls.append(f"/api/v1/alerts/{alert_id}/media/{name}")
    if urls:
        options = {
            "base": world.url,
            "token": world.token("inspector-a"),
            "urls": urls,
        }
        done = subprocess.run(
            [node, str(HERE / "media_probe.mjs"), json.dumps(options)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=HERE,
        )
        lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
        assert lines, f"no result from the browser:\n{done.stdout}\n{done.stderr}"
        result = json.loads(lines[-1])
        assert result["ok"], result
        for seen in result["results"]:
            headers = seen["headers"]
            ctype = headers.get("content-type", "")
            safe = (
                not seen["executed"]
                and headers.get("x-content-type-options", "").lower() == "nosniff"
                and "sandbox" in headers.get("content-security-policy", "")
                and "html" not in ctype
                and "svg" not in ctype
                and "xml" not in ctype
            )
            count.record(
                safe,
                f"{seen['url']}: executed={seen['executed']} headers={headers}",
                "served inert to Chromium",
            )
    assert count.attempts == len(VARIANTS)
    assert count.leaked == 0, count.leaks
