"""S3 staging against a real S3-compatible server (moto in server mode) on 127.0.0.1 (the key layout:
tests/unit/test_s3_staging.py)."""

from __future__ import annotations

import gzip

import pytest

from etl.errors import ConfigError
from etl.staging import S3Staging
from tests.support.oracle import assert_store_equals_source
from tests.support.s3 import CREDENTIALS

def test_missing_bucket_is_a_clear_error(s3, s3_server):
    with pytest.raises(ConfigError, match="bucket 'no-such-bucket' does not exist; create it or fix \\[staging\\] uri"):
        S3Staging("s3://no-such-bucket/x", s3_server).check()


def objects(s3, bucket: str) -> dict[str, str]:
    return {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_full_run_with_s3_staging(project, s3, s3_server):
    bucket = "dw-staging-test"
    s3.create_bucket(Bucket=bucket)
    project.populate("--scale", "0.001", "--seed", "3")
    logs = project.root / "logs"
    logs.mkdir()
    (logs / "access.log").write_text('8.8.8.8 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "curl/8"\n')
    project.write_cfg(staging={"uri": f"s3://{bucket}/elt", "s3_endpoint_url": s3_server})
    env = project.env(**CREDENTIALS)
    project.run(env=env)
    assert_store_equals_source(project)
    keys = objects(s3, bucket)
    expected = {f"elt/mysql/{t}/execution_sequence=1/part-00000.csv.gz" for t in project.metadata()}
    expected.add("elt/weblog/access/execution_sequence=1/part-00000.csv.gz")
    assert set(keys) == expected
    assert not (project.root / "staging").exists()  # nothing staged locally
    body = s3.get_object(Bucket=bucket, Key="elt/mysql/companies/execution_sequence=1/part-00000.csv.gz")["Body"].read()
    assert gzip.decompress(body).decode().startswith('"execution_sequence","company_id","company_name",')

    # rerunning one table's extract replaces that sequence's objects of that table only
    stray = "elt/mysql/companies/execution_sequence=1/part-00001.csv.gz"
    s3.put_object(Bucket=bucket, Key=stray, Body=b"stale")
    (project.output(1) / "mysql_companies.extract.json").unlink()
    project.run(env=env)
    after = objects(s3, bucket)
    assert stray not in after
    assert {k: v for k, v in after.items() if "/companies/" not in k} == {k: v for k, v in keys.items() if "/companies/" not in k}
    assert_store_equals_source(project)

    # a missing bucket stops the run before any task, with the bucket named
    project.write_cfg(staging={"uri": "s3://no-such-bucket/elt", "s3_endpoint_url": s3_server})
    proc = project.run(env=env, expect=35)
    assert "bucket 'no-such-bucket' does not exist" in proc.stderr
    assert "testing" not in proc.stderr.replace("t_src", "")  # the access key id is never printed
