"""Beta-MAPPO: multi-agent PPO (Yu et al., 2022) with parameters shared within each agent type.

One actor network per type (MU, BS, controller), fed the agent's observation plus a one-hot agent
id; all agents are updated *simultaneously* by one clipped surrogate (no sequential order, no M
factor), with one Adam per run. With ``credit="local"`` the MU and BS terms use their local
advantages (as HAPPO's), the controller's the team advantage. Rollouts, the centralized V critic, GAE, value normalization and
the Huber value loss are those of :class:`~wdtnopt.agents.happo.HAPPO`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .core import LEVEL, TYPES, ActorGroup, EnvSpec, RolloutBuffer, level_dist
from .happo import HAPPO, HAPPOConfig


@dataclass
class MAPPOConfig(HAPPOConfig):
    """MAPPO's hyperparameters (HAPPO's, same meaning); the Beta head."""

    head: str = "beta"
    """continuous action head"""


class MAPPO(HAPPO):
    name = "beta-mappo"
    Config = MAPPOConfig

    def __init__(self, spec: EnvSpec, cfg: MAPPOConfig, seed: int = 0):
        super().__init__(spec, cfg, seed)
        if cfg.credit == "local" or cfg.bs_actor_lr is not None:   # types at their own step sizes (actor_lr)
            same = ["mu"] + (["bs"] if self.actor_lr("bs") == cfg.actor_lr else [])
            groups = [{"params": [p for k in same for p in self.agent_params(k)]}]
            groups += [{"params": self.agent_params(k), "lr": self.actor_lr(k)}
                       for k in ("bs", "controller") if k not in same]
            self.actor_opt = torch.optim.Adam(groups, lr=cfg.actor_lr, eps=cfg.adam_eps)
        else:
            self.actor_opt = torch.optim.Adam(self.actors.parameters(), lr=cfg.actor_lr, eps=cfg.adam_eps)

    def _make_group(self, kind: str) -> ActorGroup:
        a, d, da = self.spec.group(kind)
        if kind == "controller":
            return ActorGroup(a, d, da, "categorical", self.cfg.hidden, n_choices=self.spec.n_bss, shared=True,
                              stay_logit=self.cfg.ctrl_stay_logit)
        if kind == LEVEL:
            return ActorGroup(a, d, da, "categorical", self.cfg.hidden, n_choices=self.spec.n_levels, shared=True)
        return ActorGroup(a, d, da, self.cfg.head, self.cfg.hidden, shared=True)

    def group_log_prob(self, buf: RolloutBuffer, kind: str, idx: Any, entropy: bool
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(new log-probs [A, b], old log-probs [A, b], entropies) of a type on batch rows ``idx``."""
        b = buf.steps * buf.n_envs
        grp = self.actors[kind]
        a = grp.n_agents

        def flat(x: torch.Tensor) -> torch.Tensor:   # [T, E, A, ...] -> [A, B, ...]
            return x.reshape(b, a, *x.shape[3:]).transpose(0, 1)[:, idx]
        mask = flat(buf.ctrl_mask) if kind == "controller" else None
        dist = grp.dist(grp.output(flat(buf.obs[kind])), mask)
        used = flat(buf.used[kind])
        logp = grp.log_prob(dist, flat(buf.act[kind]), used)
        ent = grp.entropy(dist, used) if entropy else None
        if kind == "mu" and LEVEL in self.actors:   # the joint (power, level) action: log-probabilities add
            lg, lused = self.actors[LEVEL], flat(buf.used[LEVEL])
            ld = level_dist(self.actors, self.spec, flat(buf.obs[kind]))
            logp = logp + lg.log_prob(ld, flat(buf.act[LEVEL]), lused)
            if ent is not None:
                ent = ent + lg.entropy(ld, lused)
        return logp, flat(buf.logp[kind]), ent

    def update(self, buf: RolloutBuffer) -> dict[str, float]:
        cfg = self.cfg
        adv, returns = self.advantages(buf)
        if cfg.value_norm:
            self.value_norm.update(returns)
        local = self.local_advantages(buf) if cfg.credit == "local" else {}
        b = adv.shape[0]
        kls, clips, losses = [], [], []
        for _ in range(cfg.ppo_epochs):
            order = torch.from_numpy(self.rng.permutation(b))
            for mb in (order.chunk(cfg.minibatches) if cfg.minibatches > 1 else [slice(None)]):
                loss = torch.zeros(())
                for kind in self.learners(TYPES):
                    coef = cfg.ctrl_entropy_coef if kind == "controller" else cfg.entropy_coef
                    logp, old, ent = self.group_log_prob(buf, kind, mb, coef > 0)
                    log_ratio = logp - old
                    ratio = log_ratio.exp()
                    a_mb = local[kind][:, mb] if kind in local else adv[mb][None, :]
                    surr = torch.min(ratio * a_mb, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a_mb)
                    loss = loss - surr.mean() - (coef * ent.mean() if ent is not None else 0.0)
                    with torch.no_grad():
                        kls.append(float(((ratio - 1) - log_ratio).mean()))
                        clips.append(float(((ratio - 1).abs() > cfg.clip).float().mean()))
                self.actor_opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.actors.parameters(), cfg.max_grad_norm)
                self.actor_opt.step()
                losses.append(float(loss.detach()))
        out = {"approx_kl": float(np.mean(kls[-len(self.learners(TYPES)):])), "clipfrac": float(np.mean(clips)),
               "policy_loss": float(np.mean(losses))}
        out.update(self.update_critic(buf, returns))
        if local:
            out.update(self.update_local_critics(buf))
        return out

    def actor_opt_state(self) -> Any:
        return self.actor_opt.state_dict()

    def load_actor_opt_state(self, sd: Any) -> None:
        self.actor_opt.load_state_dict(sd)
