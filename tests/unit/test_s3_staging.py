"""The S3 staging key layout (no server; against moto's S3 server: tests/integration/test_s3_staging.py)."""

from __future__ import annotations

import pytest

from etl.errors import ConfigError
from etl.staging import S3Staging


def test_keys_layout():
    staging = S3Staging("s3://bucket/some/prefix/")
    assert staging.part_key("mysql", "orders", 3) == "some/prefix/mysql/orders/execution_sequence=3/part-00000.csv.gz"
    assert staging.part_path("weblog", "access", 1) == "s3://bucket/some/prefix/weblog/access/execution_sequence=1/part-00000.csv.gz"
    assert S3Staging("s3://bucket").part_key("mysql", "t", 1) == "mysql/t/execution_sequence=1/part-00000.csv.gz"
    with pytest.raises(ConfigError, match="is not s3://bucket/prefix"):
        S3Staging("s3:///nobucket")
