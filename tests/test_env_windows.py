"""The environment's features on windowed traces: the same values bit for bit as on the whole trace,
one window of them in memory at a time."""
import tracemalloc

import numpy as np
import pytest

import wdtnopt.trace as trace_mod
from wdtnopt import Scenario, generate_trace
from wdtnopt.env import core
from wdtnopt.env.batched import BatchedWdtnEnv
from wdtnopt.env.features import SLOT_FEATURES, TRACE_SLOT_FIELDS, FeatureStack, window_features
from wdtnopt.simulation import SimState
from wdtnopt.trace import WindowedTrace, windowed_memory_bytes

from test_trace_windows import SCENARIOS   # paper, failures, THz/RIS, semantic menu


def _reference_features(tr):
    """The whole-trace features written out from docs/model.md, sections 3 and 12 (the
    precomputation as it was before windowing), on the whole trace's arrays."""
    sc = tr.scenario
    g = tr.gain[np.arange(tr.slots)[:, None], np.arange(tr.n_mus)[None, :], tr.assoc]
    snr = tr.p_max * g / (tr.noise_psd * tr.bandwidth)
    return {
        "t_min": tr.data_bits / (tr.bandwidth * np.log2(1.0 + snr)),
        "log_snr": np.log10(1.0 + snr) / 5.0, "log10_snr_pmax": np.log10(snr),
        "bits_ln2_over_b": tr.data_bits * np.log(2.0) / tr.bandwidth,
        "spectral": tr.data_bits / (tr.bandwidth * tr.deadline) / 10.0,
        "noise_rise": np.log10(tr.noise_psd / sc.noise_psd_w_hz) / 3.0,
        "relay": tr.backhaul_latency_s[tr.assoc] + tr.data_bits[:, :, None] * tr.backhaul_s_per_bit[tr.assoc],
        "cycles": tr.cycles_per_bit * tr.data_bits,
        "cpu_hz": np.stack([tr.cpu_available_hz(t) for t in range(tr.slots)]),
        "server_up": tr.server_up if tr.server_up is not None else np.ones((tr.slots, tr.n_bss), bool),
    }


@pytest.mark.parametrize("options", SCENARIOS.values(), ids=SCENARIOS.keys())
@pytest.mark.parametrize("seed", [0, 7])
def test_windowed_features_equal_the_whole_trace_ones_bit_for_bit(options, seed):
    sc = Scenario.paper(n_mus=9, n_bss=4, **options)
    whole = generate_trace(sc, seed=seed, slots=13)
    ref = _reference_features(whole)
    a = core.Features(whole)
    for name in SLOT_FEATURES:
        assert np.asarray(getattr(a, name)).tobytes() == np.asarray(ref[name]).tobytes(), name
    for w in (1, 4, 12):
        win = generate_trace(sc, seed=seed, slots=13, window_slots=w)
        assert isinstance(win, WindowedTrace)
        b = core.Features(win)
        seen = 0
        for t in list(range(13)) + [12, 0, 5]:      # in order, then back (restarts the generator)
            start, stop, arrays = b.window(t)
            assert start <= t < stop and stop - start <= w and start % w == 0
            for name in SLOT_FEATURES:
                assert np.asarray(arrays[name]).tobytes() == np.asarray(ref[name][start:stop]).tobytes(), (name, w, t)
            for name in TRACE_SLOT_FIELDS:
                assert arrays[name].tobytes() == getattr(whole, name)[start:stop].tobytes(), (name, w, t)
            seen = max(seen, stop)
        assert seen == 13
        # the whole [T, ...] attributes of a windowed trace: built window by window, same bits
        assert b.relay.tobytes() == ref["relay"].tobytes() and b.t_min.tobytes() == ref["t_min"].tobytes()
    # the window of a whole trace is the whole trace, as views of its arrays
    start, stop, arrays = a.window(5)
    assert (start, stop) == (0, 13) and np.shares_memory(arrays["gain"], whole.gain)
    assert window_features(whole, whole.window_at(3))["relay"].tobytes() == ref["relay"].tobytes()


def _random_actions(rng, n, m, p_max, levels):
    level = rng.integers(0, levels, n) if levels else None
    return rng.uniform(0, p_max, n), rng.uniform(0, 1, (m, n)), rng.integers(0, m, n), level


