"""Declared evaluators (jaxdd.evaluators): what a config declares, the objective's protocol,
the schedule the loop asks about, and the protocol stored with a saved set."""
import ml_collections
import pytest

from jaxdd import config as C
from jaxdd import evaluators


def _tm():
    return C.tm_config("pixel", "digits,iterations=7")


def test_default_is_the_objectives_protocol_plus_random_real():
    cfg = _tm()
    cfg.eval.every, cfg.eval.random_real_baseline = 3, True
    evs = evaluators.from_config(cfg)
    assert [(e.name, e.protocol, e.main) for e in evs] == [
        ("main", "hard_label", "hard_label"), ("random_real", "random_real", "hard_label")]
    main, rr = evs
    assert [s for s in range(8) if main.due(s, 7)] == [0, 3, 6]  # not at the end (final)
    assert not any(rr.due(s, 7) for s in range(8)) and rr.final
    cfm = C.cfm_config("pixel", "digits,ipc=2,recover_iterations=3")
    assert evaluators.from_config(cfm)[0].protocol == "soft_label"


def test_declared_evals_block():
    cfg = _tm()
    cfg.evals = ml_collections.ConfigDict({
        "main": {"every": 2, "num_nets": 3},
        "xarch": {"protocol": "cross_arch", "models": ["ConvNetD1W4"], "epochs": 5},
        "random_real": {"num_nets": 2}})
    evs = evaluators.from_config(cfg)
    assert [e.name for e in evs] == ["main", "random_real", "xarch"]
    main, rr, xa = evs
    assert (main.every, main.num_nets, main.protocol) == (2, 3, "hard_label")
    assert (rr.protocol, rr.num_nets, rr.every) == ("random_real", 2, 0)
    assert (xa.protocol, xa.models, xa.epochs, xa.every) == ("cross_arch", ("ConvNetD1W4",), 5, 0)
    bad = _tm()
    bad.evals = ml_collections.ConfigDict({"x": {"protocol": "nope"}})
    with pytest.raises(ValueError, match="evals.x.protocol"):
        evaluators.from_config(bad)
    bad.evals = ml_collections.ConfigDict({"x": {"protocol": "cross_arch"}})
    with pytest.raises(ValueError, match="needs `models`"):
        evaluators.from_config(bad)


def test_stored_protocol_and_missing_teacher():
    assert evaluators.stored_protocol({"evaluation": {"protocol": "soft_label"}}) == "soft_label"
    assert evaluators.stored_protocol({"objective": "cfm"}) == "soft_label"  # older CFM sets
    assert evaluators.stored_protocol({"objective": "tm"}) == "hard_label"
    with pytest.raises(ValueError, match="names no teacher"):
        evaluators.load_teacher({"evaluation": {"protocol": "soft_label"}}, 10)
    with pytest.raises(FileNotFoundError, match="is missing"):
        evaluators.load_teacher({"evaluation": {"teacher": {"path": "/nonexistent/t.msgpack",
                                                            "name": "ConvNetD1W4"}}}, 10)


def test_overlapped_random_real_baseline_is_the_sequential_one(tmp_path):
    """The random-real baseline scored in a thread beside the distillation
    (eval.overlap_baseline, the default) gives exactly the result of scoring it at the end."""
    import os
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tinyrun import tiny_config, write_npz

    from jaxdd import distill
    npz = write_npz(tmp_path / "d.npz")
    results = {}
    for overlap in (True, False):
        cfg = tiny_config(npz, buffer_dir=str(tmp_path / "buf"), eval__final=True,
                          eval__random_real_baseline=True, eval__overlap_baseline=overlap,
                          eval__num_nets=2, eval__final_nets=2, eval__epochs=3,
                          opt__lr__min_syn_lr=1e-3)
        results[overlap] = distill.run(cfg, str(tmp_path / f"w{overlap}"), progress=False)
    a, b = results[True]["random_real"], results[False]["random_real"]
    assert a["accs"] == b["accs"] and len(a["accs"]) == 2
    assert results[True]["final_eval"]["accs"] == results[False]["final_eval"]["accs"]
