"""The multi-agent WDTN environment (docs/model.md, section 7; docs/env.md).

``parallel_env(scenario=..., seed=..., slots=...)`` is the PettingZoo ``ParallelEnv`` and ``env(...)``
its AEC form; :class:`TeamEnv` is the whole team as one Gymnasium agent (for Stable-Baselines3);
:class:`BatchedWdtnEnv` steps many environments at once for training, with the same step
function. Neither imports torch.
"""
from .batched import BatchedWdtnEnv, BatchObs, episode_seed
from .core import WEIGHT_FLOOR, obs_dims
from .parallel import WdtnParallelEnv, agent_names, env, parallel_env
from .team import TeamEnv

__all__ = ["BatchedWdtnEnv", "BatchObs", "TeamEnv", "WEIGHT_FLOOR", "WdtnParallelEnv", "agent_names", "env", "episode_seed",
           "obs_dims", "parallel_env"]
