"""The DDP teardown fix without torchrun: shutdown() is a barrier then destroy_process_group."""

from __future__ import annotations

from policytag.training import distributed


def test_shutdown_waits_for_every_rank_then_destroys_the_group(monkeypatch):
    import torch.distributed as dist

    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "barrier", lambda *a, **k: calls.append("barrier"))
    monkeypatch.setattr(dist, "destroy_process_group", lambda *a, **k: calls.append("destroy"))
    distributed.shutdown()
    assert calls == ["barrier", "destroy"]


def test_shutdown_is_a_no_op_in_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    distributed.shutdown()


def test_the_process_group_gets_the_configured_timeout(monkeypatch):
    import datetime

    import accelerate
    import torch.distributed as dist

    seen = {}
    monkeypatch.setattr(dist, "is_initialized", lambda: bool(seen))
    monkeypatch.setattr(accelerate, "PartialState", lambda **kw: seen.update(kw))
    monkeypatch.setattr(distributed, "DDP_TIMEOUT_S", 1800)
    distributed.set_timeout(2400)
    assert distributed._ensure_process_group()
    assert seen["timeout"] == datetime.timedelta(seconds=2400)
