"""Debian's Chromium, headless, for the tests that open KAM's pages as a reader would (`make chromium`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("Chromium is not installed: run `make chromium` (Debian's chromium package)", pytrace=False)


def headless(profile: Path, *flags: str) -> list[str]:
    """The browser command line: no sandbox (containers), no GPU, its own profile folder."""
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--hide-scrollbars", f"--user-data-dir={profile}", *flags]


def dump_dom(profile: Path, url: str, *flags: str) -> str:
    """The page's DOM after its scripts ran, as Chromium serialises it."""
    return subprocess.run([*headless(profile, *flags), "--dump-dom", url], capture_output=True, text=True,
                          timeout=120, check=True).stdout


def screenshot(profile: Path, url: str, shot: Path, size: str, *flags: str) -> Path:
    subprocess.run([*headless(profile, *flags), f"--screenshot={shot}", f"--window-size={size}", url],
                   capture_output=True, timeout=120, check=True)
    return shot