@pytest.mark.parametrize("options", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_an_episode_on_a_windowed_trace_equals_the_whole_one(options):
    sc = Scenario.paper(n_mus=7, n_bss=3, frame_slots=4, **options)
    whole = generate_trace(sc, seed=2, slots=19)
    win = generate_trace(sc, seed=2, slots=19, window_slots=5)
    runs = []
    for tr in (whole, win):
        rng = np.random.default_rng(9)
        feat, st = core.Features(tr), SimState(tr)
        out = []
        while True:
            o = core.observe(feat, st)
            out.append((o.mu.tobytes(), o.bs.tobytes(), o.controller.tobytes(), o.state.tobytes(),
                        o.ctrl_mask.tobytes()))
            assert feat.stop - feat.start <= (5 if tr is win else 19)   # one window in memory
            if st.done:
                break
            p, w, h, lv = _random_actions(rng, sc.n_mus, sc.n_bss, sc.p_max_w, sc.semantic_levels)
            res = core.step(st, p, w, h, lv)
            out.append((res.reward, res.evaluation.energy.tobytes(), res.migrations))
        runs.append(out)
    assert len(runs[0]) == 2 * 19 + 1 and runs[0] == runs[1]


def test_a_stack_of_windowed_environments_out_of_step_equals_single_stacks():
    sc = Scenario.paper(n_mus=6, n_bss=3, **SCENARIOS["failures"])
    traces = [generate_trace(sc, seed=s, slots=11, window_slots=w) for s, w in ((1, 3), (2, 4), (3, None))]
    stack = FeatureStack(3)
    for e, tr in enumerate(traces):
        stack.load(e, core.Features(tr))
    singles = [FeatureStack.single(core.Features(generate_trace(sc, seed=s, slots=11))) for s in (1, 2, 3)]
    kept = []
    for t in ([0, 0, 0], [1, 5, 10], [4, 4, 4], [10, 2, 0], [6, 9, 3], [2, 2, 2], [10, 10, 10]):
        f = stack.at(np.array(t))
        kept.append((t, {k: np.array(getattr(f, k)) for k in FeatureStack.PER_SLOT}, f))
        for e in range(3):
            ref = singles[e].at(np.array([t[e]]))
            for k in FeatureStack.PER_SLOT + FeatureStack.PER_TRACE:
                assert np.asarray(getattr(f, k))[e].tobytes() == np.asarray(getattr(ref, k))[0].tobytes(), (t, e, k)
    # what at() returned earlier kept its values while later windows were loaded
    for t, copies, f in kept:
        for k in FeatureStack.PER_SLOT:
            assert np.array_equal(getattr(f, k), copies[k]), (t, k)


def test_batched_environments_on_windowed_traces_equal_whole_ones(monkeypatch):
    sc = Scenario.paper(n_mus=5, n_bss=3, frame_slots=3, **SCENARIOS["failures"])
    runs = []
    for windowed in (False, True):
        if windowed:   # every trace windowed, 2 slots a window (the last window of 7 slots is shorter)
            monkeypatch.setattr(trace_mod, "WHOLE_TRACE_MAX_BYTES", 1)
            monkeypatch.setattr(trace_mod, "WINDOW_BYTES", windowed_memory_bytes(5, 3, 7, 2))
        env = BatchedWdtnEnv(sc, n_envs=2, seed=4, slots=7)
        obs = env.reset()
        assert isinstance(env.sims[0].trace, WindowedTrace) == windowed
        rng = np.random.default_rng(1)
        out = [obs.state.tobytes()]
        for _ in range(16):   # two episodes and a bit: automatic resets load slot 0's window again
            p = rng.uniform(0, sc.p_max_w, (2, 5))
            obs, rew, done, info = env.step(p, rng.uniform(0, 1, (2, 3, 5)), rng.integers(0, 3, (2, 5)))
            out.append((obs.mu.tobytes(), obs.state.tobytes(), obs.ctrl_mask.tobytes(), rew.tobytes(),
                        done.tobytes(), info["final_state"].tobytes(), info["energy_j"].tobytes()))
        if windowed:
            assert (env.stack.stop - env.stack.start <= 2).all()
        runs.append(out)
    assert runs[0] == runs[1]


def test_an_episode_holds_one_window_of_features():
    # N = 200, M = 20, 120 slots: the whole [T, N, M] relay times alone take 3.84 MB, the trace's gains as much
    sc = Scenario.paper(n_mus=200, n_bss=20)
    win = generate_trace(sc, seed=0, slots=120, window_slots=6)
    whole_relay = 120 * 200 * 20 * 8
    st = SimState(win)
    tracemalloc.start()
    try:
        feat = core.Features(win)
        for t in range(win.slots):
            st.t = t
            core.observe(feat, st)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one window of trace and features (6 of 120 slots) and one slot's observation work, not the whole relay
    assert peak < whole_relay / 2, peak


def test_a_learned_policy_on_a_windowed_trace_equals_the_whole_one():
    pytest.importorskip("torch")
    from wdtnopt import simulate
    from wdtnopt.policies import make_policy

    sc = Scenario.paper(n_mus=30, n_bss=5)   # the shipped agents' scenario
    whole = generate_trace(sc, seed=8, slots=12)
    win = generate_trace(sc, seed=8, slots=12, window_slots=5)
    pol = make_policy("pretrained:maddpg")    # loaded once (seconds), reset per run
    a, b = simulate(pol, whole), simulate(pol, win)
    for c in a.table:
        assert a.table[c].tobytes() == b.table[c].tobytes(), c
    assert a.placement.tobytes() == b.placement.tobytes()
