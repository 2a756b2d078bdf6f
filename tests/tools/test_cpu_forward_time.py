from tests.helpers import load_tool


def test_cpu_forward_time_reports_each_batch(capsys):
    results = load_tool("cpu_forward_time").main(["--img-size", "32", "--batch-sizes", "1", "2", "--repeats", "1",
                                                  "--threads", "1"])
    assert set(results) == {1, 2} and all(t > 0 for t in results.values())
    assert "batch 2: median" in capsys.readouterr().out
