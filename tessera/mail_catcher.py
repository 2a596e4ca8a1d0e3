"""A local SMTP server that keeps each mail it is handed as a .eml file in a folder.

`make run` starts one so that a user sees the mail the system sends; the tests run one as a process of its own
(`python -m tessera.mail_catcher FOLDER PORT`), as a real mail server is: in the test's own process it shared the
interpreter with the fault suite's load and tally, and an SMTP conversation to it took 50-120 ms under that load,
20-60 ms to one in a process of its own at the same moment (docs/profile.md).
"""

import argparse
import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class FolderCatcher:
    """aiosmtpd's handler: each mail a file named by when it came, so that the names sort in arrival order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        (self.folder / f"{stamp}-{uuid.uuid4().hex[:8]}.eml").write_bytes(envelope.content)
        return "250 Message accepted for delivery"


def start(folder: Path, port: int) -> Controller:
    """The catcher on 127.0.0.1:port, in a thread of this process; stop it with its `stop()`."""
    controller = Controller(FolderCatcher(folder), hostname="127.0.0.1", port=port)
    controller.start()
    return controller


async def _serve(folder: Path, port: int) -> None:
    start(folder, port)
    await asyncio.Event().wait()  # until the process is stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    asyncio.run(_serve(args.folder, args.port))


if __name__ == "__main__":
    main()
