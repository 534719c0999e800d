"""Fetch Spark's S3A connector jars from PyPI (stdlib only; run by infra/bootstrap.sh).

Maven Central is not reachable here, so the jars come from the PyPI sdist of sagemaker-pyspark,
which carries hadoop-aws 3.3.1 and the matching AWS SDK bundle under deps/jars/. Only those two
members are extracted; the download is checked against a pinned sha256.
"""

from __future__ import annotations

import hashlib
import html.parser
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

SDIST = "sagemaker_pyspark-1.4.5.tar.gz"
SDIST_SHA256 = "05ca2d5081d7138ce29a8fb0a9cba077f28c825288ed07aed46a82e63c0bf1fb"
JARS = {
    "hadoop-aws-3.3.1.jar": "sagemaker_pyspark-1.4.5/deps/jars/hadoop-aws-3.3.1.jar",
    "aws-java-sdk-bundle-1.11.901.jar": (
        "sagemaker_pyspark-1.4.5/deps/jars/aws-java-sdk-bundle-1.11.901.jar"
    ),
}


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links += [v for k, v in attrs if k == "href" and v]


def sdist_url(index: str) -> str:
    page_url = index.rstrip("/") + "/sagemaker-pyspark/"
    with urllib.request.urlopen(page_url, timeout=60) as response:
        parser = _Links()
        parser.feed(response.read().decode())
    for link in parser.links:
        if link.split("#", 1)[0].endswith("/" + SDIST):
            return urllib.parse.urljoin(page_url, link)
    raise SystemExit(f"fetch_jars: {SDIST} not listed at {page_url}")


def main(target: Path) -> int:
    target.mkdir(parents=True, exist_ok=True)
    if all((target / name).is_file() for name in JARS):
        return 0
    index = (
        os.environ.get("UV_INDEX_URL")
        or os.environ.get("PIP_INDEX_URL")
        or "https://pypi.org/simple"
    )
    url = sdist_url(index)
    print(f"fetching S3A jars from {url.split('#')[0]} (about 180 MB, once)", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / SDIST
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=600) as response, open(archive, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != SDIST_SHA256:
            raise SystemExit(
                f"fetch_jars: sha256 of {SDIST} is {digest.hexdigest()}, expected {SDIST_SHA256}"
            )
        with tarfile.open(archive, "r:gz") as tar:
            for name, member in JARS.items():
                source = tar.extractfile(member)
                if source is None:
                    raise SystemExit(f"fetch_jars: {member} missing from {SDIST}")
                partial = target / (name + ".part")
                with open(partial, "wb") as out:
                    shutil.copyfileobj(source, out)
                partial.replace(target / name)
    print(f"S3A jars in {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".jars")))
