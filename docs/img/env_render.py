"""Draw docs/img/env_render.png: slot 20 of trace seed 3 at the default scenario, the controller
following each MU's serving BS, random MU powers and BS weights (seeded).

    .venv/bin/python docs/img/env_render.py
"""
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from wdtnopt import Scenario  # noqa: E402
from wdtnopt.env import parallel_env  # noqa: E402

env = parallel_env(scenario=Scenario.paper(), seed=0, slots=40, render_mode="rgb_array")
env.reset(seed=3)
rng = np.random.default_rng(0)
for k, a in enumerate(env.possible_agents):
    env.action_space(a).seed(k)
for _ in range(21):
    acts = {a: env.action_space(a).sample() for a in env.agents}
    acts.update({f"mu_{i}": np.array([rng.uniform(0.002, 0.2)], np.float32) for i in range(30)})
    acts["controller"] = env.trace.assoc[env.sim.t]      # follow the serving BS (moves the mask allows)
    env.step(acts)
plt.imsave(Path(__file__).with_name("env_render.png"), env.render())
