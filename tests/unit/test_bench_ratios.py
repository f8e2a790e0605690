"""The benchmark's ratios: medians of the per-repetition ratios, as its targets read them."""

from bench.run import Run, Series, job_beside_load, ratio, summarise


def series(*seconds: float, rows: int = 0) -> Series:
    return Series([Run(s, 1024, rows) for s in seconds])


def test_a_ratio_is_the_median_of_the_rounds_ratios_not_the_ratio_of_the_medians():
    # rounds: 2/4, 3/3, 9/4 -> 0.5, 1.0, 2.25: median 1.0; the medians alone would give 3/4 = 0.75
    ours, peer = series(2, 3, 9), series(4, 3, 4)
    assert ratio(ours, peer) == 1.0
    assert ours.seconds / peer.seconds == 0.75


def test_series_of_different_lengths_fall_back_to_the_ratio_of_the_medians():
    assert ratio(series(2, 3, 9), series(6)) == 0.5


def test_targets_and_the_job_table_use_the_rounds_ratios():
    results = {"incremental": {"ours": series(2, 3, 9), "ours_runjob": series(4, 6, 20), "floor": series(2, 2, 6),
                               "dlt_fast": series(4, 3, 4), "sling": series(4, 4, 4)},
               "weblog": {"ours": series(1, 2, 4, rows=100), "goaccess": series(2, 2, 2, rows=100)}}
    _, checks = summarise(results)
    values = {check["target"]: check["value"] for check in checks}
    assert values["ours_runjob / dlt_fast <= 1.0"] == 2.0  # 1.0, 2.0, 5.0 (medians alone: 6/4 = 1.5)
    assert values["ours / floor <= 1.5"] == 1.5  # 1.0, 1.5, 1.5
    assert values["ours lines/s >= 4.0 x goaccess"] == 1.0  # 2.0, 1.0, 0.5 (medians alone: 1.0 as well)
    (row,) = job_beside_load(results)
    assert row[0] == "incremental" and row[6:] == ["1.50", "1.00", "0.75", "2.00"]
