"""PDF 1.5 files whose objects sit compressed in an object stream (/ObjStm) behind a cross-reference stream,
built byte by byte: the catalog, its pages and anything else live only inside the compressed stream (issue #21 §7)."""

import zlib

JAVASCRIPT_OPEN_ACTION = b"/OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >>"


def with_object_stream(catalog_extra: bytes = b"") -> bytes:
    """A one-page PDF whose catalog (with `catalog_extra` in its dictionary), pages and page are in an object
    stream; readable by a real PDF reader (pypdf)."""
    compressed = [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    offsets, body = [], b""
    for obj in compressed:
        offsets.append(len(body))
        body += obj + b"\n"
    header = b" ".join(f"{n} {off}".encode() for n, off in zip((1, 2, 3), offsets, strict=True)) + b"\n"
    objects = zlib.compress(header + body)

    out = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n"
    stream_at = len(out)
    out += (b"4 0 obj\n<< /Type /ObjStm /N 3 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
            % (len(header), len(objects))) + objects + b"\nendstream\nendobj\n"
    xref_at = len(out)
    rows = [bytes([0]) + (0).to_bytes(4, "big") + (65535).to_bytes(2, "big")]
    rows += [bytes([2]) + (4).to_bytes(4, "big") + i.to_bytes(2, "big") for i in range(3)]
    rows += [bytes([1]) + stream_at.to_bytes(4, "big") + (0).to_bytes(2, "big"),
             bytes([1]) + xref_at.to_bytes(4, "big") + (0).to_bytes(2, "big")]
    table = zlib.compress(b"".join(rows))
    out += (b"5 0 obj\n<< /Type /XRef /Size 6 /W [1 4 2] /Root 1 0 R /Filter /FlateDecode /Length %d >>\nstream\n"
            % len(table)) + table + b"\nendstream\nendobj\n"
    return out + b"startxref\n%d\n%%%%EOF\n" % xref_at
