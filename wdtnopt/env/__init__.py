"""The multi-agent WDTN environment (MODEL.md section 7; docs/env.md).

``parallel_env(scenario=..., seed=..., slots=...)`` is the PettingZoo ``ParallelEnv``;
:class:`BatchedWdtnEnv` steps many environments at once for training, with the same step
function. Neither imports torch.
"""
from .batched import BatchedWdtnEnv, BatchObs, episode_seed
from .core import WEIGHT_FLOOR, obs_dims
from .parallel import WdtnParallelEnv, agent_names, parallel_env

__all__ = ["BatchedWdtnEnv", "BatchObs", "WEIGHT_FLOOR", "WdtnParallelEnv", "agent_names", "episode_seed",
           "obs_dims", "parallel_env"]
