"""The desk's vendored design system (issue #19 §4): a tarball whose hash is not npm's is refused before any file of
it is used, and the stylesheets keep nothing of the GOV.UK-only GDS Transport font."""

import io

import pytest

from tools import vendor_frontend
from tools.vendor_frontend import PACKAGES, VENDOR, without_gds_transport


def test_a_tarball_that_is_not_the_one_npm_published_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vendor_frontend.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"not govuk"))
    with pytest.raises(SystemExit, match="not"):
        vendor_frontend.fetch(PACKAGES[0])


def test_the_stylesheets_say_arial_and_load_no_gds_transport() -> None:
    css = ('@font-face{font-family:GDS Transport;src:url(/assets/fonts/light.woff2)}'
           '.govuk-body{font-family:GDS Transport,arial,sans-serif}.x{font-family:"GDS Transport"}')
    assert without_gds_transport(css) == ".govuk-body{font-family:arial,sans-serif}.x{font-family:arial,sans-serif}"
    for package in PACKAGES:
        for name in package.files.values():
            if name.endswith(".css"):
                vendored = (VENDOR / package.folder / name).read_text()
                assert "GDS Transport" not in vendored and "@font-face" not in vendored
