"""MADDPG (Lowe et al., 2017) on the WDTN environment, cooperative variant.

* Deterministic actors, one per agent (stacked per type): MU power and BS weights are
  ``sigmoid(net(obs))`` in the normalized box, explored with Gaussian noise (clipped to the box);
  the controller's categoricals are trained through a straight-through Gumbel-softmax (masked
  logits) and act by their masked argmax.
* A centralized Q critic ``Q(state, joint action)`` with a target network; the joint action is
  MU powers, BS weights and the controller's one-hot hosts. The reward is a team reward, so every
  agent's centralized critic would learn the same function: one critic serves all agents.
* Each agent type's actors ascend ``Q(s, a)`` with that type's actions from the current policies
  and the other types' actions from the replay buffer (the MADDPG rule, applied per type).
* Replay buffer (uniform), Polyak-averaged target actors and critic.
* With a semantic menu of more than one level, each MU also has a level actor (masked logits over
  its levels): trained, like the controller, through a straight-through Gumbel-softmax (hard
  one-hot forward, the softmax's gradient backward; masked levels get probability 0) and acting by
  its masked argmax; the critic reads the levels as one-hots after the controller's, and the level
  actors ascend Q in their own pass (MU levels from the current policies, the rest from the buffer).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .core import LEVEL, TYPES, ActorGroup, EnvSpec, actor_inputs, configured_spec, mlp, seed_everything, to_env


@dataclass
class MADDPGConfig:
    """Hyperparameters of MADDPG (the original paper's, with a larger replay ratio for 2 cores)."""

    n_envs: int = 16
    """environments stepped together"""
    rollout_steps: int = 50
    """slots collected per environment per iteration"""
    episode_slots: int = 100
    """slots per episode (time-limit end, bootstrapped)"""
    hidden: int = 64
    """width of the two hidden layers of every actor"""
    critic_hidden: int = 256
    """width of the two hidden layers of the Q critic"""
    actor_lr: float = 1e-4
    """Adam step size of the actors (DDPG's 1e-4; 1e-3 oscillated on the WDTN env)"""
    critic_lr: float = 1e-3
    """Adam step size of the critic"""
    gamma: float = 0.95
    """discount factor"""
    tau: float = 0.01
    """Polyak factor of the target networks"""
    buffer_size: int = 20_000
    """replay capacity in joint transitions"""
    batch_size: int = 256
    """transitions per gradient step"""
    warmup_steps: int = 1_000
    """joint transitions collected before the first update"""
    updates_per_iteration: int = 25
    """gradient steps (critic and actors) per iteration"""
    noise_std: float = 0.1
    """Gaussian exploration noise on normalized continuous actions"""
    gumbel_tau: float = 1.0
    """Gumbel-softmax temperature of the controller"""
    max_grad_norm: float = 10.0
    """gradient norm clip"""
    torch_threads: int = 1
    """torch intra-op threads: 1, since the networks are small and the environments use the other core"""
    power_decades: float = 0.0
    """MU power map p = p_max (10^(d u) - 1) / (10^d - 1) of the action u in [0, 1] (0: linear), as HAPPO's;
    linear by default: with 2 decades and the prior below MADDPG got worse on the tiny test scenario"""
    ctrl_stay_logit: float = 5.0
    """fixed logit added to every DT's current host in the controller's logits (0: none), as HAPPO's;
    5 measured better than 0 at N = 30 (team cost 0.04813 vs 0.0491 after 50,400 steps, 13 vs 25
    migrations per trace: BENCHMARKS.md, "Fixed KKT BSs and the sweeps")"""
    action_map: str = "structured"
    """MU action map, as HAPPO's: "structured" (residual above the least deadline-meeting power at the
    announced share, give-up gate) or "raw" (power through power_decades)"""
    bs_map: str = "kkt"
    """BS action map (structured MU map only): "kkt" (a tilt exp(bs_tilt (2u - 1)) of the energy-optimal
    CPU split among the DTs it serves; u = 0.5 is that split) or "raw" (CPU weights u in [0, 1])"""
    bs_tilt: float = 0.25
    """largest log-multiplier of the "kkt" BS map (u = 1 gives a DT e^0.25 = 1.28 times its KKT weight);
    1.0 learned a tilt that cost more than it gained (BENCHMARKS.md, "Where the gap sat")"""
    residual_max: float = 0.2
    """structured map: the MU transmits (1 + residual_max u) times its least deadline-meeting power"""
    bs_learn: bool = False
    """with the "kkt" BS map: whether the BSs learn a tilt of the energy-optimal split (as HAPPO's; False:
    they act at u = 0.5, the untilted split, without noise, and the critic sees that constant)"""

    def __post_init__(self) -> None:
        from ..errors import WdtnoptError
        if self.action_map not in ("structured", "raw"):
            raise WdtnoptError(f"config: action_map must be one of structured, raw, got {self.action_map!r}")
        if self.bs_map not in ("kkt", "raw"):
            raise WdtnoptError(f"config: bs_map must be one of kkt, raw, got {self.bs_map!r}")
        if not self.bs_tilt > 0:
            raise WdtnoptError(f"config: bs_tilt must be > 0, got {self.bs_tilt!r}")
        if not self.residual_max > 0:
            raise WdtnoptError(f"config: residual_max must be > 0, got {self.residual_max!r}")
        if self.batch_size > self.buffer_size:   # a batch is drawn from the buffer: never more than it holds
            raise WdtnoptError(f"config: batch_size: expected at most buffer_size ({self.buffer_size}), "
                               f"got {self.batch_size}")
        if self.warmup_steps > self.buffer_size:   # the buffer never holds that many: no update, ever
            raise WdtnoptError(f"config: warmup_steps: expected at most buffer_size ({self.buffer_size}), "
                               f"got {self.warmup_steps}: the replay buffer never holds more, so nothing would learn")


class ReplayBuffer:
    """Uniform replay of joint transitions; MU and controller observations are slices of the state."""

    def __init__(self, spec: EnvSpec, capacity: int):
        d = spec.dims
        n, m = spec.n_mus, spec.n_bss
        self.cap, self.size, self.pos = capacity, 0, 0
        self.state = np.zeros((capacity, d["state"]), np.float32)
        self.next_state = np.zeros((capacity, d["state"]), np.float32)
        self.bs = np.zeros((capacity, m, d["bs"]), np.float32)
        self.next_bs = np.zeros((capacity, m, d["bs"]), np.float32)
        self.mask = np.zeros((capacity, n, m), bool)
        self.next_mask = np.zeros((capacity, n, m), bool)
        self.act_mu = np.zeros((capacity, n), np.float32)
        self.act_bs = np.zeros((capacity, m, n), np.float32)
        self.act_ctrl = np.zeros((capacity, n), np.int64)
        self.reward = np.zeros(capacity, np.float32)
        self.names = ("state", "next_state", "bs", "next_bs", "mask", "next_mask", "act_mu", "act_bs", "act_ctrl", "reward")
        if spec.has_levels:   # the MUs' semantic levels
            self.act_level = np.zeros((capacity, n), np.int64)
            self.names += ("act_level",)

    def add(self, **rows: np.ndarray) -> None:
        k = rows["reward"].shape[0]
        idx = (self.pos + np.arange(k)) % self.cap
        for name, value in rows.items():
            getattr(self, name)[idx] = value
        self.pos = (self.pos + k) % self.cap
        self.size = min(self.size + k, self.cap)

    def sample(self, rng: np.random.Generator, batch: int) -> dict[str, torch.Tensor]:
        idx = rng.integers(0, self.size, batch)
        return {k: torch.from_numpy(getattr(self, k)[idx]) for k in self.names}

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "pos": self.pos,
                **{k: torch.from_numpy(getattr(self, k)[: self.size].copy()) for k in self.names}}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.size, self.pos = int(sd["size"]), int(sd["pos"])
        for k, v in sd.items():
            if k not in ("size", "pos"):
                getattr(self, k)[: self.size] = v.numpy()


