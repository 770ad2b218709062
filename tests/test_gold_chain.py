"""The gold file is reproduced by its chain: sources + segmenter + decisions + resolutions."""

import json

from policytag import paths
from policytag.clause import read_jsonl
from policytag.data.gold import build_gold, read_decisions
from policytag.data.taxonomy import load_taxonomy


def test_chain_reproduces_the_shipped_gold_file():
    res = build_gold()
    assert not res.orphans, res.orphans[:5]
    assert not res.undecided, res.undecided[:5]
    built = [json.dumps(c.to_dict(), ensure_ascii=False, sort_keys=True) for c in res.clauses]
    shipped = [json.dumps(r, ensure_ascii=False, sort_keys=True) for _, r in read_jsonl(paths.GOLD_FILE)]
    assert len(built) == len(shipped)
    assert built == shipped, "run `policytag labels build` after changing sources, segmenter or decisions"


def test_every_gold_clause_carries_document_metadata():
    for _, r in read_jsonl(paths.GOLD_FILE):
        assert r.get("doc_title") and r.get("genre") and r.get("level"), r["clause_id"]


def test_decisions_reject_unknown_codes(tmp_path):
    import pytest

    from policytag.errors import PolicytagError

    f = tmp_path / "d.tsv"
    f.write_text("doc/p1#1\tY\tXX\t# bad measure\n", encoding="utf-8")
    with pytest.raises(PolicytagError, match="XX"):
        read_decisions(f, load_taxonomy())
    f.write_text("doc/p1#1\tY F\tGP,AC\n", encoding="utf-8")
    d = read_decisions(f, load_taxonomy())["doc/p1#1"]
    assert d.themes == ["youth", "farmers"] and d.measures == ["goal_planning", "activities"]


def test_remap_follows_text_not_position():
    """A segmenter that now drops a junk paragraph must not shift labels onto the next clause."""
    from policytag.clause import Clause
    from policytag.data.gold import Decision, remap_document

    snap = [Clause(doc_id="d", clause_id="d/p1#1", text="由会员分享，可在线阅读。"),
            Clause(doc_id="d", clause_id="d/p2#1", text="开展老年人防诈骗宣传。"),
            Clause(doc_id="d", clause_id="d/p3#1", text="建设科普基地。")]
    dec = {"d/p1#1": Decision("d/p1#1", [], []), "d/p2#1": Decision("d/p2#1", ["elderly"], ["activities"]),
           "d/p3#1": Decision("d/p3#1", ["infrastructure"], ["facility_building"])}
    now = [Clause(doc_id="d", clause_id="d/p1#1", text="开展老年人防诈骗宣传。"),
           Clause(doc_id="d", clause_id="d/p2#1", text="建设科普基地 。"),
           Clause(doc_id="d", clause_id="d/p3#1", text="新句子。")]
    r = remap_document(snap, dec, now)
    got = {d.clause_id: (d.themes, d.measures) for d in r.decisions}
    assert got == {"d/p1#1": (["elderly"], ["activities"]), "d/p2#1": (["infrastructure"], ["facility_building"])}
    assert r.dropped == ["d/p1#1"] and r.new == ["d/p3#1"] and r.moved == 2
