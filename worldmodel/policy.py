"""A goal-conditioned policy on the world model's latents: the amortised planner.

An inverse-dynamics MLP from (current embedding, goal embedding, proprio state) to the next
model action (one action block): trained by ``wm train-policy`` on a world model's dataset with
hindsight goals (a frame 1 to ``max_gap`` model steps later in the same episode), it proposes a
whole plan by acting, predicting the next embedding with the world model's predictor, and
acting again (``WorldModel.propose``): one rolled-out candidate instead of CEM's hundreds. The
``policy`` planner executes the proposal; ``policy-cem`` starts CEM from it.

With ``goal_state`` it is also given the goal's proprio state as the world model's read-out
decodes it from the goal image (what the ``model`` row's cost is given); with ``latent`` off it is
given only the proprio state and that goal state (a far smaller input, for tasks whose goal the
read-out's state carries; the predictor still predicts the states it acts on). Inputs are the
flattened standardised features of ``WorldModel.encode``; the policy standardises
them and the actions again with statistics of its training rows (buffers saved with it).

Legend: B batch, F flattened features (N * D), E encoded state dim, A model action dim.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class PolicyConfig:
    feat_dim: int  # F
    action_dim: int  # A (k env actions concatenated)
    state_dim: int = 0  # E (0: no proprio input)
    goal_state: bool = False  # also given the goal's encoded proprio state (needs state_dim)
    latent: bool = True  # given the current and goal features (off: the states alone; needs goal_state)
    hidden: int = 256
    depth: int = 3  # hidden layers

    def __post_init__(self):
        if min(self.feat_dim, self.action_dim, self.hidden, self.depth) < 1 or self.state_dim < 0:
            raise ValueError(f"policy sizes must be positive, got {self}")
        if self.goal_state and not self.state_dim:
            raise ValueError("a goal-state input needs state_dim > 0")
        if not self.latent and not self.goal_state:
            raise ValueError("a policy without latent inputs needs the goal state (goal_state=True)")


class GoalPolicy(nn.Module):
    def __init__(self, cfg: PolicyConfig):
        super().__init__()
        self.cfg = cfg
        width = 2 * cfg.feat_dim * cfg.latent + cfg.state_dim * (1 + cfg.goal_state)
        self.register_buffer("x_mean", torch.zeros(width))
        self.register_buffer("x_std", torch.ones(width))
        self.register_buffer("a_mean", torch.zeros(cfg.action_dim))
        self.register_buffer("a_std", torch.ones(cfg.action_dim))
        layers: list[nn.Module] = []
        for i in range(cfg.depth):
            layers += [nn.Linear(width if i == 0 else cfg.hidden, cfg.hidden), nn.GELU()]
        self.net = nn.Sequential(*layers, nn.Linear(cfg.hidden, cfg.action_dim))

    def inputs(
        self, z: Tensor, z_goal: Tensor, states: Tensor | None = None, goal_states: Tensor | None = None
    ) -> Tensor:
        """z (B, F), z_goal (B, F), states and goal_states (B, E) or None -> unstandardised inputs
        (B, [2F +] E [+ E]): [the current features, the change still to make,] the proprio state
        [and the change of state still to make]."""
        parts = [z, z_goal - z] if self.cfg.latent else []
        if self.cfg.state_dim:
            if states is None or (self.cfg.goal_state and goal_states is None):
                extra = (
                    " and goal states (pass the read-out's state of the goal image)"
                    if self.cfg.goal_state
                    else ""
                )
                raise ValueError("this policy was trained with proprio states" + extra)
            parts += [states] + ([goal_states - states] if self.cfg.goal_state else [])
        return torch.cat(parts, dim=-1).float()

    def forward(
        self, z: Tensor, z_goal: Tensor, states: Tensor | None = None, goal_states: Tensor | None = None
    ) -> Tensor:
        """z (B, F), z_goal (B, F), states and goal_states (B, E) -> the next model action (B, A)
        in env units."""
        x = (self.inputs(z, z_goal, states, goal_states) - self.x_mean) / self.x_std
        return self.net(x) * self.a_std + self.a_mean