def _clip_grad_norm(params: list[nn.Parameter], max_norm: float) -> None:
    """``nn.utils.clip_grad_norm_`` without its multiplication by a clamped factor of 1.0 when the norm
    is below ``max_norm`` (``g * 1.0 == g``: the same gradients, one pass over them fewer)."""
    total = nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    if float(max_norm / (total + 1e-6)) < 1.0:
        nn.utils.clip_grads_with_norm_(params, max_norm, total)


class _ActorPassLinear(torch.autograd.Function):
    """The critic's first layer on the stacked actor passes: ``F.linear(x, w, b)`` forward; backward
    only ``grad[rows of pass k] @ w[:, span k]`` for pass k's actions ``acts[k]`` ([B, span]), whose
    values ``x`` already holds. Autograd of ``F.linear`` on ``cat([state, joint])`` would compute
    ``grad @ w`` for every column and slice it: the same dot products for the columns kept."""

    @staticmethod
    def forward(ctx, x, w, b, spans, *acts):
        ctx.save_for_backward(w)
        ctx.spans = spans
        return F.linear(x, w, b)

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        rows = grad.shape[0] // len(ctx.spans)
        return (None, None, None, None,
                *(grad[k * rows:(k + 1) * rows].mm(w[:, lo:hi]) for k, (lo, hi) in enumerate(ctx.spans)))


