"""The source examples commented out in config.yaml are valid config (docs checked
against the code), and every configured type has a registered source class."""

from __future__ import annotations

import re
from pathlib import Path

from monitor.collect import REGISTRY, build_source, source_class
from monitor.config import load_settings
from monitor.http_client import HttpFactory, HttpPolicy

ROOT = Path(__file__).resolve().parent.parent


def test_commented_source_examples_validate_and_build(tmp_path):
    lines = []
    for line in (ROOT / "config.yaml").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^      # (\s*(- type|[a-z_]+:).*)$", line)
        lines.append("      " + m.group(1) if m else line)
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    env = {"REDDIT_CLIENT_ID": "id", "REDDIT_CLIENT_SECRET": "secret", "BLUESKY_APP_PASSWORD": "pw",
           "MASTODON_TOKEN": "tok", "GITHUB_TOKEN": "ghp-tok"}
    env["STACKEXCHANGE_KEY"] = "se-key"
    env["YOUTUBE_API_KEY"] = "yt-key"
    env.update(DISCOURSE_API_KEY="dc-key", DISCOURSE_API_USERNAME="monitor_bot")
    settings = load_settings(path, env=env)
    types = {s.type for s in settings.brands[0].sources}
    assert types == {"hackernews", "reddit", "feed", "appstore", "bluesky", "mastodon", "github", "youtube",
                     "stackexchange",
                     "lemmy", "discourse", "googleplay"}
    factory = HttpFactory(HttpPolicy())
    for brand, ss in settings.source_jobs():
        source = build_source(brand, ss, http_factory=factory, now=lambda: None)
        assert source.key == f"{brand.name}:{ss.name or ss.type}"
        assert source.queries()


def test_registry_names_real_classes():
    for name in REGISTRY:
        assert source_class(name).type == name
