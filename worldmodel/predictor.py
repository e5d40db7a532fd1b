"""Action-conditioned predictor (V-JEPA 2-AC style): the latent dynamics of the world model.

Per frame t the token group is [action a_t, proprio state s_t, patch tokens z_t]; attention is
block-causal over frames (a token sees its own frame and the past), with 3D RoPE on patch tokens
and only the time component on action and state tokens. The outputs at frame t's patch tokens
predict frame t+1's patch features; the output at its state token predicts s_{t+1} (so rollouts
can feed predicted states back). With ``residual`` the patch outputs are added to the inputs
(predict the change; copying the last frame is the starting point).

Patch grids can be average-pooled (``pool``: e.g. 8x8 -> 4x4) before the predictor: the main
lever on planning cost, since every candidate plan runs the predictor at every horizon step.

``rollout`` predicts H steps for S candidate plans incrementally: the keys and values of past
frames are cached per layer, so each horizon step is one batched pass over the new frame's
tokens only (tested equal to the uncached full pass). It decodes token-major into key/value
buffers allocated once, with each token position's RoPE rotation (and the attention scale) folded
into its qkv weights, so a step is a few batched matmuls (tested equal to ``unroll``, the
training path through the blocks' forward). Two options reproduce the official
V-JEPA 2-AC planning loop: ``feedback_norm`` layer-norms every predicted frame (no affine, eps
1e-5) before it is fed back and returned, and ``state_update="ee_pose"`` moves a 7-D
end-effector pose [xyz, Euler xyz angles, gripper] by each action as its ``compute_new_pose``
does (xyz added, rotations composed, gripper clipped to [0, 1]); ``"add"`` adds the action to
the state when they share a size and holds the state otherwise. Parameter names follow the official
V-JEPA 2-AC predictor (``predictor_embed``, ``action_encoder``, ``state_encoder``,
``predictor_blocks``, ``predictor_norm``, ``predictor_proj``).

Legend: B batch (or S candidates), T frames, N patch tokens per frame (after pooling),
D encoder width, Dp predictor width, A action dim (k env actions concatenated), P state dim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from worldmodel.nn.rope import apply_rope, grid_positions, rope_angles
from worldmodel.nn.transformer import Block, DecodeCache, KVCache, init_weights


@dataclass(frozen=True)
class PredictorConfig:
    enc_dim: int = 128  # D, the encoder's width
    grid: int = 8  # encoder patch grid per side
    pool: int = 4  # pool the grid to pool x pool tokens (0: no pooling)
    cameras: int = 1  # K: each frame's tokens are K cameras' grids, RoPE'd as one grid K sides tall
    action_dim: int = 10  # A: action block k x env action dim
    state_dim: int = 4  # P (0: no state tokens)
    dim: int = 128  # Dp
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    residual: bool = True  # predict the change of each patch token
    max_frames: int = 32
    state_head: bool = True  # predict the next proprio state (fed back in rollouts)
    extrinsics_dim: int = 0  # size of the official model's extrinsics encoder input (0: none)
    use_extrinsics: bool = False  # add an extrinsics token per frame (official option)
    rope_variant: Literal["ours", "official"] = "ours"
    norm_eps: float = 1e-6
    feedback_norm: bool = False  # rollouts layer-norm each predicted frame before feeding it back
    state_update: Literal["add", "ee_pose"] = "add"  # future states without a state head

    def __post_init__(self):
        if self.pool and self.grid % self.pool:
            raise ValueError(f"grid {self.grid} is not divisible by pool {self.pool}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")

    @property
    def side(self) -> int:
        return self.pool or self.grid

    @property
    def tokens(self) -> int:
        """Patch tokens per frame after pooling, all cameras (N)."""
        return self.cameras * self.side**2

    @property
    def extra(self) -> int:
        """Action (+ state, + extrinsics) tokens per frame."""
        return 1 + bool(self.state_dim) + bool(self.use_extrinsics)

    @classmethod
    def tiny(
        cls, enc_dim: int = 32, grid: int = 2, action_dim: int = 2, state_dim: int = 4
    ) -> PredictorConfig:
        return cls(
            enc_dim=enc_dim,
            grid=grid,
            pool=0,
            action_dim=action_dim,
            state_dim=state_dim,
            dim=32,
            depth=2,
            heads=2,
        )


class ActionConditionedPredictor(nn.Module):
    def __init__(self, cfg: PredictorConfig):
        super().__init__()
        self.cfg = cfg
        self.predictor_embed = nn.Linear(cfg.enc_dim, cfg.dim)
        self.action_encoder = nn.Linear(cfg.action_dim, cfg.dim)
        if cfg.state_dim:
            self.state_encoder = nn.Linear(cfg.state_dim, cfg.dim)
            if cfg.state_head:
                self.state_head = nn.Linear(cfg.dim, cfg.state_dim)
        if cfg.extrinsics_dim:
            self.extrinsics_encoder = nn.Linear(cfg.extrinsics_dim, cfg.dim)
        if cfg.use_extrinsics and not cfg.extrinsics_dim:
            raise ValueError("use_extrinsics needs extrinsics_dim > 0")
        self.predictor_blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.mlp_ratio, eps=cfg.norm_eps) for _ in range(cfg.depth)
        )
        self.predictor_norm = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)
        self.predictor_proj = nn.Linear(cfg.dim, cfg.enc_dim)
        init_weights(self)
        if cfg.residual:  # start as copy-last: zero change
            nn.init.zeros_(self.predictor_proj.weight)
            nn.init.zeros_(self.predictor_proj.bias)

    # -- positions and masks ----------------------------------------------------------------

    def _frame_angles(self, t0: int, frames: int, device) -> Tensor:
        """RoPE angles for ``frames`` token groups starting at frame t0 -> (frames*(E+N), hd/2)."""
        cfg = self.cfg
        patch = grid_positions(frames, cfg.cameras * cfg.side, cfg.side, device).view(frames, cfg.tokens, 3)
        patch[..., 0] += t0
        time_only = torch.zeros(frames, cfg.extra, 3, device=device)
        time_only[..., 0] = torch.arange(t0, t0 + frames, device=device)[:, None]
        pos = torch.cat([time_only, patch], dim=1).reshape(-1, 3)  # (frames*(E+N), 3)
        return rope_angles(pos, cfg.dim // cfg.heads, variant=cfg.rope_variant)

    def _causal_mask(self, frames: int, device) -> Tensor:
        per = self.cfg.extra + self.cfg.tokens
        f = torch.arange(frames, device=device).repeat_interleave(per)
        return f[:, None] >= f[None, :]  # (T*(E+N), T*(E+N)): True = may attend

    def _tokens(
        self, z: Tensor, actions: Tensor, states: Tensor | None, extrinsics: Tensor | None = None
    ) -> Tensor:
        """z (B, T, N, D), actions (B, T, A), states (B, T, P) [, extrinsics (B, T, X)] -> (B, T*(E+N), Dp)."""
        x = self.predictor_embed(z)  # (B, T, N, Dp)
        parts = [self.action_encoder(actions)[:, :, None]]
        if self.cfg.state_dim:
            if states is None:
                raise ValueError("this predictor takes proprio states (state_dim > 0)")
            parts.append(self.state_encoder(states)[:, :, None])
        if self.cfg.use_extrinsics:
            if extrinsics is None:
                raise ValueError("this predictor takes extrinsics (use_extrinsics)")
            parts.append(self.extrinsics_encoder(extrinsics)[:, :, None])
        return torch.cat([*parts, x], dim=2).flatten(1, 2)

    def _outputs(self, x: Tensor, z: Tensor) -> tuple[Tensor, Tensor | None]:
        """Block outputs (B, T*(E+N), Dp) -> next patch features (B, T, N, D), next states (B, T, P)."""
        B, T = z.shape[:2]
        x = x.reshape(B, T, self.cfg.extra + self.cfg.tokens, -1)
        patches = self.predictor_proj(self.predictor_norm(x[:, :, self.cfg.extra :]))  # (B, T, N, D)
        if self.cfg.residual:
            patches = patches + z
        has_head = self.cfg.state_dim and self.cfg.state_head
        states = self.state_head(self.predictor_norm(x[:, :, 1])) if has_head else None
        return patches, states

    # -- full pass (training) -----------------------------------------------------------------

    def forward(
        self, z: Tensor, actions: Tensor, states: Tensor | None = None, extrinsics: Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """Teacher-forced next-frame prediction.

        z (B, T, N, D) pooled patch features of frames 0..T-1, actions (B, T, A) applied after
        each frame, states (B, T, P), extrinsics (B, T, X) when used -> predicted features of
        frames 1..T (B, T, N, D) and predicted states of frames 1..T (B, T, P) or None. An empty
        ``cache`` records the keys and values of the T frames (what ``unroll`` can go on from).
        """
        B, T, N, _ = z.shape
        if self.cfg.tokens != N:
            raise ValueError(f"expected {self.cfg.tokens} patch tokens per frame, got {N} (pool first)")
        x = self._tokens(z, actions, states, extrinsics)
        angles = self._frame_angles(0, T, z.device)
        mask = self._causal_mask(T, z.device)
        if cache is not None and cache.tokens:
            raise ValueError("forward records into an empty cache; use step to go on from one")
        for i, block in enumerate(self.predictor_blocks):
            x = block(x, angles, mask, cache, layer=i)
        if cache is not None:
            cache.frames = T
        return self._outputs(x, z)

    # -- incremental pass (rollouts) ---------------------------------------------------------

    def step(
        self, z: Tensor, actions: Tensor, states: Tensor | None, cache: KVCache
    ) -> tuple[Tensor, Tensor | None]:
        """Process new frames given the cache of earlier ones (updated in place).

        z (B, t, N, D), actions (B, t, A), states (B, t, P) for the next t frames -> their outputs
        as in ``forward``. Equal to running ``forward`` on all frames so far.
        """
        t = z.shape[1]
        x = self._tokens(z, actions, states)  # (B, t*(E+N), Dp)
        angles = self._frame_angles(cache.frames, t, z.device)
        mask = None
        if t > 1:  # block-causal among the new frames; all cached frames are in the past
            m = self._causal_mask(t, z.device)
            past = torch.ones(m.shape[0], cache.tokens, dtype=torch.bool, device=z.device)
            mask = torch.cat([past, m], dim=1)
        for i, block in enumerate(self.predictor_blocks):  # the training blocks, with a cache
            x = block(x, angles, mask, cache, layer=i)
        cache.frames += t
        return self._outputs(x, z)

    @torch.no_grad()
    def rollout(
        self, z0: Tensor, states0: Tensor | None, actions: Tensor, past_actions: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Open-loop prediction of S candidate plans from one context.

        z0 (C, N, D) pooled features of C context frames, states0 (C, P), actions (S, H, A) the
        candidates' actions from the last context frame on, past_actions (C-1, A) executed between
        the context frames -> predicted features (S, H, N, D) of the H future frames and their
        predicted states (S, H, P). One batched pass per horizon step over S candidates. Without a
        state head, future states are s + a when actions and states share a space (end-effector
        deltas, as V-JEPA 2-AC plans), else the last state held.
        """
        S, H, _ = actions.shape
        C = z0.shape[0]
        cache = KVCache(self.cfg.depth)
        if C > 1:  # the context frames before the last do not depend on the candidates
            pa = past_actions if past_actions is not None else actions.new_zeros(C - 1, actions.shape[-1])
            st = states0[None, :-1] if states0 is not None else None
            self.step(z0[None, :-1], pa[None], st, cache)
        buffers = DecodeCache(S, cache.tokens + H * (self.cfg.extra + self.cfg.tokens), cache)
        first = buffers.frames
        qkv = self._folded_qkv(first, H, z0.device)  # per block: (H, E+N, Dp, 3Dp), bias
        z = z0[-1:].expand(S, 1, -1, -1)  # (S, 1, N, D)
        s = states0[-1:].expand(S, 1, -1) if states0 is not None else None
        step = lambda z, a, s: self._decode(z, a, s, buffers, [(w[buffers.frames - first], None if b is None  # noqa: E731
                                            else b[buffers.frames - first]) for w, b in qkv])  # fmt: skip
        return self._unroll(z, s, actions, step)

    def _folded_qkv(self, t0: int, frames: int, device) -> list[tuple[Tensor, Tensor | None]]:
        """Per block, the qkv projection of every token position of frames t0..t0+frames-1 with
        its RoPE rotation and the query scale folded in -> weight (frames, E+N, Dp, 3Dp), bias
        (frames, E+N, 1, 3Dp) or None. Computed once per rollout, for all its steps."""
        hd = self.cfg.dim // self.cfg.heads
        angles = self._frame_angles(t0, frames, device)  # (frames*(E+N), hd/2 or hd)
        eye = torch.eye(hd, device=device).expand(angles.shape[0], hd, hd)
        rotations = apply_rope(eye, angles[:, None])  # (frames*(E+N), hd, hd)
        per = self.cfg.extra + self.cfg.tokens
        out = []
        for block in self.predictor_blocks:
            w, b = block.attn.folded_qkv(rotations)
            out.append(
                (w.view(frames, per, *w.shape[1:]), None if b is None else b.view(frames, per, *b.shape[1:]))
            )
        return out

    def _decode(
        self, z: Tensor, a: Tensor, s: Tensor | None, cache: DecodeCache, qkv: list[tuple[Tensor, Tensor | None]]
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """``step`` for one new frame without autograd, token-major through the blocks: z (B, 1, N, D),
        a (B, 1, A), s (B, 1, P), qkv per block this frame's folded projection (E+N, Dp, 3Dp) and
        bias (``_folded_qkv``) -> as ``step``. Equal to ``step`` up to float rounding."""
        x = self._tokens(z, a, s).transpose(0, 1)  # (E+N, B, Dp)
        for i, block in enumerate(self.predictor_blocks):
            w, b = qkv[i]
            x = block.decode(x, w.to(x.dtype), None if b is None else b.to(x.dtype), cache, layer=i)
        cache.advance(x.shape[0], 1)
        return self._outputs(x.transpose(0, 1), z)

    def unroll(
        self, z: Tensor, s: Tensor | None, actions: Tensor, cache: KVCache | None = None,
        first: tuple[Tensor, Tensor | None] | None = None,
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """Feed the model its own predictions (differentiable; ``rollout`` runs the same loop
        without autograd on buffers allocated once).

        z (B, 1, N, D) and s (B, 1, P) the last observed frame, actions (B, H, A), cache the keys
        and values of earlier frames (None: no earlier frames) -> predicted features (B, H, N, D)
        and states (B, H, P) of the next H frames. ``first``: the outputs (B, 1, N, D), (B, 1, P)
        or None of the first step when already computed, with ``cache`` then holding z's frame too
        (a teacher-forced ``forward`` that recorded it: training scores both without running the
        first step twice).
        """
        cache = cache if cache is not None else KVCache(self.cfg.depth)
        return self._unroll(z, s, actions, lambda z, a, s: self.step(z, a, s, cache), first)

    def predict_and_unroll(
        self, z: Tensor, actions: Tensor, states: Tensor | None, steps: int, forward=None
    ) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:  # fmt: skip
        """The two training passes over one clip, sharing their first step.

        z (B, T, N, D) frames 0..T-1, actions (B, T-1, A) between them, states (B, T, P) or None
        -> teacher-forced predictions of frames 1..T-1 (B, T-1, N, D) and states (B, T-1, P) or
        None, then the rollout from frame 0 over frames 1..R, R = min(steps, T-1): (B, R, N, D)
        and (B, R, P) or None, both None when R < 2. The teacher-forced pass records frame 0's keys
        and values and the rollout goes on from its first prediction: equal to a full pass plus a
        separate ``unroll``. ``forward`` runs the teacher-forced pass (a DDP wrapper of this
        module, so that its gradients are synchronised; default: this module).
        """
        R = min(steps, z.shape[1] - 1)
        cache = KVCache(self.cfg.depth) if R >= 2 else None
        s_in = states[:, :-1] if states is not None else None
        pred_z, pred_s = (forward or self)(z[:, :-1], actions, s_in, cache=cache)
        if cache is None:
            return pred_z, pred_s, None, None
        s0 = states[:, :1] if states is not None else None
        first = (pred_z[:, :1], None if pred_s is None else pred_s[:, :1])
        roll_z, roll_s = self.unroll(z[:, :1], s0, actions[:, :R], cache.first(1), first)
        return pred_z, pred_s, roll_z, roll_s

    def _unroll(
        self, z: Tensor, s: Tensor | None, actions: Tensor, step, first: tuple[Tensor, Tensor | None] | None = None
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """The rollout loop over ``step(z, a, s) -> (next z, next s or None)``, one frame a call
        (the first call's result given as ``first`` when already computed)."""
        zs, ss = [], []
        for h in range(actions.shape[1]):
            a = actions[:, h : h + 1]
            z, s_next = first if h == 0 and first is not None else step(z, a, s)  # (B, 1, N, D)
            if self.cfg.feedback_norm:
                z = nn.functional.layer_norm(z, z.shape[-1:], eps=1e-5)
            zs.append(z)
            if s is not None and s_next is None:  # no state head (official models)
                s_next = self.next_state(s, a)
            if s_next is not None:
                ss.append(s_next)
                s = s_next
        return torch.cat(zs, dim=1), (torch.cat(ss, dim=1) if ss else None)

    def next_state(self, s: Tensor, a: Tensor) -> Tensor:
        """The state after action a without a state head: s (B, 1, P), a (B, 1, A) -> (B, 1, P)."""
        if self.cfg.state_update == "ee_pose":
            return ee_pose_update(s, a)
        return s + a if a.shape[-1] == s.shape[-1] else s


def _euler_xyz_matrix(angles: Tensor) -> Tensor:
    """Extrinsic x-y-z Euler angles (..., 3) -> rotation matrices (..., 3, 3) = Rz Ry Rx."""
    cx, cy, cz = angles.cos().unbind(-1)
    sx, sy, sz = angles.sin().unbind(-1)
    rows = [
        [cy * cz, sx * sy * cz - cx * sz, cx * sy * cz + sx * sz],
        [cy * sz, sx * sy * sz + cx * cz, cx * sy * sz - sx * cz],
        [-sy, sx * cy, cx * cy],
    ]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def _matrix_euler_xyz(m: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) -> extrinsic x-y-z Euler angles (..., 3), the middle angle
    in [-pi/2, pi/2]; at gimbal lock the first angle is set to zero."""
    sy = (-m[..., 2, 0]).clamp(-1.0, 1.0)
    y = torch.asin(sy)
    x = torch.atan2(m[..., 2, 1], m[..., 2, 2])
    z = torch.atan2(m[..., 1, 0], m[..., 0, 0])
    lock = (1.0 - sy.abs()) < 1e-12
    x_lock = torch.zeros_like(x)
    z_lock = torch.atan2(-m[..., 0, 1], m[..., 1, 1])
    return torch.stack([torch.where(lock, x_lock, x), y, torch.where(lock, z_lock, z)], dim=-1)


def ee_pose_update(pose: Tensor, action: Tensor) -> Tensor:
    """A 7-D end-effector pose [x, y, z, Euler xyz (rad), gripper] moved by a delta action of the
    same layout: xyz added, the delta rotation applied after the current one (R(delta) R(pose)),
    the gripper added and clipped to [0, 1]. Computed in float64, returned in the pose's dtype."""
    if pose.shape[-1] != 7 or action.shape[-1] != 7:
        raise ValueError(f"ee_pose states and actions are 7-D; got {pose.shape[-1]} and {action.shape[-1]}")
    p, a = pose.double(), action.double()
    rot = _euler_xyz_matrix(a[..., 3:6]) @ _euler_xyz_matrix(p[..., 3:6])
    out = torch.cat(
        [p[..., :3] + a[..., :3], _matrix_euler_xyz(rot), (p[..., 6:] + a[..., 6:]).clamp(0.0, 1.0)], -1
    )
    return out.to(pose.dtype)
