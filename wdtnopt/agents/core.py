"""The small shared core of the learned agents: networks, action heads, GAE, value normalization,
the per-agent Adam and the on-policy rollout buffer (docs/agents.md).

Layout conventions. Agents of one type (``mu``, ``bs``, ``controller``) are a *group* of A agents.
Per-agent parameters are stacked, ``W[A, in, out]``, and a group runs as one ``torch.baddbmm`` on
``x[A, B, in]``; there is no Python loop over networks. Continuous actions live in the normalized
box ``[0, 1]^D`` (MU power = ``p_max * power_fraction(u)``, BS weights = ``u``); the controller's
action is one host index per DT (``D = N`` categoricals over M servers, masked).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..env import BatchObs
from ..env.core import obs_dims
from ..scenario import Scenario

BETA_EPS = 1e-6
"""Beta samples are clamped to [BETA_EPS, 1 - BETA_EPS] before their log-probability."""
TYPES = ("mu", "bs", "controller")
LEVEL = "mu_level"
"""The MUs' semantic-level head: an extra actor group (one masked categorical per MU) that exists only
when the scenario has a menu of more than one level (:attr:`EnvSpec.n_levels`); a MU's action is
then (power, level) and its log-probability the sum of the two heads' (docs/agents.md)."""



# -- environment description ------------------------------------------------------------------
@dataclass(frozen=True)
class EnvSpec:
    """Agent groups of a scenario: count, observation size, action dims (and choices) per type."""

    n_mus: int
    n_bss: int
    p_max: float
    power_decades: float = 0.0
    """MU power map (``raw``): ``p = p_max * power_fraction(u, power_decades)`` (0: linear, ``p = u p_max``)"""
    action_map: str = "raw"
    """``raw``: the MU's action is its power (above); ``structured``: a one-sided residual above the
    least deadline-meeting power at the announced CPU share, ``power / p_need = 1 + residual_max u``,
    with the environment's give-up gate (docs/env.md, "Within-slot protocol")"""
    residual_max: float = 1.0
    """largest residual of the structured map (u = 1 transmits (1 + residual_max) p_need)"""
    server_status: bool = False
    """observations carry the server-status features (a scenario whose servers fail; docs/env.md)"""
    n_levels: int = 0
    """levels L of the scenario's semantic menu when L > 1 (the MUs then choose a level); 0 otherwise"""
    level_allowed: tuple[tuple[bool, ...], ...] | None = None
    """[N][L] the levels on each MU's menu (accuracy >= its minimum accuracy), with ``n_levels``"""
    bs_map: str = "raw"
    """``raw``: a BS's action is its CPU weights; ``kkt`` (structured MU map only): a tilt
    ``exp(bs_tilt (2u - 1))`` of the energy-optimal CPU split among the DTs it serves (u = 0.5: the
    KKT split itself; docs/env.md, "Within-slot protocol")"""
    bs_tilt: float = 1.0
    """largest log-multiplier of the ``kkt`` BS map"""
    bs_fixed: bool = False
    """the BSs act at ``u = 0.5`` (with the ``kkt`` map: the untilted energy-optimal split) in rollouts
    and evaluation and are not learners: their entries count as not taken (log-probability 0, ratio 1),
    and no update touches them (docs/agents.md, "Why the BSs do not learn by default")"""

    @property
    def mu_action(self) -> str:
        """The environment's MU action convention for this map (``BatchedWdtnEnv(mu_action=...)``)."""
        return "power_over_need" if self.action_map == "structured" else "power"

    @property
    def bs_action(self) -> str:
        """The environment's BS action convention for this map (``BatchedWdtnEnv(bs_action=...)``)."""
        return "tilt_over_kkt" if self.bs_map == "kkt" and self.action_map == "structured" else "weights"

    @classmethod
    def from_scenario(cls, sc: Scenario) -> "EnvSpec":
        if sc.semantic_levels > 1:   # a menu to choose from: the MUs get a level head
            from ..processes.semantic import scenario_menu
            menu = scenario_menu(sc)
            allowed = menu["level_accuracy"] >= menu["min_accuracy"][:, None]
            return cls(sc.n_mus, sc.n_bss, sc.p_max_w, server_status=sc.server_failures,
                       n_levels=int(sc.semantic_levels),
                       level_allowed=tuple(tuple(bool(v) for v in row) for row in allowed))
        return cls(sc.n_mus, sc.n_bss, sc.p_max_w, server_status=sc.server_failures)

    @property
    def has_levels(self) -> bool:
        """The MUs choose a semantic level (a menu of more than one level)."""
        return self.n_levels > 1

    def level_mask(self) -> torch.Tensor:
        """[N, 1, L] bool: the levels each MU may choose (group-major, broadcast over the batch)."""
        return torch.tensor(self.level_allowed, dtype=torch.bool)[:, None, :]

    @property
    def dims(self) -> dict[str, int]:
        return obs_dims(self.n_mus, self.n_bss, self.server_status)

    def group(self, kind: str) -> tuple[int, int, int]:
        """(agents A, observation size, action dims D) of a type."""
        d = self.dims
        return {"mu": (self.n_mus, d["mu"], 1), "bs": (self.n_bss, d["bs"], self.n_mus),
                "controller": (1, d["controller"], self.n_mus), LEVEL: (self.n_mus, d["mu"], 1)}[kind]

    @property
    def joint_action_dim(self) -> int:
        """Size of the joint action as a critic input (controller one-hot; level one-hots with a menu)."""
        levels = self.n_mus * self.n_levels if self.has_levels else 0
        return self.n_mus + self.n_bss * self.n_mus + self.n_mus * self.n_bss + levels


