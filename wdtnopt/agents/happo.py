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
and masked categoricals for the controller; ``head="gaussian"`` gives Gaussian-HAPPO.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .core import (TYPES, ActorGroup, EnvSpec, RolloutBuffer, StackedAdam, ValueNorm, act, collect,
                   explained_variance, gae, mlp, seed_everything)


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
    actor_lr: float = 5e-4
    """Adam step size of the actors"""
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
    ppo_epochs: int = 5
    """passes over the batch per agent update"""
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


class HAPPO:
    """Heterogeneous-agent PPO with sequential, ratio-weighted agent updates (module docstring)."""

    name = "beta-happo"
    Config = HAPPOConfig

    def __init__(self, spec: EnvSpec, cfg: HAPPOConfig, seed: int = 0):
        self.spec, self.cfg = dataclasses.replace(spec, power_decades=cfg.power_decades), cfg
        self.rng = seed_everything(seed)
        self.actors = nn.ModuleDict({k: self._make_group(k) for k in TYPES})
        self.actor_opt = {k: StackedAdam(list(self.actors[k].parameters()), cfg.actor_lr, cfg.adam_eps,
                                         max_grad_norm=cfg.max_grad_norm) for k in TYPES}
        self.critic = mlp(spec.dims["state"], 1, cfg.critic_hidden)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, eps=cfg.adam_eps)
        self.value_norm = ValueNorm()

    def _make_group(self, kind: str) -> ActorGroup:
        a, d, da = self.spec.group(kind)
        if kind == "controller":
            return ActorGroup(a, d, da, "categorical", self.cfg.hidden, n_choices=self.spec.n_bss,
                              stay_logit=self.cfg.ctrl_stay_logit)
        return ActorGroup(a, d, da, self.cfg.head, self.cfg.hidden)

    # -- acting -------------------------------------------------------------------------------
    @torch.no_grad()
    def values(self, state: torch.Tensor) -> torch.Tensor:
        v = self.critic(state)[:, 0]
        return self.value_norm.denormalize(v) if self.cfg.value_norm else v

    def act(self, obs: Any, deterministic: bool = True) -> dict[str, np.ndarray]:
        return act(self.actors, obs, deterministic)

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
        return (adv - adv.mean()) / (adv.std() + 1e-8), returns

    def agent_batch(self, buf: RolloutBuffer, kind: str, i: int) -> dict[str, torch.Tensor]:
        """Agent i's slice of the rollout, flattened to [B, ...]."""
        b = buf.steps * buf.n_envs
        out = {"obs": buf.obs[kind][:, :, i].reshape(b, -1), "act": buf.act[kind][:, :, i].reshape(b, -1),
               "used": buf.used[kind][:, :, i].reshape(b, -1), "logp": buf.logp[kind][:, :, i].reshape(b)}
        out["mask"] = buf.ctrl_mask[:, :, 0].reshape(b, self.spec.n_mus, self.spec.n_bss) if kind == "controller" else None
        return out

    def log_prob_one(self, kind: str, i: int, batch: dict[str, torch.Tensor], idx: Any = slice(None),
                     entropy: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Agent i's log-probabilities [B] of its stored actions (and entropies, if asked)."""
        grp = self.actors[kind]
        mask = batch["mask"][idx] if batch["mask"] is not None else None
        dist = grp.dist(grp.output_one(i, batch["obs"][idx]), mask, agent=i)
        logp = grp.log_prob(dist, batch["act"][idx], batch["used"][idx])
        return logp, (grp.entropy(dist, batch["used"][idx]) if entropy else None)

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

    def update(self, buf: RolloutBuffer) -> dict[str, float]:
        cfg = self.cfg
        adv, returns = self.advantages(buf)
        if cfg.value_norm:
            self.value_norm.update(returns)
        factor = torch.ones_like(adv)
        agents = [(k, i) for k in TYPES for i in range(self.spec.group(k)[0])]
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
        return {"actors": self.actors.state_dict(), "critic": self.critic.state_dict(),
                "critic_opt": self.critic_opt.state_dict(), "value_norm": self.value_norm.state_dict(),
                "actor_opt": self.actor_opt_state(), "rng": self.rng.bit_generator.state}

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
