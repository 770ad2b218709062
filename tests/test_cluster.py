"""Scale-out (issue 8): Ray batch inference and multi-process (DDP) training, on this machine.

* One local Ray cluster per module, started by the test on the loopback address (2 CPUs,
  no dashboard, no usage stats, a token of its own, session files under /tmp), runs
  ``predict --engine ray`` with 2 workers on the seed documents: same rows, labels,
  summary and skips as the local path; a second run joins it with ``--address`` from a
  separate process and writes Parquet shards.
* ``torchrun --nproc-per-node 2`` (gloo on CPU) trains the tiny model; the directory has
  the same files and ``policytag.json`` keys as the single-process one.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from policytag.serving import batch, ray_engine

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

FIXTURES = Path(__file__).parent / "fixtures"
SEEDS = sorted(FIXTURES.glob("*.txt"))
REPO = Path(__file__).resolve().parents[1]


def _ray_env() -> dict:
    return {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray's switch for a loopback-only node
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),  # this cluster's own token; nothing written to ~/.ray
    }


@pytest.fixture(scope="module")
def ray_cluster():
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install 'policytag[cluster]')")
    tmp = tempfile.mkdtemp(prefix="ptray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    with pytest.MonkeyPatch.context() as mp:
        for k, v in _ray_env().items():
            mp.setenv(k, v)
        import ray
        from ray._private import ray_constants

        mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # in case ray was imported before the env var
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * 2**20, _temp_dir=tmp,
                 log_to_driver=False, configure_logging=False)
        try:
            address = ray.get_runtime_context().gcs_address
            assert address.startswith("127.0.0.1:"), address
            yield address
        finally:
            ray.shutdown()
            shutil.rmtree(tmp, ignore_errors=True)


def _opts(inputs, out, model, **kw) -> batch.PredictOptions:
    return batch.PredictOptions(inputs=[str(i) for i in inputs], output=str(out), model=str(model), progress=False,
                                batch_size=8, **kw)


def _labels(rows):
    return [(r["doc_id"], r["clause_id"], r["text"], r["themes"], r["measures"]) for r in rows]


def _assert_same_rows(local, other):
    assert _labels(other) == _labels(local)  # same clauses, same order, same labels
    for a, b in zip(local, other):
        assert set(a) == set(b)
        for k, v in a.items():
            if k.startswith("p_"):
                # the default CPU runtime is dynamic int8: activation scales are computed per batch, and
                # Ray batches (chunks of 16) differ from local ones, so scores differ slightly; labels
                # near a threshold are recomputed in fp32 and must be identical (checked above)
                assert abs(v - b[k]) <= 1e-2, (a["clause_id"], k, v, b[k])
            else:
                assert b[k] == v, (a["clause_id"], k)


def test_ray_two_workers_match_local(ray_cluster, tiny_model_dir, tmp_path):
    """Seed documents + a same-named copy + a clause .jsonl + a corrupt PDF + a missing file."""
    dup = tmp_path / "copy"
    dup.mkdir()
    shutil.copy(SEEDS[0], dup / SEEDS[0].name)
    inputs = [*SEEDS, dup, FIXTURES / "mini_gold.jsonl", FIXTURES / "ingest" / "corrupt.pdf", tmp_path / "missing.txt"]

    local = batch.run_predict(_opts(inputs, tmp_path / "local.jsonl", tiny_model_dir))
    settings = ray_engine.ray_settings(["ray.docs_per_call=2", "ray.chunk_clauses=16"])
    res = ray_engine.run_predict_ray(_opts(inputs, tmp_path / "ray.jsonl", tiny_model_dir), num_workers=2,
                                     settings=settings)

    assert res.workers == 2 and res.device == "cpu"
    assert res.clauses == local.clauses > 500
    _assert_same_rows(local.rows, res.rows)
    assert any(r["doc_id"].endswith("-2") for r in res.rows)  # the same-named copy, renamed as locally
    assert res.files_read == local.files_read
    assert [(s.path, s.reason, s.failed) for s in res.skipped] == [(s.path, s.reason, s.failed) for s in local.skipped]
    assert res.exit_code == local.exit_code == 1
    assert (tmp_path / "ray.summary.csv").read_bytes() == (tmp_path / "local.summary.csv").read_bytes()
    written = [json.loads(x) for x in (tmp_path / "ray.jsonl").read_text(encoding="utf-8").splitlines()]
    _assert_same_rows(local.rows, written)


def test_ray_cli_joins_cluster_by_address_and_writes_parquet_shards(ray_cluster, tiny_model_dir, tmp_path):
    """A separate process joins with --address, reads on the driver, ships the model (no shared storage)."""
    pq = pytest.importorskip("pyarrow.parquet")
    local = batch.run_predict(_opts(SEEDS, tmp_path / "local.csv", tiny_model_dir))
    out = tmp_path / "shards"
    env = {**os.environ, "POLICYTAG_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "policytag", "predict", *map(str, SEEDS), "-m", str(tiny_model_dir), "-o", str(out),
           "--engine", "ray", "--address", ray_cluster, "--num-workers", "2", "--format", "parquet", "-q",
           "--batch-size", "8", "--set", "ray.shared_storage=false", "--set", "ray.shard_rows=200",
           "--set", "ray.chunk_clauses=64"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 worker(s) on cpu" in proc.stderr

    manifest = json.loads((out / "_manifest.json").read_text(encoding="utf-8"))
    assert manifest["rows"] == local.clauses and manifest["shards"][0] == "part-00000.parquet"
    assert len(manifest["shards"]) == -(-local.clauses // 200)
    rows = [r for name in manifest["shards"] for r in pq.read_table(out / name).to_pylist()]
    _assert_same_rows(local.rows, rows)
    assert pq.read_table(out).num_rows == local.clauses  # the directory reads as one table (_files skipped)
    with open(out / "_summary.csv", encoding="utf-8-sig") as a, open(tmp_path / "local.summary.csv", encoding="utf-8-sig") as b:
        assert list(csv.reader(a)) == list(csv.reader(b))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".shards.")]  # no temporary directory left


def test_ray_worker_that_cannot_load_the_model_stops_the_job_with_the_reason(ray_cluster, tiny_model_dir, tmp_path):
    from policytag.errors import PolicytagError

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").unlink()  # policytag.json still reads: only a worker finds out
    with pytest.raises(PolicytagError, match="model.safetensors is missing"):
        ray_engine.run_predict_ray(_opts(SEEDS[:1], tmp_path / "x.jsonl", broken), num_workers=1)
    assert not (tmp_path / "x.jsonl").exists()


def test_torchrun_two_process_cpu_ddp_same_model_dir_format(tiny_model_dir, tmp_path, tmp_path_factory):
    """``torchrun --nproc-per-node 2`` (gloo) trains the tiny model; the directory matches the single-process one."""
    if shutil.which("torchrun") is None and importlib.util.find_spec("torch.distributed.run") is None:
        pytest.skip("torchrun not available")
    home = tmp_path / "home"
    # Robust on a loaded machine (it once died with SIGABRT there; not reproduced since): one
    # thread per process for every pool (OpenMP, MKL, OpenBLAS, the tokenizers' Rayon pool),
    # explicit generous timeouts (process group: training.ddp_timeout; rendezvous join), and
    # `train` leaves through distributed.shutdown() (barrier + destroy_process_group) so the
    # ranks exit together. No retries: a failure is reported as it is, with a Python traceback
    # of every thread (PYTHONFAULTHANDLER) if a rank aborts again.
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS")}
    env = {**os.environ, "POLICYTAG_HOME": str(home), "PYTHONPATH": str(REPO),
           # the tiny base model cached by the session fixture
           "POLICYTAG_CACHE": str(tmp_path_factory.getbasetemp() / "shared_cache"),
           "GLOO_SOCKET_IFNAME": "lo", "TOKENIZERS_PARALLELISM": "false", "PYTHONFAULTHANDLER": "1", **threads}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--max-restarts", "0",
           "--rdzv-conf", "join_timeout=900", "-m", "policytag", "train", "--config", "tiny",
           "--data", str(FIXTURES / "mini_gold.jsonl"), "-q", "--set", "training.ddp_timeout=1800"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    runs = list((home / "runs").iterdir())
    assert len(runs) == 1, runs  # no -o: both ranks agreed on rank 0's time-stamped directory
    ddp_dir = runs[0]
    assert proc.stdout.count("written to") == 1  # rank 0 prints, rank 1 is quiet

    def listing(d):
        return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())

    assert listing(ddp_dir) == listing(tiny_model_dir)
    single = json.loads((tiny_model_dir / "policytag.json").read_text(encoding="utf-8"))
    ddp = json.loads((ddp_dir / "policytag.json").read_text(encoding="utf-8"))
    assert set(ddp) == set(single)
    assert set(ddp["training"]) == set(single["training"])
    assert ddp["training"]["world_size"] == 2 and single["training"].get("world_size", 1) == 1
    assert ddp["label_ids"] == single["label_ids"] and set(ddp["thresholds"]) == set(single["thresholds"])

    from policytag.modeling.classifier import PolicyClassifier

    model = PolicyClassifier.from_pretrained(ddp_dir)
    assert model.predict_proba(["加强青少年科普教育。"]).shape == (1, len(single["label_ids"]))