def configured_spec(spec: EnvSpec, cfg: Any) -> EnvSpec:
    """``spec`` with a config's action maps; the BSs are fixed at the untilted KKT split
    (:attr:`EnvSpec.bs_fixed`) under the structured MU map, the "kkt" BS map and ``bs_learn=False``."""
    fixed = cfg.action_map == "structured" and cfg.bs_map == "kkt" and not cfg.bs_learn
    return dataclasses.replace(spec, power_decades=cfg.power_decades, action_map=cfg.action_map,
                               residual_max=cfg.residual_max, bs_map=cfg.bs_map, bs_tilt=cfg.bs_tilt,
                               bs_fixed=fixed)


def group_obs(obs: BatchObs) -> dict[str, np.ndarray]:
    """Observations per type as [E, A, d]."""
    return {"mu": obs.mu, "bs": obs.bs, "controller": obs.controller[:, None, :]}


def power_fraction(u: np.ndarray, decades: float) -> np.ndarray:
    """The MU's normalized action ``u`` in [0, 1] -> power / p_max in [0, 1], strictly increasing.

    ``decades = 0``: the identity. Otherwise ``(10^(decades u) - 1) / (10^decades - 1)``: 0 -> 0, 1 -> 1,
    and in between log-uniform over about ``decades`` decades below p_max (u = 0.5 is p_max / 10^(decades/2)).
    A fixed monotone map applied after sampling: the policy is a distribution over ``u`` and its
    log-probabilities (hence PPO ratios) are those of ``u``; ratios of densities are the same in
    ``u`` and in power (the Jacobian cancels), so the update is exact for the power action too.
    """
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    if decades <= 0:
        return u
    k = decades * math.log(10.0)
    return np.clip(np.expm1(k * u) / math.expm1(k), 0.0, 1.0)


def to_env(actions: dict[str, np.ndarray], spec: "EnvSpec") -> tuple[np.ndarray, ...]:
    """Normalized group actions [E, A, D] -> (MU actions [E, N], weights [E, M, N], hosts [E, N]),
    and the MUs' levels [E, N] as a fourth entry when the actions have a level (``LEVEL``).

    MU actions are powers (W) for ``action_map="raw"`` and multiples of the least deadline-meeting
    power, ``1 + residual_max u``, for ``"structured"`` (the environment's ``spec.mu_action``).
    BS actions are CPU weights ``u`` (``bs_map="raw"``) or KKT tilts ``exp(bs_tilt (2u - 1))``
    (``"kkt"``, the environment's ``spec.bs_action``)."""
    u = actions["mu"][:, :, 0]
    if spec.action_map == "structured":
        mu = 1.0 + spec.residual_max * np.clip(np.asarray(u, np.float64), 0.0, 1.0)
    else:
        mu = power_fraction(u, spec.power_decades) * spec.p_max
    w = np.clip(np.asarray(actions["bs"], np.float64), 0.0, 1.0)
    if spec.bs_action == "tilt_over_kkt":
        w = np.exp(spec.bs_tilt * (2.0 * w - 1.0))
    out = (mu, w, actions["controller"][:, 0, :].astype(np.int64))
    if LEVEL in actions:
        return (*out, actions[LEVEL][:, :, 0].astype(np.int64))
    return out


# -- networks -----------------------------------------------------------------------------------
def _orthogonal(shape_in: int, shape_out: int, gain: float) -> torch.Tensor:
    w = torch.empty(shape_out, shape_in)
    nn.init.orthogonal_(w, gain)
    return w.T.contiguous()


