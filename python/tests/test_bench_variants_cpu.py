"""bench/bench_variants.py without a GPU or torch: its options parse (torch is imported only after them), and the
feature check that prints fa2jit's document-mask row as "n/a" names what fa2jit's entry points do not take."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "bench"))

import bench_variants  # noqa: E402  (imports neither torch nor the library)


def run_bench(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "bench", "bench_variants.py"), *args],
                          capture_output=True, text=True, timeout=60)


def test_help_needs_no_torch():
    result = run_bench("--help")
    assert result.returncode == 0, result.stderr
    for text in ("--pass", "--variant", "--quick", "mask_mod"):
        assert text in result.stdout


def test_bad_options_are_refused_before_any_work():
    result = run_bench("--heads", "16", "--heads-kv", "5")
    assert result.returncode == 2
    assert "--heads-kv 5" in result.stderr
    assert run_bench("--variant", "dropout").returncode == 2


def test_missing_options_names_what_a_function_does_not_take():
    def old_attention(q, k, v, *, causal=False, window=None):
        del q, k, v, causal, window

    assert bench_variants.missing_options(old_attention, {"causal": True, "mask_mod": "x", "extra": {}}) == [
        "mask_mod", "extra"]
    assert bench_variants.missing_options(lambda q, **kwargs: None, {"mask_mod": "x"}) == []


def test_fa2jit_takes_every_built_in_variant_the_bench_passes():
    options = dict(causal=True, window=(1024, 0), softcap=50.0, alibi_slopes=None, tune="heuristic", cache_path="x")
    import fa2jit
    assert bench_variants.missing_options(fa2jit.attention, options) == []
    assert bench_variants.missing_options(fa2jit.forward, options) == []
