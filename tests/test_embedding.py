"""The README's Embedding example, run as written against a local S3 server (moto's
server mode on 127.0.0.1, started by the fixture and stopped after)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from olist_fast.io import convert
from olist_fast.pipeline import score, train
from olist_fast.schema import TABLES

README = Path(__file__).resolve().parents[1] / "README.md"
BUCKET = "shop-lake"
AS_OF = date(2018, 9, 1)


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("### Embedding") :]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:1]
    return code


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory):
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    yield client, env
    server.stop()


@pytest.fixture(scope="module")
def local_data(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    parquet = tmp_path_factory.mktemp("embed-parquet")
    convert(data_dir, parquet)
    return parquet


def test_readme_embedding_example_runs_against_object_storage(
    s3, local_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, env = s3
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for spec in TABLES.values():
        path = local_data / f"{spec.stem}.parquet"
        client.upload_file(str(path), BUCKET, f"olist/raw/{path.name}")
    code = readme_example().replace("/tmp/olist-model", str(tmp_path / "model"))
    namespace: dict = {}
    exec(compile(code, "README.md#embedding", "exec"), namespace)

    n = namespace["nightly_scores"](AS_OF)

    url = f"s3://{BUCKET}/olist/scores/as_of={AS_OF:%Y-%m-%d}/scores.parquet"
    remote = pl.read_parquet(url)
    assert remote.height == n > 0
    # the same as the job on the local copy of the same files
    model = train(data=local_data, as_of=AS_OF, model_dir=tmp_path / "local-model")
    local = score(model, data=local_data, as_of=AS_OF)
    assert remote.equals(local)


def test_unreadable_url_is_one_line(s3, monkeypatch: pytest.MonkeyPatch) -> None:
    from olist_fast.errors import OlistDataError
    from olist_fast.io import scan_olist

    _, env = s3
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(OlistDataError, match=r"olist_orders_dataset\.csv: file not found"):
        scan_olist(f"s3://{BUCKET}/nothing-here")