class StackedMLP(nn.Module):
    """A separate tanh MLP per agent, stored as stacked weights and run as one batched matmul."""

    def __init__(self, n_agents: int, in_dim: int, out_dim: int, hidden: int = 64, layers: int = 2,
                 out_gain: float = 0.01):
        super().__init__()
        sizes = [in_dim] + [hidden] * layers + [out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            gain = out_gain if k == len(sizes) - 2 else math.sqrt(2.0)
            self.weights.append(nn.Parameter(torch.stack([_orthogonal(a, b, gain) for _ in range(n_agents)])))
            self.biases.append(nn.Parameter(torch.zeros(n_agents, 1, b)))
        self.n_agents = n_agents
        # (weight, bias) of the hidden layers and of the output layer as plain tuples: iterating a
        # ParameterList costs more than a small layer's matmul. The Parameters are never replaced
        # (optimizers and load_state_dict update them in place; deepcopy maps the tuple too).
        pairs = tuple(zip(self.weights, self.biases))
        self._hidden, self._out = pairs[:-1], pairs[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [A, B, in] -> [A, B, out]."""
        for w, b in self._hidden:
            x = torch.baddbmm(b, x, w).tanh_()   # in place: baddbmm's backward does not need its output
        w, b = self._out
        return torch.baddbmm(b, x, w)

    def forward_one(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Agent ``i`` alone: x [B, in] -> [B, out] (gradients reach only slice i; for parameters
        that a :class:`StackedAdam` steps, they land in its per-agent slices, see :func:`_agent_slice`)."""
        for w, b in self._hidden:
            x = torch.addmm(_agent_slice(b, i), x, _agent_slice(w, i)).tanh_()
        w, b = self._out
        return torch.addmm(_agent_slice(b, i), x, _agent_slice(w, i))

    def as_modules(self) -> list[nn.Sequential]:
        """Equivalent per-agent ``nn.Sequential`` modules (the slow reference, for tests and benchmarks)."""
        mods = []
        for i in range(self.n_agents):
            layers: list[nn.Module] = []
            for k, (w, b) in enumerate(zip(self.weights, self.biases)):
                lin = nn.Linear(w.shape[1], w.shape[2])
                with torch.no_grad():
                    lin.weight.copy_(w[i].T)
                    lin.bias.copy_(b[i, 0])
                layers.append(lin)
                if k < len(self.weights) - 1:
                    layers.append(nn.Tanh())
            mods.append(nn.Sequential(*layers))
        return mods


def _agent_slice(p: torch.Tensor, i: int) -> torch.Tensor:
    """``p[i]``; under autograd, for a stacked parameter that a :class:`StackedAdam` steps, a leaf
    view of that slice (the same values and memory), kept per agent, whose ``.grad`` the optimizer
    reads. The gradient of ``p[i]`` itself would be a zero tensor of the whole stack with slice i
    filled in (allocated and cleared at every backward, A times larger than the slice); the leaf gets
    the same slice gradient, bit for bit, without it."""
    rows = getattr(p, "_agent_rows", None)
    if rows is None or not torch.is_grad_enabled() or not p.requires_grad:
        return p[i]
    leaf = rows.get(i)
    if leaf is None or leaf.data_ptr() != p.data_ptr() + i * p.stride(0) * p.element_size():   # new or moved
        leaf = rows[i] = p.detach()[i].requires_grad_()
    return leaf


def mlp(in_dim: int, out_dim: int, hidden: int, layers: int = 2, out_gain: float = 1.0, act: type = nn.Tanh) -> nn.Sequential:
    """A plain MLP with orthogonal init (critics)."""
    sizes = [in_dim] + [hidden] * layers + [out_dim]
    mods: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        nn.init.orthogonal_(lin.weight, out_gain if k == len(sizes) - 2 else math.sqrt(2.0))
        nn.init.zeros_(lin.bias)
        mods.append(lin)
        if k < len(sizes) - 2:
            mods.append(act())
    return nn.Sequential(*mods)


class StackedBeta:
    """Independent Betas with parameters ``conc [..., 2, D]`` (alphas over betas): what
    ``torch.distributions.Beta(conc[..., 0, :], conc[..., 1, :])`` computes, with the same operations
    in the same order (so bit for bit the same values and samples), without its broadcasting,
    Dirichlet construction and argument handling per call. ``sample`` is not reparameterized.
    """

    def __init__(self, conc: torch.Tensor):
        self.conc = conc

    @property
    def concentration1(self) -> torch.Tensor:
        return self.conc[..., 0, :]

    @property
    def concentration0(self) -> torch.Tensor:
        return self.conc[..., 1, :]

    @property
    def mean(self) -> torch.Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    def sample(self) -> torch.Tensor:
        # torch's Beta samples a Dirichlet over the stacked [..., D, 2] concentration
        with torch.no_grad():
            return torch._sample_dirichlet(self.conc.transpose(-1, -2).contiguous()).select(-1, 0)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """torch's Dirichlet log-density of (value, 1 - value); sums over the pair are one addition."""
        pair = torch.stack([value, 1.0 - value], -2)
        return (torch.xlogy(self.conc - 1.0, pair).sum(-2) + torch.lgamma(self.conc.sum(-2))
                - torch.lgamma(self.conc).sum(-2))

    def entropy(self) -> torch.Tensor:
        return torch.distributions.Dirichlet(self.conc.transpose(-1, -2), validate_args=False).entropy()


# -- action heads -------------------------------------------------------------------------------
class Head:
    """An action head: how a network output becomes a distribution over actions, and back.

    One class per kind (:class:`BetaHead`, :class:`GaussianHead`, :class:`CategoricalHead`,
    :class:`DeterministicHead`); :class:`ActorGroup` holds one. ``group`` is the owning
    :class:`ActorGroup` (action dims, choices, the Gaussian's log-std parameter)."""

    name = ""

    def n_outputs(self, act_dim: int, n_choices: int) -> int:
        return act_dim

    def dist(self, group: "ActorGroup", out: torch.Tensor, mask: torch.Tensor | None, agent: int | None) -> Any:
        raise ValueError(f"a {self.name} head has no distribution")

    def sample(self, dist: Any) -> torch.Tensor:
        return dist.sample()

    def mode(self, dist: Any) -> torch.Tensor:
        return dist.mean

    def log_prob(self, dist: Any, action: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
        """Sum over the used action dims: [..., D] -> [...]."""
        return (dist.log_prob(action) * used).sum(-1)

    def entropy(self, dist: Any, used: torch.Tensor) -> torch.Tensor:
        return (dist.entropy() * used).sum(-1)


class BetaHead(Head):
    """``alpha, beta = 1 + softplus(net)`` per action dim (unimodal, bounded); samples clamped to
    ``[BETA_EPS, 1 - BETA_EPS]`` before their log-probability; deterministic action = mean."""

    name = "beta"

    def n_outputs(self, act_dim: int, n_choices: int) -> int:
        return 2 * act_dim

    def dist(self, group: "ActorGroup", out: torch.Tensor, mask: torch.Tensor | None, agent: int | None) -> "StackedBeta":
        # softplus of each half separately, as before: on a strided slice torch takes its scalar
        # path, whose last bits differ from the vectorized one on the whole tensor
        d = group.act_dim
        return StackedBeta(torch.stack([1.0 + F.softplus(out[..., :d]), 1.0 + F.softplus(out[..., d:])], -2))

    def sample(self, dist: Any) -> torch.Tensor:
        return dist.sample().clamp(BETA_EPS, 1.0 - BETA_EPS)

    def log_prob(self, dist: Any, action: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
        return (dist.log_prob(action.clamp(BETA_EPS, 1.0 - BETA_EPS)) * used).sum(-1)


class GaussianHead(Head):
    """Mean = net + 0.5 (the middle of the box), state-independent per-agent log-std (the group's
    ``log_std``); the unclipped sample is stored and scored; deterministic action = clipped mean."""

    name = "gaussian"

    def dist(self, group: "ActorGroup", out: torch.Tensor, mask: torch.Tensor | None, agent: int | None) -> Any:
        mean = out + 0.5          # the middle of the normalized box at initialization
        # validate_args=False per object (argument checks cost more than the small networks; the
        # inputs are well formed): no global torch.distributions setting is changed
        return torch.distributions.Normal(mean, group.log_std_of(agent).exp().expand_as(mean), validate_args=False)

    def mode(self, dist: Any) -> torch.Tensor:
        return dist.mean.clamp(0.0, 1.0)


class CategoricalHead(Head):
    """``D`` categoricals over ``n_choices`` with an action mask (masked logits -1e9); deterministic
    action = masked argmax."""

    name = "categorical"

    def n_outputs(self, act_dim: int, n_choices: int) -> int:
        return act_dim * n_choices

    def dist(self, group: "ActorGroup", out: torch.Tensor, mask: torch.Tensor | None, agent: int | None) -> Any:
        logits = out.reshape(*out.shape[:-1], group.act_dim, group.n_choices)
        if mask is not None:
            logits = logits.masked_fill(~mask, -1e9)
        return torch.distributions.Categorical(logits=logits, validate_args=False)

    def mode(self, dist: Any) -> torch.Tensor:
        return dist.probs.argmax(-1)


class DeterministicHead(Head):
    """MADDPG's actors: the network output itself (squashed by the algorithm); no distribution."""

    name = "deterministic"


HEADS: dict[str, type[Head]] = {h.name: h for h in (BetaHead, GaussianHead, CategoricalHead, DeterministicHead)}


class ActorGroup(nn.Module):
    """The actors of one agent type: stacked MLPs and a :class:`Head` (Beta, Gaussian, masked
    categorical or deterministic).

    ``shared=True`` (MAPPO) uses one network for the whole group with a one-hot agent id appended to
    the observation. Methods take group-major tensors: obs [A, B, d]; actions [A, B, D].
    """

    def __init__(self, n_agents: int, obs_dim: int, act_dim: int, head: str, hidden: int = 64,
                 n_choices: int = 0, shared: bool = False, init_log_std: float = math.log(0.3),
                 stay_logit: float = 0.0):
        super().__init__()
        self.stay_logit = float(stay_logit)
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}")
        self.head_impl = HEADS[head]()
        self.n_agents, self.obs_dim, self.act_dim, self.head, self.n_choices, self.shared = (
            n_agents, obs_dim, act_dim, head, n_choices, shared)
        out = self.head_impl.n_outputs(act_dim, n_choices)
        self.net = StackedMLP(1 if shared else n_agents, obs_dim + (n_agents if shared else 0), out, hidden)
        if head == "gaussian":
            self.log_std = nn.Parameter(torch.full((1 if shared else n_agents, act_dim), float(init_log_std)))

    # raw network output
    def _with_id(self, obs: torch.Tensor, agents: torch.Tensor | None = None) -> torch.Tensor:
        a, b = obs.shape[0], obs.shape[1]
        ids = torch.eye(self.n_agents, dtype=obs.dtype)[agents if agents is not None else torch.arange(a)]
        return torch.cat([obs, ids[:, None, :].expand(a, b, self.n_agents)], dim=2).reshape(1, a * b, -1)

    def _prior(self, obs: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Controller: ``stay_logit`` added to the logit of every DT's current host (a fixed prior
        towards "stay"; the network learns the residual). Other heads: unchanged."""
        if self.head != "categorical" or self.stay_logit == 0.0:
            return out
        # one strided add (no copy of the one-hot): out [..., N M] + stay_logit * host one-hot [..., N, M],
        # the one-hot being the first M of each DT's 3 M + 3 controller features (docs/env.md)
        n, m = self.act_dim, self.n_choices
        lead = obs.shape[:-1]
        onehot = obs[..., : n * (3 * m + 3)].view(*lead, n, 3 * m + 3)[..., :m]
        return out.view(*lead, n, m).add(onehot, alpha=self.stay_logit).view(*lead, n * m)

    def output(self, obs: torch.Tensor) -> torch.Tensor:
        """obs [A, B, d] -> raw output [A, B, out]."""
        if self.shared:
            a, b = obs.shape[0], obs.shape[1]
            return self._prior(obs, self.net.forward(self._with_id(obs)).reshape(a, b, -1))
        return self._prior(obs, self.net.forward(obs))   # forward, not __call__: no hooks here, less overhead

    def output_one(self, i: int, obs: torch.Tensor) -> torch.Tensor:
        """Agent i: obs [B, d] -> [B, out]."""
        if self.shared:
            return self._prior(obs, self.net(self._with_id(obs[None], torch.tensor([i])))[0])
        return self._prior(obs, self.net.forward_one(i, obs))

    def log_std_of(self, i: int | None) -> torch.Tensor:
        ls = self.log_std
        if self.shared:
            return ls[0] if i is not None else ls.expand(self.n_agents, -1)[:, None, :]
        return ls[i] if i is not None else ls[:, None, :]

    # distributions (batch shape [..., D]): delegated to the head
    def dist(self, out: torch.Tensor, mask: torch.Tensor | None = None, agent: int | None = None) -> Any:
        return self.head_impl.dist(self, out, mask, agent)

    def sample(self, dist: Any) -> torch.Tensor:
        return self.head_impl.sample(dist)

    def mode(self, dist: Any) -> torch.Tensor:
        return self.head_impl.mode(dist)

    def log_prob(self, dist: Any, action: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
        """Sum over the used action dims: [..., D] -> [...]."""
        return self.head_impl.log_prob(dist, action, used)

    def entropy(self, dist: Any, used: torch.Tensor) -> torch.Tensor:
        return self.head_impl.entropy(dist, used)


# -- optimization helpers -----------------------------------------------------------------------
class StackedAdam:
    """Adam on stacked per-agent parameters ``[A, ...]`` that steps one agent's slice at a time.

    HAPPO updates agents in sequence, so each agent needs its own moments and step count; a plain
    ``torch.optim.Adam`` on the stacked tensors would move the other agents through momentum.
    Gradients are clipped to ``max_grad_norm`` per agent.
    """

    def __init__(self, params: list[nn.Parameter], lr: float, eps: float = 1e-5, betas: tuple[float, float] = (0.9, 0.999),
                 max_grad_norm: float = 10.0):
        self.params = list(params)
        self.lr, self.eps, self.betas, self.max_grad_norm = lr, eps, betas, max_grad_norm
        n = self.params[0].shape[0]
        self.steps = torch.zeros(n, dtype=torch.long)
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        for p in self.params:   # per-agent leaf views of the slices (_agent_slice), created on first use
            if getattr(p, "_agent_rows", None) is None:
                p._agent_rows = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None
            for leaf in p._agent_rows.values():
                leaf.grad = None

    @staticmethod
    def _grad(p: torch.Tensor, i: int) -> torch.Tensor:
        """Agent i's gradient of ``p``: its leaf slice's (:func:`_agent_slice`) plus ``p.grad[i]``."""
        leaf = p._agent_rows.get(i)
        g = leaf.grad if leaf is not None else None
        if p.grad is not None:
            g = p.grad[i] if g is None else g + p.grad[i]
        return torch.zeros_like(p[i]) if g is None else g

    @torch.no_grad()
    def step(self, i: int) -> float:
        grads = [self._grad(p, i) for p in self.params]
        norm = torch.sqrt(sum((g * g).sum() for g in grads))
        scale = min(1.0, self.max_grad_norm / (float(norm) + 1e-6))
        b1, b2 = self.betas
        self.steps[i] += 1
        t = int(self.steps[i])
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        # per parameter: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr/bc1 * m / (sqrt(v / bc2) + eps),
        # as foreach ops over agent i's slices (the same elementwise operations, fewer Python calls)
        ps, ms, vs = [p[i] for p in self.params], [m[i] for m in self.m], [v[i] for v in self.v]
        gs = torch._foreach_mul(grads, scale)
        torch._foreach_mul_(ms, b1)
        torch._foreach_add_(ms, gs, alpha=1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, gs, gs, value=1 - b2)
        den = torch._foreach_div(vs, bc2)
        torch._foreach_sqrt_(den)
        torch._foreach_add_(den, self.eps)
        torch._foreach_addcdiv_(ps, ms, den, value=-self.lr / bc1)
        return float(norm)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps.clone(), "m": [x.clone() for x in self.m], "v": [x.clone() for x in self.v]}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.steps = sd["steps"].clone()
        for dst, src in zip(self.m + self.v, list(sd["m"]) + list(sd["v"])):
            if dst.shape != src.shape:
                raise ValueError(f"optimizer state shape {tuple(src.shape)} != parameter shape {tuple(dst.shape)}")
            dst.copy_(src)


class ValueNorm(nn.Module):
    """Running (debiased exponential) mean and variance of value targets, as in HARL/MAPPO."""

    def __init__(self, beta: float = 0.99999, eps: float = 1e-5):
        super().__init__()
        self.beta, self.eps = beta, eps
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("mean_sq", torch.zeros(()))
        self.register_buffer("debias", torch.zeros(()))

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.debias.clamp(min=self.eps)
        mean, mean_sq = self.mean / d, self.mean_sq / d
        return mean, (mean_sq - mean ** 2).clamp(min=1e-2)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        w = self.beta
        self.mean.mul_(w).add_(x.mean() * (1 - w))
        self.mean_sq.mul_(w).add_((x ** 2).mean() * (1 - w))
        self.debias.mul_(w).add_(1 - w)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.stats()
        return (x - mean) / var.sqrt()

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.stats()
        return x * var.sqrt() + mean


def gae(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, dones: torch.Tensor,
        gamma: float, lam: float) -> torch.Tensor:
    """Generalized advantage estimation over [T, E]; ``next_values[t]`` is V(s_{t+1}) (the terminal
    state's value at a time-limit end, which is bootstrapped), and ``dones`` cuts the lambda-chain."""
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        delta = rewards[t] + gamma * next_values[t] - values[t]
        last = delta + gamma * lam * (1.0 - dones[t]) * last
        adv[t] = last
    return adv


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float:
    if target.numel() < 2:   # one sample (one MU, one step) has no variance: nan, without torch's warning
        return float("nan")
    var = float(target.var())
    return float("nan") if var == 0 else 1.0 - float((target - pred).var()) / var


# -- on-policy rollouts -------------------------------------------------------------------------
class RolloutBuffer:
    """One iteration of on-policy data: per type [T, E, A, ...], team tensors [T, E]."""

    def __init__(self, spec: EnvSpec, steps: int, n_envs: int):
        t, e = steps, n_envs
        self.obs, self.act, self.used, self.logp = {}, {}, {}, {}
        for k in TYPES:
            a, d, da = spec.group(k)
            self.obs[k] = torch.zeros(t, e, a, d)
            self.act[k] = torch.zeros(t, e, a, da, dtype=torch.long if k == "controller" else torch.float32)
            self.used[k] = torch.ones(t, e, a, da)
            self.logp[k] = torch.zeros(t, e, a)
        self.ctrl_mask = torch.ones(t, e, 1, spec.n_mus, spec.n_bss, dtype=torch.bool)
        self.state = torch.zeros(t, e, spec.dims["state"])
        self.rewards = torch.zeros(t, e)
        self.local_rewards = {k: torch.zeros(t, e, spec.group(k)[0]) for k in ("mu", "bs")}   # docs/agents.md
        self.mu_least_cost = torch.zeros(t, e, spec.n_mus)   # structured map: E at p_need / E_ref (baseline)
        if spec.has_levels:   # the MUs' levels and whether each took effect (the level head)
            self.act[LEVEL] = torch.zeros(t, e, spec.n_mus, 1, dtype=torch.long)
            self.used[LEVEL] = torch.ones(t, e, spec.n_mus, 1)
        self.dones = torch.zeros(t, e)
        self.values = torch.zeros(t, e)
        self.next_values = torch.zeros(t, e)
        self.steps, self.n_envs = steps, n_envs


def used_masks(info: dict[str, Any], spec: EnvSpec, n_envs: int) -> dict[str, np.ndarray]:
    """Which action entries took effect in a step, per type [E, A, D] (and the level head's)."""
    out = {"mu": info["mu_used"][:, :, None], "bs": info["bs_used"],
           "controller": np.ones((n_envs, 1, spec.n_mus), bool)}
    if spec.has_levels:
        out[LEVEL] = info["level_used"][:, :, None]
    return out


def fixed_bs_action(spec: EnvSpec, n_envs: int) -> np.ndarray:
    """The BSs' action [E, M, N] when they are not learners (:attr:`EnvSpec.bs_fixed`): ``u = 0.5``,
    which the ``kkt`` map sends to the tilt ``exp(0) = 1``, the energy-optimal split itself."""
    return np.full((n_envs, spec.n_bss, spec.n_mus), 0.5, np.float32)


def level_dist(actors: nn.ModuleDict, spec: EnvSpec, obs: torch.Tensor, agent: int | None = None) -> Any:
    """The MUs' level categoricals (masked by :meth:`EnvSpec.level_mask`) for MU observations
    ``obs`` [N, B, d] (``agent=None``) or MU ``agent``'s [B, d]."""
    grp = actors[LEVEL]
    mask = spec.level_mask()
    if agent is None:
        return grp.dist(grp.output(obs), mask[:, :, None, :])
    return grp.dist(grp.output_one(agent, obs), mask[agent][:, None, :], agent=agent)


def seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def actor_inputs(obs: BatchObs) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Group-major observation tensors {type: [A, E, d]} and the controller mask [1, E, N, M]."""
    go = {k: torch.from_numpy(np.ascontiguousarray(v.transpose(1, 0, 2))) for k, v in group_obs(obs).items()}
    return go, torch.from_numpy(obs.ctrl_mask)[None]


@torch.no_grad()
def collect(actors: nn.ModuleDict, value_fn: Any, env: Any, obs: BatchObs, spec: EnvSpec, steps: int
            ) -> tuple[RolloutBuffer, BatchObs, dict[str, float]]:
    """Run the stochastic policies ``steps`` slots in every environment; fill a :class:`RolloutBuffer`.

    ``value_fn(state [B, d]) -> [B]`` gives denormalized values. Old log-probabilities count only
    the action entries that took effect (``info`` masks), see docs/agents.md.
    """
    e_ = env.n_envs
    buf = RolloutBuffer(spec, steps, e_)
    next_state = torch.zeros(steps, e_, spec.dims["state"])
    totals = np.zeros(4)   # reward, energy J, failures, requests
    episodes: list[dict] = []
    for t in range(steps):
        go, mask = actor_inputs(obs)
        acts, logp_dims = {}, {}
        for k in TYPES:
            if k == "bs" and spec.bs_fixed:   # not a learner: u = 0.5, never scored (EnvSpec.bs_fixed)
                acts[k] = torch.from_numpy(fixed_bs_action(spec, e_)).transpose(0, 1)
                logp_dims[k] = torch.zeros_like(acts[k])
                buf.obs[k][t] = go[k].transpose(0, 1)
                buf.act[k][t] = acts[k].transpose(0, 1)
                continue
            grp = actors[k]
            dist = grp.dist(grp.output(go[k]), mask if k == "controller" else None)
            a = grp.sample(dist)
            acts[k] = a
            logp_dims[k] = dist.log_prob(a)                          # [A, E, D]
            buf.obs[k][t] = go[k].transpose(0, 1)
            buf.act[k][t] = a.transpose(0, 1)
        if spec.has_levels:   # the MUs' levels: a second head of the MU agents
            dist = level_dist(actors, spec, go["mu"])
            a = actors[LEVEL].sample(dist)
            acts[LEVEL], logp_dims[LEVEL] = a, dist.log_prob(a)
            buf.act[LEVEL][t] = a.transpose(0, 1)
        buf.ctrl_mask[t] = mask.transpose(0, 1)
        buf.state[t] = torch.from_numpy(obs.state)
        np_acts = {k: v.transpose(0, 1).numpy() for k, v in acts.items()}
        obs, reward, done, info = env.step(*to_env(np_acts, spec))
        used = used_masks(info, spec, e_)
        if spec.bs_fixed:
            used["bs"] = np.zeros_like(used["bs"])
        for k in TYPES:
            u = torch.from_numpy(used[k]).float()
            buf.used[k][t] = u
            buf.logp[k][t] = (logp_dims[k].transpose(0, 1) * u).sum(-1)
        if spec.has_levels:   # a MU's old log-probability is that of its joint (power, level) action
            u = torch.from_numpy(used[LEVEL]).float()
            buf.used[LEVEL][t] = u
            buf.logp["mu"][t] += (logp_dims[LEVEL].transpose(0, 1) * u).sum(-1)
        buf.rewards[t] = torch.from_numpy(reward).float()
        for k in ("mu", "bs"):
            buf.local_rewards[k][t] = torch.from_numpy(info[k + "_reward"]).float()
        buf.mu_least_cost[t] = torch.from_numpy(info["mu_least_cost"]).float()
        buf.dones[t] = torch.from_numpy(done).float()
        ns = np.where(done[:, None], info["final_state"], obs.state)
        next_state[t] = torch.from_numpy(ns)
        totals += (reward.sum(), info["energy_j"].sum(), info["failures"].sum(), info["requests"].sum())
        episodes += info["episodes"]
    flat = buf.state.reshape(steps * e_, -1)
    buf.values = value_fn(flat).reshape(steps, e_)
    buf.next_values = value_fn(next_state.reshape(steps * e_, -1)).reshape(steps, e_)
    n_steps = steps * e_
    stats = {"reward": totals[0] / n_steps, "energy_per_mu_slot": totals[1] / (n_steps * spec.n_mus),
             "failure_ratio": totals[2] / totals[3] if totals[3] else 0.0, "episodes": len(episodes)}
    return buf, obs, stats


@torch.no_grad()
def act(actors: nn.ModuleDict, obs: BatchObs, deterministic: bool = True, spec: EnvSpec | None = None
        ) -> dict[str, np.ndarray]:
    """Normalized actions {type: [E, A, D]} of stochastic actors (mode if ``deterministic``); with a
    level head (``spec.has_levels``) also the MUs' levels ``{LEVEL: [E, N, 1]}`` (masked mode or sample)."""
    go, mask = actor_inputs(obs)
    out = {}
    for k in TYPES:
        if k == "bs" and spec is not None and spec.bs_fixed:
            out[k] = fixed_bs_action(spec, obs.mu.shape[0])
            continue
        grp = actors[k]
        dist = grp.dist(grp.output(go[k]), mask if k == "controller" else None)
        out[k] = (grp.mode(dist) if deterministic else grp.sample(dist)).transpose(0, 1).numpy()
    if spec is not None and spec.has_levels:
        grp = actors[LEVEL]
        dist = level_dist(actors, spec, go["mu"])
        out[LEVEL] = (grp.mode(dist) if deterministic else grp.sample(dist)).transpose(0, 1).numpy()
    return out
