"""The desk's design system, vendored (issue #19 §4): GOV.UK Frontend and the MOJ Frontend, fetched from the npm
registry at pinned versions, each tarball checked against its npm integrity hash before a file of it is used, and
their built files copied into services/web/static/vendor/. The result is committed: neither CI nor the desk needs
npm or the network.

    python -m tools.vendor_frontend            # fetch, check and copy (make vendor-frontend)

GOV.UK Frontend 6.3.0 is the version govuk-frontend-jinja 4.1.0 is tested against, so its macros can be adopted
without a second upgrade; MOJ Frontend 11.1.0 is the release built on GOV.UK Frontend 6. Only stylesheets, and GOV.UK
Frontend's script (an ES module), are copied: the MOJ components the desk uses (identity bar, timeline, badges, the
sortable table's look — work lists are sorted on the server) need no script. To update: change a version and its
integrity (`npm view <package>@<version> dist.integrity`), run this, and run the desk's browser tests.

The GDS Transport font and the crown are for GOV.UK services only, which a council's desk is not: no asset (fonts,
crest, favicons) is copied, and the stylesheets say Arial instead of the font, as GOV.UK Frontend's own
`$govuk-font-family` setting does for a service off GOV.UK."""

import base64
import hashlib
import io
import re
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "services" / "web" / "static" / "vendor"
REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # npm's "sha512-<base64>" of the tarball
    folder: str  # under static/vendor/
    files: dict[str, str]  # path in the tarball → name in the folder

    @property
    def url(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.name.rsplit('/', 1)[-1]}-{self.version}.tgz"


PACKAGES = (
    Package("govuk-frontend", "6.3.0",
            "sha512-cXIQxm5PHCsbic47GXZrVBZhAeeshTLRL6ZBKilLsR6rMCjJuWb7Fruq0VUNMBJFlJk/srsRj/q8d5bM9cgKoA==",
            "govuk-frontend", {
        "package/dist/govuk/govuk-frontend.min.css": "govuk-frontend.min.css",
        "package/dist/govuk/govuk-frontend.min.js": "govuk-frontend.min.js",
    }),
    Package("@ministryofjustice/frontend", "11.1.0",
            "sha512-1bkUbm2M4DpcpX/pOmumQRBsbJco9W2RwmJv5h/ZC/ZqrAOn2/FjpF+A7vS0gs7oMXBizr9O5huDrSYbLx73Nw==",
            "moj-frontend", {
        "package/moj/moj-frontend.min.css": "moj-frontend.min.css",
    }),
)


def fetch(package: Package) -> bytes:
    with urllib.request.urlopen(package.url, timeout=60) as answer:  # noqa: S310 (a fixed https URL)
        tarball = answer.read()
    algorithm, _, expected = package.integrity.partition("-")
    found = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if found != expected:
        raise SystemExit(f"{package.name} {package.version}: the tarball's {algorithm} is {found}, not {expected}")
    return tarball


def without_gds_transport(css: str) -> str:
    """The stylesheet in Arial: no @font-face of the GOV.UK-only font, and no rule naming it."""
    css = re.sub(r"@font-face\{[^}]*\}", "", css)
    css = re.sub(r'font-family:"?GDS Transport"?,', "font-family:", css)
    return re.sub(r'font-family:"?GDS Transport"?(?=[;}])', "font-family:arial,sans-serif", css)


def copy(package: Package, tarball: bytes) -> None:
    folder = VENDOR / package.folder
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member, name in package.files.items():
            extracted = tar.extractfile(member)
            if extracted is None:
                raise SystemExit(f"{package.name} {package.version} has no file {member}")
            content = extracted.read()
            if name.endswith(".css"):
                content = without_gds_transport(content.decode()).encode()
            (folder / name).write_bytes(content)


def main() -> None:
    for package in PACKAGES:
        copy(package, fetch(package))
        print(f"{package.name} {package.version} → {VENDOR / package.folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
