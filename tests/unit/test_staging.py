"""The staging helpers (etl.staging) without a server: locations, the header row, part files, splitting.

Writing and replacing a sequence's local files: tests/unit/test_markers.py; the staged-line
parser and NUL removal: tests/unit/test_altered_values.py; S3 objects against moto:
tests/integration/test_s3_staging.py.
"""

from __future__ import annotations

import io
from pathlib import Path

from etl.staging import LocalStaging, PartFiles, S3Staging, open_staging
from etl.staging_format import header_line, write_lines


class _Buffer(io.BytesIO):
    def close(self):  # PartFiles closes its parts; keep the bytes readable
        pass


def parts_in_memory():
    buffers: dict[int, _Buffer] = {}
    return PartFiles(lambda index: buffers.setdefault(index, _Buffer())), buffers


def test_the_header_row_quotes_every_column_name():
    assert header_line(["execution_sequence", "order_no", "a,b", 'say "x"']) == \
        b'"execution_sequence","order_no","a,b","say ""x"""\n'


def test_open_staging_chooses_s3_for_an_s3_uri_and_a_local_folder_otherwise(tmp_path):
    s3 = open_staging("s3://dw-bucket/elt/", "http://127.0.0.1:9000")
    assert isinstance(s3, S3Staging) and (s3.bucket, s3.prefix, s3.endpoint_url) == ("dw-bucket", "elt", "http://127.0.0.1:9000")
    assert open_staging("s3://dw-bucket").endpoint_url is None  # boto3's default endpoint
    local = open_staging(str(tmp_path / "staging"))
    assert isinstance(local, LocalStaging) and local.root == tmp_path / "staging"


def test_s3_locations_with_and_without_a_prefix():
    staging = S3Staging("s3://dw-bucket/some/prefix/")
    assert staging.describe() == "s3://dw-bucket/some/prefix"
    assert staging.partition_prefix("mysql", "orders", 3) == "some/prefix/mysql/orders/execution_sequence=3/"
    assert staging.parts_uri("mysql", "orders", 3) == "s3://dw-bucket/some/prefix/mysql/orders/execution_sequence=3/part-"
    assert staging.part_key("mysql", "orders", 3, part=2) == "some/prefix/mysql/orders/execution_sequence=3/part-00002.csv.gz"
    bare = S3Staging("s3://dw-bucket")
    assert bare.describe() == "s3://dw-bucket"
    assert bare.parts_uri("weblog", "access", 1) == "s3://dw-bucket/weblog/access/execution_sequence=1/part-"
    assert staging._client is None  # no client (and no connection) until one is needed


def test_local_part_paths_number_the_parts(tmp_path):
    staging = LocalStaging(tmp_path)
    assert staging.describe() == str(tmp_path)
    assert staging.part_path("mysql", "orders", 12, part=3) == Path(tmp_path, "mysql", "orders", "execution_sequence=12",
                                                                    "part-00003.csv")


def test_a_mirrored_part_hands_every_byte_to_its_sink_and_the_others_do_not():
    parts, buffers = parts_in_memory()
    mirrored = []
    parts.mirror(0, mirrored.append)
    parts.part(0, b"head\n").write(b"row 1\n")
    parts.part(1, b"head\n").write(b"row 2\n")
    parts.part(0, b"head\n").write(b"row 3\n")  # opened once: the header is not written again
    assert mirrored == [b"head\n", b"row 1\n", b"row 3\n"]
    assert buffers[0].getvalue() == b"head\nrow 1\nrow 3\n" and buffers[1].getvalue() == b"head\nrow 2\n"
    assert parts.count == 2


def test_a_large_extract_alternates_its_batches_between_the_parts_after_the_first_rows():
    parts, buffers = parts_in_memory()
    batches = [[(f"1,{i}".encode(),)] for i in range(6)]
    seen = []
    result = write_lines(parts, ["id"], iter(batches), on_batch=seen.append, split_after_rows=3, part_count=2)
    header = b'"execution_sequence","id"\n'
    # batches 0-2 are the first 3 rows (part 0); from then on batch n goes to part n % 2
    assert buffers[0].getvalue() == header + b"1,0\n1,1\n1,2\n1,4\n"
    assert buffers[1].getvalue() == header + b"1,3\n1,5\n"
    assert (result.rows, parts.count, seen) == (6, 2, [1, 2, 3, 4, 5, 6])


def test_a_small_extract_stays_in_one_part_and_an_empty_one_still_has_its_header():
    parts, buffers = parts_in_memory()
    write_lines(parts, ["id"], iter([[(b"1,1",), (b"1,2",)]]), split_after_rows=10, part_count=4)
    assert parts.count == 1 and buffers[0].getvalue() == b'"execution_sequence","id"\n1,1\n1,2\n'
    empty, buffers = parts_in_memory()
    assert write_lines(empty, ["id", "d"], iter([])).rows == 0
    assert buffers[0].getvalue() == b'"execution_sequence","id","d"\n'


def test_invalid_dates_are_counted_per_date_column_from_each_rows_flags():
    parts, _ = parts_in_memory()
    batches = [[(b"1,1,,", b"0,1"), (b"1,2,2024-01-01,", b"1")], [(b"1,3,,2024-01-01", b"0"), (b"1,4,2024-01-01,2024-01-01", None)]]
    result = write_lines(parts, ["id", "d1", "d2"], iter(batches), ["d1", "d2"])
    assert result.invalid_dates == {"d1": 2, "d2": 2}