class MADDPG:
    """Cooperative MADDPG (module docstring)."""

    name = "maddpg"
    Config = MADDPGConfig

    def __init__(self, spec: EnvSpec, cfg: MADDPGConfig, seed: int = 0):
        self.spec = configured_spec(spec, cfg)
        self.cfg = cfg
        spec = self.spec
        self.rng = seed_everything(seed)
        groups = {}
        for k in TYPES:
            a, d, da = spec.group(k)
            groups[k] = (ActorGroup(a, d, da, "categorical", cfg.hidden, n_choices=spec.n_bss,
                                     stay_logit=cfg.ctrl_stay_logit) if k == "controller"
                         else ActorGroup(a, d, da, "deterministic", cfg.hidden))
        if spec.has_levels:   # the MUs' level logits (straight-through Gumbel-softmax, module docstring)
            a, d, da = spec.group(LEVEL)
            groups[LEVEL] = ActorGroup(a, d, da, "categorical", cfg.hidden, n_choices=spec.n_levels)
        self.actors = nn.ModuleDict(groups)
        self.critic = mlp(spec.dims["state"] + spec.joint_action_dim, 1, cfg.critic_hidden, act=nn.ReLU)
        self.target_actors = copy.deepcopy(self.actors)
        self.target_critic = copy.deepcopy(self.critic)
        # foreach: the same elementwise operations as the default per-tensor loop on CPU (tested), fewer calls
        self.actor_opt = torch.optim.Adam(self.actors.parameters(), lr=cfg.actor_lr, foreach=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, foreach=True)
        self.buffer = ReplayBuffer(spec, cfg.buffer_size)
        # column span of each type's actions in the critic input [state, mu, bs, controller one-hot]
        n, m, lo = spec.n_mus, spec.n_bss, spec.dims["state"]
        self._spans = ((lo, lo + n), (lo + n, lo + n + m * n), (lo + n + m * n, lo + n + 2 * m * n))
        self._passes = TYPES   # the actor passes of update: one per type (and the MU levels, with a menu)
        if spec.has_levels:
            hi = lo + n + 2 * m * n
            self._spans += ((hi, hi + n * spec.n_levels),)
            self._passes = TYPES + (LEVEL,)
        linears = [mod for mod in self.critic if isinstance(mod, nn.Linear)]
        self._critic_layers = [(lin.weight, lin.bias) for lin in linears]
        self._critic_params, self._actor_params = list(self.critic.parameters()), list(self.actors.parameters())
        self._pass_input: torch.Tensor | None = None   # the actor passes' critic input, reused (update)
        # (targets, sources) for the Polyak average; load_state_dict copies in place, so these stay valid
        self._polyak = ([*self.target_actors.parameters(), *self.target_critic.parameters()],
                        [*self.actors.parameters(), *self.critic.parameters()])

    # -- observations from buffer rows -----------------------------------------------------------
    def _obs(self, state: torch.Tensor, bs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Group-major observations {type: [A, B, d]} rebuilt from the state (MU, controller) and BS rows."""
        d = self.spec.dims
        n = self.spec.n_mus
        mu = state[:, d["controller"]: d["controller"] + n * d["mu"]].reshape(-1, n, d["mu"])
        return {"mu": mu.transpose(0, 1), "bs": bs.transpose(0, 1), "controller": state[None, :, : d["controller"]]}

    def _policy(self, actors: nn.ModuleDict, obs: dict[str, torch.Tensor], mask: torch.Tensor, mode: str
                ) -> dict[str, torch.Tensor]:
        """Actions {type: [A, B, D]}; the controller as one-hot [1, B, N, M]. mode: greedy | gumbel."""
        out = {k: torch.sigmoid(actors[k].output(obs[k])) for k in ("mu", "bs")}
        if self.spec.bs_fixed:   # not a learner: u = 0.5 (the untilted KKT split), no gradient
            out["bs"] = torch.full_like(out["bs"], 0.5).detach()
        logits = actors["controller"].output(obs["controller"]).reshape(1, -1, self.spec.n_mus, self.spec.n_bss)
        logits = logits.masked_fill(~mask, -1e9)
        if mode == "gumbel":
            out["controller"] = F.gumbel_softmax(logits, tau=self.cfg.gumbel_tau, hard=True)
        else:
            out["controller"] = F.one_hot(logits.argmax(-1), self.spec.n_bss).float()
        if LEVEL in actors:   # the MUs' levels as one-hots [N, B, L] (masked logits)
            lv = actors[LEVEL].output(obs["mu"]).masked_fill(~self.spec.level_mask(), -1e9)
            out[LEVEL] = (F.gumbel_softmax(lv, tau=self.cfg.gumbel_tau, hard=True) if mode == "gumbel"
                          else F.one_hot(lv.argmax(-1), self.spec.n_levels).float())
        return out

    def _critic_input(self, state: torch.Tensor, a: dict[str, torch.Tensor], batch_major: bool = False) -> torch.Tensor:
        """[state, MU powers, BS weights, controller one-hots] as one [B, state + joint] tensor: the
        values the plain update of tests/test_maddpg.py concatenates, in one cat. ``a`` as from
        :meth:`_policy`, or batch-major (replay rows: mu [B, N], bs [B, M, N], controller [B, N, M]) with ``batch_major``."""
        b = state.shape[0]
        if batch_major:
            parts = (a["mu"], a["bs"], a["controller"])
        else:
            parts = (a["mu"].transpose(0, 1), a["bs"].transpose(0, 1), a["controller"][0])
        if LEVEL in a:   # level one-hots: [B, N, L] batch-major, [N, B, L] group-major
            parts += (a[LEVEL] if batch_major else a[LEVEL].transpose(0, 1),)
        return torch.cat([state, *(x.reshape(b, -1) for x in parts)], dim=1)

    # -- acting ------------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: Any, deterministic: bool = True) -> dict[str, np.ndarray]:
        go, mask = actor_inputs(obs)
        a = self._policy(self.actors, go, mask, "greedy" if deterministic else "gumbel")
        out = {k: a[k].transpose(0, 1).numpy() for k in ("mu", "bs")}
        if not deterministic:
            for k in (("mu",) if self.spec.bs_fixed else ("mu", "bs")):
                out[k] = np.clip(out[k] + self.rng.normal(0.0, self.cfg.noise_std, out[k].shape), 0.0, 1.0).astype(np.float32)
        out["controller"] = a["controller"].argmax(-1).transpose(0, 1).numpy()
        if LEVEL in a:
            out[LEVEL] = a[LEVEL].argmax(-1).transpose(0, 1).numpy()[:, :, None]
        return out

    # -- one iteration ---------------------------------------------------------------------------
    def iterate(self, env: Any, obs: Any) -> tuple[Any, dict[str, float]]:
        cfg, spec = self.cfg, self.spec
        totals = np.zeros(4)
        for _ in range(cfg.rollout_steps):
            a = self.act(obs, deterministic=False)
            nxt, reward, done, info = env.step(*to_env(a, spec))
            # after an automatic reset nxt is the new episode's first observation: the time-limit
            # end bootstraps Q'(s_T, mu'(o_T)) from the terminal state and the terminal observations
            # the target actors read there (BSs' observations, controller mask; docs/agents.md)
            next_state = np.where(done[:, None], info["final_state"], nxt.state)
            next_bs = np.where(done[:, None, None], info["final_bs"], nxt.bs)
            next_mask = np.where(done[:, None, None], info["final_ctrl_mask"], nxt.ctrl_mask)
            self.buffer.add(state=obs.state, next_state=next_state, bs=obs.bs, next_bs=next_bs, mask=obs.ctrl_mask,
                            next_mask=next_mask, act_mu=a["mu"][:, :, 0], act_bs=a["bs"],
                            act_ctrl=a["controller"][:, 0], reward=reward.astype(np.float32),
                            **({"act_level": a[LEVEL][:, :, 0]} if LEVEL in a else {}))
            totals += (reward.sum(), info["energy_j"].sum(), info["failures"].sum(), info["requests"].sum())
            obs = nxt
        n_steps = cfg.rollout_steps * env.n_envs
        stats = {"reward": totals[0] / n_steps, "energy_per_mu_slot": totals[1] / (n_steps * spec.n_mus),
                 "failure_ratio": totals[2] / totals[3] if totals[3] else 0.0}
        if self.buffer.size >= cfg.warmup_steps:
            diags = [self.update() for _ in range(cfg.updates_per_iteration)]
            stats.update({k: float(np.mean([d[k] for d in diags])) for k in diags[0]})
        return obs, stats

    def update(self) -> dict[str, float]:
        """One gradient step of the critic and the actors (the same computation as the plain update
        of tests/test_maddpg.py, bit for bit, with less work; see the comments)."""
        cfg, spec = self.cfg, self.spec
        b = self.buffer.sample(self.rng, cfg.batch_size)
        bsz = cfg.batch_size
        with torch.no_grad():
            na = self._policy(self.target_actors, self._obs(b["next_state"], b["next_bs"]), b["next_mask"][None], "greedy")
            y = b["reward"] + cfg.gamma * self.target_critic(self._critic_input(b["next_state"], na))[:, 0]
        # the critic input with the taken actions, built once for the critic loss and the actor passes
        taken_acts = {"mu": b["act_mu"], "bs": b["act_bs"], "controller": F.one_hot(b["act_ctrl"], spec.n_bss).float()}
        if "act_level" in b:
            taken_acts[LEVEL] = F.one_hot(b["act_level"], spec.n_levels).float()
        taken = self._critic_input(b["state"], taken_acts, batch_major=True)
        q = self.critic(taken)[:, 0]
        critic_loss = F.mse_loss(q, y)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        _clip_grad_norm(self._critic_params, cfg.max_grad_norm)
        self.critic_opt.step()

        pol = self._policy(self.actors, self._obs(b["state"], b["bs"]), b["mask"][None], "gumbel")
        # The three actor passes (type k's actions from the current policies, the others' from the
        # buffer) as one critic batch of 3B rows: pass k's rows are the taken input with type k's
        # columns overwritten. The critic's weights enter detached (the reference discards the
        # critic gradients of the actor loss), and the first layer sends gradients only into each
        # pass's own action columns (_ActorPassLinear), the only ones that lead to an actor.
        flat = [pol["mu"].transpose(0, 1).reshape(bsz, -1), pol["bs"].transpose(0, 1).reshape(bsz, -1),
                pol["controller"][0].reshape(bsz, -1)]
        if LEVEL in pol:
            flat.append(pol[LEVEL].transpose(0, 1).reshape(bsz, -1))
        passes = len(self._passes)
        # x lives across updates (nothing saves it for backward): a fresh 3.8 MB buffer per update at
        # N = 30 costs more in page faults than the copy itself
        if self._pass_input is None or self._pass_input.shape[0] != passes * bsz:
            self._pass_input = taken.new_empty(passes * bsz, taken.shape[1])
        x = self._pass_input
        with torch.no_grad():
            x.view(passes, bsz, -1).copy_(taken.expand(passes, -1, -1))
            for k, (lo, hi) in enumerate(self._spans):
                x[k * bsz:(k + 1) * bsz, lo:hi] = flat[k]
        (w1, b1), *rest = self._critic_layers
        h = _ActorPassLinear.apply(x, w1.detach(), b1.detach(), self._spans, *flat)
        for w, bias in rest:
            h = F.linear(torch.relu(h), w.detach(), bias.detach())
        q_pass = h[:, 0]
        actor_loss = torch.zeros(())
        for k in range(passes):
            actor_loss = actor_loss - q_pass[k * bsz:(k + 1) * bsz].mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        _clip_grad_norm(self._actor_params, cfg.max_grad_norm)
        self.actor_opt.step()

        with torch.no_grad():
            torch._foreach_lerp_(self._polyak[0], self._polyak[1], cfg.tau)
        return {"value_loss": float(critic_loss.detach()), "policy_loss": float(actor_loss.detach()) / passes,
                "q_mean": float(q.detach().mean())}

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"actors": self.actors.state_dict(), "critic": self.critic.state_dict(),
                "target_actors": self.target_actors.state_dict(), "target_critic": self.target_critic.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "buffer": self.buffer.state_dict(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.actors.load_state_dict(sd["actors"])
        self.critic.load_state_dict(sd["critic"])
        self.target_actors.load_state_dict(sd["target_actors"])
        self.target_critic.load_state_dict(sd["target_critic"])
        for opt, key in ((self.actor_opt, "actor_opt"), (self.critic_opt, "critic_opt")):
            opt.load_state_dict(sd[key])
            for group in opt.param_groups:   # checkpoints written before foreach=True carry foreach=None
                group["foreach"] = True
        self.buffer.load_state_dict(sd["buffer"])
        self.rng.bit_generator.state = sd["rng"]
