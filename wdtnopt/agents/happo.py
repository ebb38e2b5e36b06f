"""Beta-HAPPO: heterogeneous-agent PPO (Kuba et al., ICLR 2022; HARL) on the WDTN environment.

No parameter sharing: every MU, every BS and the controller has its own actor (stacked per type,
:class:`~wdtnopt.agents.core.StackedMLP`). One centralized V critic reads the global state.
Each iteration:

1. collect ``rollout_steps`` slots in ``n_envs`` environments with the stochastic policies;
2. GAE(gamma, lambda) advantages on denormalized values; value targets normalized (ValueNorm);
3. draw a random permutation of all agents and update them *in sequence*: agent ``i_k`` maximizes
   the clipped surrogate ``E[M * min(r A, clip(r, 1 - c, 1 + c) A)]`` where
   ``M = prod_{j < k} r_{i_j}`` is the product of the probability ratios of the agents already
   updated in this iteration (no gradient through M), then multiplies its own new ratio into M;
4. fit the critic with a Huber loss on normalized targets.

Actors use a Beta head (``alpha, beta = 1 + softplus``) for the bounded MU power and BS weights
and masked categoricals for the controller; Gaussian-HAPPO (``gaussian-happo``) has the Gaussian head
(the head is fixed by the algorithm, so a run's name says it: registry.make_config).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .core import (LEVEL, TYPES, ActorGroup, EnvSpec, RolloutBuffer, StackedAdam, ValueNorm, act, collect,
                   configured_spec, explained_variance, gae, level_dist, mlp, seed_everything)



@dataclass
class HAPPOConfig:
    """Hyperparameters of (Beta-)HAPPO; HARL's on-policy defaults, sized for 2 CPU cores."""

    n_envs: int = 16
    """environments stepped together (BatchedWdtnEnv)"""
    rollout_steps: int = 100
    """slots collected per environment per iteration (one episode; amortizes the sequential updates)"""
    episode_slots: int = 100
    """slots per episode (one trace); episodes end by time limit and are bootstrapped"""
    hidden: int = 64
    """width of the two hidden layers of every actor"""
    critic_hidden: int = 128
    """width of the two hidden layers of the critic"""
    head: str = "beta"
    """continuous action head: "beta" or "gaussian" """
    actor_lr: float = 2e-3
    """Adam step size of the actors (5e-4 in the case study's setting; 2e-3 with local credit, whose
    advantages are far less noisy: docs/agents.md, "Credit assignment")"""
    ctrl_actor_lr: float = 2e-4
    """Adam step size of the controller's actor with local credit (its team advantage stays noisy;
    at actor_lr it learned to migrate more and the deterministic policy got worse); with
    credit="team" the controller uses actor_lr like every actor"""
    bs_actor_lr: float | None = None
    """Adam step size of the BS actors when they learn (None: actor_lr; 0 keeps them at their initial,
    still stochastic, policy)"""
    bs_learn: bool = False
    """with the "kkt" BS map: whether the BSs learn a tilt of the energy-optimal split. False (default):
    they act at u = 0.5, the untilted split, in rollouts and evaluation, and are not updated (their
    ratio is 1, so HAPPO's factor M is unchanged); the learned tilt cost 8 points of gap (docs/agents.md,
    "Why the BSs do not learn by default"). The "raw" BS map always learns"""
    critic_lr: float = 5e-4
    """Adam step size of the critic"""
    adam_eps: float = 1e-5
    """Adam epsilon"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    clip: float = 0.2
    """PPO ratio clip c"""
    ppo_epochs: int = 10
    """passes over the batch per agent update (5 in the case study's setting)"""
    minibatches: int = 1
    """minibatches per pass (actors)"""
    critic_epochs: int = 5
    """passes over the batch for the critic"""
    critic_minibatches: int = 1
    """minibatches per pass (critic)"""
    entropy_coef: float = 0.0
    """entropy bonus weight of the MU and BS actors (0 as in CleanRL's continuous PPO; saves digammas)"""
    ctrl_entropy_coef: float = 0.01
    """entropy bonus weight of the controller's categoricals"""
    huber_delta: float = 10.0
    """Huber loss threshold of the value loss (normalized units)"""
    max_grad_norm: float = 10.0
    """gradient norm clip, per agent and for the critic"""
    value_norm: bool = True
    """normalize value targets with running statistics"""
    torch_threads: int = 1
    """torch intra-op threads: 1, since the networks are small and the environments use the other core"""
    power_decades: float = 2.0
    """MU power map p = p_max (10^(d u) - 1) / (10^d - 1) of the action u in [0, 1] (0: linear p = u p_max);
    the powers that meet deadlines span 0.01 mW to p_max = 200 mW (median ~1 mW) at the default scenario"""
    ctrl_stay_logit: float = 5.0
    """fixed logit added to every DT's current host in the controller's categoricals (0: none);
    a uniform initial controller migrates ~80% of DTs per frame, and migrating DTs fail"""
    action_map: str = "structured"
    """MU action map: "structured" (a one-sided residual above the least deadline-meeting power at the
    announced CPU share, with the give-up gate; docs/env.md) or "raw" (the power through power_decades)"""
    bs_map: str = "kkt"
    """BS action map (structured MU map only): "kkt" (a tilt exp(bs_tilt (2u - 1)) of the energy-optimal
    CPU split among the DTs it serves; u = 0.5 is that split) or "raw" (CPU weights u in [0, 1])"""
    bs_tilt: float = 0.25
    """largest log-multiplier of the "kkt" BS map (u = 1 gives a DT e^0.25 = 1.28 times its KKT weight);
    1.0 learned a tilt that cost more than it gained (BENCHMARKS.md, "Where the gap sat")"""
    residual_max: float = 0.2
    """structured map: the MU transmits (1 + residual_max u) times its least deadline-meeting power
    (the least power already meets the deadline exactly, so the residual only costs energy)"""
    credit: str = "local"
    """"local": MU and BS actors learn from their own per-slot rewards (exact marginal contribution,
    discount 0) with per-type baselines, the controller from the team return; "team": every actor
    learns from the team GAE advantage (the case study's setting). docs/agents.md, "Credit assignment" """

    def __post_init__(self) -> None:
        from ..errors import WdtnoptError
        for key, allowed in (("action_map", ("structured", "raw")), ("credit", ("local", "team")),
                             ("bs_map", ("kkt", "raw")), ("head", ("beta", "gaussian"))):
            if getattr(self, key) not in allowed:
                raise WdtnoptError(f"config: {key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        if not self.residual_max > 0:
            raise WdtnoptError(f"config: residual_max must be > 0, got {self.residual_max!r}")
        if not self.bs_tilt > 0:
            raise WdtnoptError(f"config: bs_tilt must be > 0, got {self.bs_tilt!r}")
        if self.bs_actor_lr is not None and not self.bs_actor_lr >= 0:
            raise WdtnoptError(f"config: bs_actor_lr must be None or >= 0, got {self.bs_actor_lr!r}")


class HAPPO:
    """Heterogeneous-agent PPO with sequential, ratio-weighted agent updates (module docstring)."""

    name = "beta-happo"
    Config = HAPPOConfig

    def __init__(self, spec: EnvSpec, cfg: HAPPOConfig, seed: int = 0):
        self.spec = configured_spec(spec, cfg)
        self.cfg = cfg
        self.rng = seed_everything(seed)
        self.actors = nn.ModuleDict({k: self._make_group(k) for k in TYPES})
        if self.spec.has_levels:   # a menu: each MU also picks its semantic level (a masked categorical head)
            self.actors[LEVEL] = self._make_group(LEVEL)
        self.actor_opt = {k: StackedAdam(self.agent_params(k), self.actor_lr(k), cfg.adam_eps,
                                         max_grad_norm=cfg.max_grad_norm) for k in TYPES}
        self.critic = mlp(spec.dims["state"], 1, cfg.critic_hidden)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, eps=cfg.adam_eps)
        self.value_norm = ValueNorm()
        if cfg.credit == "local":   # per-type baselines of the MU and BS local rewards (shared within a type)
            self.local_critic = nn.ModuleDict({k: mlp(spec.group(k)[1], 1, cfg.critic_hidden) for k in ("mu", "bs")})
            self.local_critic_opt = torch.optim.Adam(self.local_critic.parameters(), lr=cfg.critic_lr, eps=cfg.adam_eps)
            self.local_norm = nn.ModuleDict({k: ValueNorm() for k in ("mu", "bs")})

    def agent_params(self, kind: str) -> list[nn.Parameter]:
        """The actor parameters of a type's agents (a MU's: its power head and, with a menu, its level head)."""
        params = list(self.actors[kind].parameters())
        if kind == "mu" and LEVEL in self.actors:
            params += list(self.actors[LEVEL].parameters())
        return params

    def learners(self, kinds: tuple[str, ...]) -> tuple[str, ...]:
        """The types among ``kinds`` that are updated (not the BSs when they are fixed: EnvSpec.bs_fixed)."""
        return tuple(k for k in kinds if not (k == "bs" and self.spec.bs_fixed))

    def actor_lr(self, kind: str) -> float:
        """Adam step size of a type's actors (``ctrl_actor_lr`` for the controller with local credit)."""
        if kind == "controller" and self.cfg.credit == "local":
            return self.cfg.ctrl_actor_lr
        if kind == "bs" and self.cfg.bs_actor_lr is not None:
            return self.cfg.bs_actor_lr
        return self.cfg.actor_lr

    def _make_group(self, kind: str) -> ActorGroup:
        a, d, da = self.spec.group(kind)
        if kind == "controller":
            return ActorGroup(a, d, da, "categorical", self.cfg.hidden, n_choices=self.spec.n_bss,
                              stay_logit=self.cfg.ctrl_stay_logit)
        if kind == LEVEL:
            return ActorGroup(a, d, da, "categorical", self.cfg.hidden, n_choices=self.spec.n_levels)
        return ActorGroup(a, d, da, self.cfg.head, self.cfg.hidden)

    # -- acting -------------------------------------------------------------------------------
    @torch.no_grad()
    def values(self, state: torch.Tensor) -> torch.Tensor:
        v = self.critic(state)[:, 0]
        return self.value_norm.denormalize(v) if self.cfg.value_norm else v

    def act(self, obs: Any, deterministic: bool = True) -> dict[str, np.ndarray]:
        return act(self.actors, obs, deterministic, self.spec)

    # -- one iteration ------------------------------------------------------------------------
    def iterate(self, env: Any, obs: Any) -> tuple[Any, dict[str, float]]:
        buf, obs, stats = collect(self.actors, self.values, env, obs, self.spec, self.cfg.rollout_steps)
        stats.update(self.update(buf))
        return obs, stats

    def advantages(self, buf: RolloutBuffer) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalized advantages [B], returns [B]) of a rollout."""
        cfg = self.cfg
        adv = gae(buf.rewards, buf.values, buf.next_values, buf.dones, cfg.gamma, cfg.gae_lambda).reshape(-1)
        returns = adv + buf.values.reshape(-1)
        if adv.numel() < 2:   # one sample (n_envs = rollout_steps = 1): no spread to scale by (std is NaN)
            return torch.zeros_like(adv), returns
        return (adv - adv.mean()) / (adv.std() + 1e-8), returns

    def agent_batch(self, buf: RolloutBuffer, kind: str, i: int) -> dict[str, torch.Tensor]:
        """Agent i's slice of the rollout, flattened to [B, ...]."""
        b = buf.steps * buf.n_envs
        out = {"obs": buf.obs[kind][:, :, i].reshape(b, -1), "act": buf.act[kind][:, :, i].reshape(b, -1),
               "used": buf.used[kind][:, :, i].reshape(b, -1), "logp": buf.logp[kind][:, :, i].reshape(b)}
        out["mask"] = buf.ctrl_mask[:, :, 0].reshape(b, self.spec.n_mus, self.spec.n_bss) if kind == "controller" else None
        if kind == "mu" and LEVEL in self.actors:
            out["level"] = buf.act[LEVEL][:, :, i].reshape(b, -1)
            out["level_used"] = buf.used[LEVEL][:, :, i].reshape(b, -1)
        return out

    def log_prob_one(self, kind: str, i: int, batch: dict[str, torch.Tensor], idx: Any = slice(None),
                     entropy: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Agent i's log-probabilities [B] of its stored actions (and entropies, if asked)."""
        grp = self.actors[kind]
        mask = batch["mask"][idx] if batch["mask"] is not None else None
        dist = grp.dist(grp.output_one(i, batch["obs"][idx]), mask, agent=i)
        logp = grp.log_prob(dist, batch["act"][idx], batch["used"][idx])
        ent = grp.entropy(dist, batch["used"][idx]) if entropy else None
        if "level" in batch:   # a MU's joint (power, level) action: the two heads' log-probabilities add
            lg = self.actors[LEVEL]
            ld = level_dist(self.actors, self.spec, batch["obs"][idx], agent=i)
            logp = logp + lg.log_prob(ld, batch["level"][idx], batch["level_used"][idx])
            if ent is not None:
                ent = ent + lg.entropy(ld, batch["level_used"][idx])
        return logp, ent

    def update_agent(self, kind: str, i: int, batch: dict[str, torch.Tensor], adv: torch.Tensor,
                     factor: torch.Tensor) -> dict[str, float]:
        """PPO epochs of one agent with the HAPPO factor; returns its diagnostics."""
        cfg = self.cfg
        b = adv.shape[0]
        opt = self.actor_opt[kind]
        ent_coef = cfg.ctrl_entropy_coef if kind == "controller" else cfg.entropy_coef
        kls, clips, losses, ents = [], [], [], []
        for _ in range(cfg.ppo_epochs):
            order = torch.from_numpy(self.rng.permutation(b))
            for mb in (order.chunk(cfg.minibatches) if cfg.minibatches > 1 else [slice(None)]):
                logp, ent = self.log_prob_one(kind, i, batch, mb, entropy=ent_coef > 0)
                log_ratio = logp - batch["logp"][mb]
                ratio = log_ratio.exp()
                surr = torch.min(ratio * adv[mb], ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv[mb])
                loss = -(factor[mb] * surr).mean() - (ent_coef * ent.mean() if ent is not None else 0.0)
                opt.zero_grad()
                loss.backward()
                opt.step(i)
                with torch.no_grad():
                    kls.append(float(((ratio - 1) - log_ratio).mean()))
                    clips.append(float(((ratio - 1).abs() > cfg.clip).float().mean()))
                    losses.append(float(loss.detach()))
                    if ent is not None:
                        ents.append(float(ent.mean()))
        out = {"approx_kl": kls[-1], "clipfrac": float(np.mean(clips)), "policy_loss": float(np.mean(losses))}
        if ents:
            out["entropy_" + kind] = float(np.mean(ents))
        return out

    def _local_batch(self, buf: RolloutBuffer, k: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(observations [B A, d], local rewards [B A], used [B A]) of type ``k``, agent-minor."""
        obs = buf.obs[k]
        used = buf.used[k].amax(-1)
        if k == "mu" and LEVEL in buf.used:   # a MU's level took effect even where it gave up its power
            used = torch.maximum(used, buf.used[LEVEL][..., 0])
        return (obs.reshape(-1, obs.shape[-1]), buf.local_rewards[k].reshape(-1), used.reshape(-1) > 0)

    def local_advantages(self, buf: RolloutBuffer) -> dict[str, torch.Tensor]:
        """MU and BS advantages [A, B]: local reward less the type's baseline ``V_k(o_i)``, normalized
        over the entries whose action took effect (0 elsewhere). Discount 0: an MU's or BS's action
        changes no other slot (docs/agents.md, "Credit assignment")."""
        b = buf.steps * buf.n_envs
        out = {}
        with torch.no_grad():
            for k in self.learners(("mu", "bs")):
                obs, r, used = self._local_batch(buf, k)
                if k == "mu" and self.spec.action_map == "structured" and not self.spec.has_levels:
                    # the exact baseline: the cost at the least deadline-meeting power of the announced
                    # share (independent of the MU's own action); the advantage is the residual's extra energy.
                    # With a level head that cost depends on the MU's level: the learned V_mu(o) serves instead
                    v = -buf.mu_least_cost.reshape(-1)
                else:
                    v = self.local_norm[k].denormalize(self.local_critic[k](obs)[:, 0])
                adv, used = (r - v).reshape(b, -1).T, used.reshape(b, -1).T      # [A, B]
                sel = adv[used]
                if sel.numel() > 1:
                    adv = torch.where(used, (adv - sel.mean()) / (sel.std() + 1e-8), torch.zeros(()))
                else:
                    adv = torch.zeros_like(adv)
                out[k] = adv
        return out

    def update_local_critics(self, buf: RolloutBuffer) -> dict[str, float]:
        """Fit the per-type baselines to the local rewards of the entries whose action took effect
        (normalized targets, mean squared error, full batch)."""
        out = {}
        for k in self.learners(("mu", "bs")):
            obs, r, used = self._local_batch(buf, k)
            obs, r = obs[used], r[used]
            if r.numel() < 2:
                continue
            self.local_norm[k].update(r)
            target = self.local_norm[k].normalize(r)
            for _ in range(self.cfg.critic_epochs):
                loss = F.mse_loss(self.local_critic[k](obs)[:, 0], target)
                self.local_critic_opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.local_critic[k].parameters(), self.cfg.max_grad_norm)
                self.local_critic_opt.step()
            with torch.no_grad():
                out[f"explained_variance_{k}"] = explained_variance(self.local_critic[k](obs)[:, 0], target)
        return out

    def update_local(self, buf: RolloutBuffer) -> dict[str, float]:
        """The HAPPO update with local credit: the controller first (team advantage, M = 1), then the
        MUs and BSs in a random order, each with its local advantage and the factor M of the agents
        already updated whose actions enter its reward: a MU's host BS and the controller (at frame
        starts); a BS's served MUs and the controller (docs/agents.md)."""
        cfg = self.cfg
        adv, returns = self.advantages(buf)
        if cfg.value_norm:
            self.value_norm.update(returns)
        local = self.local_advantages(buf)
        b = adv.shape[0]
        n, m = self.spec.n_mus, self.spec.n_bss
        bs_used = buf.used["bs"].reshape(b, m, n)
        log_r = {"mu": torch.zeros(n, b), "bs": torch.zeros(m, b), "controller": torch.zeros(b)}
        diags: list[dict[str, float]] = []
        factor_std: list[float] = []
        batch = self.agent_batch(buf, "controller", 0)
        diags.append(self.update_agent("controller", 0, batch, adv, torch.ones(b)))
        with torch.no_grad():
            log_r["controller"] = self.log_prob_one("controller", 0, batch, entropy=False)[0] - batch["logp"]
        agents = [(k, i) for k in self.learners(("mu", "bs")) for i in range(self.spec.group(k)[0])]
        for j in self.rng.permutation(len(agents)):
            kind, i = agents[j]
            batch = self.agent_batch(buf, kind, i)
            with torch.no_grad():
                if kind == "mu":
                    lf = (bs_used[:, :, i] * log_r["bs"].T).sum(1)
                else:
                    lf = (bs_used[:, i, :] * log_r["mu"].T).sum(1)
                factor = (lf + log_r["controller"]).exp()
                factor_std.append(float(factor.std()) if factor.numel() > 1 else 0.0)   # one sample: no spread
            diags.append(self.update_agent(kind, i, batch, local[kind][i], factor))
            with torch.no_grad():
                log_r[kind][i] = self.log_prob_one(kind, i, batch, entropy=False)[0] - batch["logp"]
        keys = sorted({k for d in diags for k in d})
        out = {k: float(np.mean([d[k] for d in diags if k in d])) for k in keys}
        out["factor_std"] = float(np.mean(factor_std))
        out.update(self.update_critic(buf, returns))
        out.update(self.update_local_critics(buf))
        return out

    def update(self, buf: RolloutBuffer) -> dict[str, float]:
        cfg = self.cfg
        if cfg.credit == "local":
            return self.update_local(buf)
        adv, returns = self.advantages(buf)
        if cfg.value_norm:
            self.value_norm.update(returns)
        factor = torch.ones_like(adv)
        agents = [(k, i) for k in self.learners(TYPES) for i in range(self.spec.group(k)[0])]
        diags: list[dict[str, float]] = []
        for j in self.rng.permutation(len(agents)):
            kind, i = agents[j]
            batch = self.agent_batch(buf, kind, i)
            diags.append(self.update_agent(kind, i, batch, adv, factor))
            with torch.no_grad():
                new_logp, _ = self.log_prob_one(kind, i, batch, entropy=False)
                factor = factor * (new_logp - batch["logp"]).exp()
        keys = sorted({k for d in diags for k in d})
        out = {k: float(np.mean([d[k] for d in diags if k in d])) for k in keys}
        out.update(self.update_critic(buf, returns))
        return out

    def update_critic(self, buf: RolloutBuffer, returns: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg
        state = buf.state.reshape(returns.shape[0], -1)
        target = self.value_norm.normalize(returns) if cfg.value_norm else returns
        losses = []
        for _ in range(cfg.critic_epochs):
            order = torch.from_numpy(self.rng.permutation(returns.shape[0]))
            for mb in (order.chunk(cfg.critic_minibatches) if cfg.critic_minibatches > 1 else [slice(None)]):
                loss = F.huber_loss(self.critic(state[mb])[:, 0], target[mb], delta=cfg.huber_delta)
                self.critic_opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
                self.critic_opt.step()
                losses.append(float(loss.detach()))
        with torch.no_grad():
            ev = explained_variance(self.critic(state)[:, 0], target)
        return {"value_loss": float(np.mean(losses)), "explained_variance": ev}

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        sd = {"actors": self.actors.state_dict(), "critic": self.critic.state_dict(),
              "critic_opt": self.critic_opt.state_dict(), "value_norm": self.value_norm.state_dict(),
              "actor_opt": self.actor_opt_state(), "rng": self.rng.bit_generator.state}
        if self.cfg.credit == "local":
            sd["local_critic"] = self.local_critic.state_dict()
            sd["local_critic_opt"] = self.local_critic_opt.state_dict()
            sd["local_norm"] = self.local_norm.state_dict()
        return sd

    def actor_opt_state(self) -> Any:
        return {k: o.state_dict() for k, o in self.actor_opt.items()}

    def load_actor_opt_state(self, sd: Any) -> None:
        for k, o in self.actor_opt.items():
            o.load_state_dict(sd[k])

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.actors.load_state_dict(sd["actors"])
        self.critic.load_state_dict(sd["critic"])
        self.critic_opt.load_state_dict(sd["critic_opt"])
        self.value_norm.load_state_dict(sd["value_norm"])
        self.load_actor_opt_state(sd["actor_opt"])
        self.rng.bit_generator.state = sd["rng"]
        if self.cfg.credit == "local":
            self.local_critic.load_state_dict(sd["local_critic"])
            self.local_critic_opt.load_state_dict(sd["local_critic_opt"])
            self.local_norm.load_state_dict(sd["local_norm"])
