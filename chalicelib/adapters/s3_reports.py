"""Where the daily reports go (`ReportSink`): an S3 bucket (`reports_bucket`, infra's
ReportsBucket: private, encrypted) or, without one, a local folder (`./reports/`).

Names are relative paths like `daily/2026-03-02/trades.csv`; a name that could leave the
folder (absolute, `..`) is refused, so a request can never read or write outside it.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any


def _clean(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"bad report name {name!r}")
    return str(path)


class S3ReportSink:
    def __init__(self, client: Any, bucket: str, prefix: str = "reports/") -> None:
        self._s3 = client
        self._bucket = bucket
        self._prefix = prefix

    def put(self, name: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(
            Bucket=self._bucket,
            Key=self._prefix + _clean(name),
            Body=body,
            ContentType=content_type,
        )

    def get(self, name: str) -> bytes | None:
        try:
            got = self._s3.get_object(Bucket=self._bucket, Key=self._prefix + _clean(name))
        except self._s3.exceptions.NoSuchKey:
            return None
        body: bytes = got["Body"].read()
        return body


class DirectoryReportSink:
    def __init__(self, root: str | Path) -> None:
        self._root = Path(root)

    def put(self, name: str, body: bytes, content_type: str) -> None:
        path = self._root / _clean(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(body)
        tmp.replace(path)  # a reader never sees half a file

    def get(self, name: str) -> bytes | None:
        path = self._root / _clean(name)
        return path.read_bytes() if path.is_file() else None
