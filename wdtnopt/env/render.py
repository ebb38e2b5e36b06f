"""A picture of one slot of the environment (docs/env.md, "Rendering").

The service area with its BSs (triangles, with the free storage of each server), the MUs (dots;
filled when they request in the slot), a line from every MU to its DT's host, the DT migrations
started in the slot (arrows from the old to the new host) and the MUs whose sync failed in the slot
(red crosses). matplotlib is imported only when a frame is drawn.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..trace import Trace


@dataclass
class Frame:
    """What one rendered slot shows (all arrays index MUs / DTs ``[N]``)."""

    t: int                       # the slot shown (the last one stepped; 0 after reset)
    placement: np.ndarray        # [N] DT hosts during the slot
    moved_from: np.ndarray       # [N] host before the slot's migration, -1 if the DT did not move
    failed: np.ndarray           # [N] bool: requested and failed in the slot
    request: np.ndarray          # [N] bool
    free_storage: np.ndarray     # [M] fraction of each server's storage left free
    reward: float | None         # the slot's team reward (None after reset)


def draw(ax, trace: Trace, fr: Frame) -> None:
    """Draw ``fr`` on the matplotlib axes ``ax``."""
    sc = trace.scenario
    bs = trace.bs_positions
    pos = trace.positions[fr.t]
    ax.set_xlim(0, sc.area_m)
    ax.set_ylim(0, sc.area_m)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    for i in range(trace.n_mus):
        hx, hy = bs[fr.placement[i]]
        ax.plot([pos[i, 0], hx], [pos[i, 1], hy], color="0.75", lw=0.7, zorder=1)
    req = fr.request.astype(bool)
    ax.scatter(pos[req, 0], pos[req, 1], s=22, c="tab:blue", zorder=3, label="MU (requesting)")
    ax.scatter(pos[~req, 0], pos[~req, 1], s=22, facecolors="none", edgecolors="tab:blue", zorder=3,
               label="MU (silent)")
    ax.scatter(bs[:, 0], bs[:, 1], marker="^", s=160, c="k", zorder=4, label="BS / server")
    for j in range(trace.n_bss):
        ax.annotate(f"bs_{j}\nfree {fr.free_storage[j]:.0%}", bs[j], textcoords="offset points",
                    xytext=(8, 6), fontsize=7)
    moved = np.flatnonzero(fr.moved_from >= 0)
    for k, i in enumerate(moved):
        a, b = bs[fr.moved_from[i]], bs[fr.placement[i]]
        ax.annotate("", xy=b, xytext=a, zorder=2,
                    arrowprops=dict(arrowstyle="->", color="tab:orange", lw=1.5,
                                    connectionstyle=f"arc3,rad={0.1 + 0.05 * (k % 4)}"))
    if moved.size:
        ax.plot([], [], color="tab:orange", lw=1.5, label=f"DT migration ({moved.size})")
    fail = fr.failed.astype(bool)
    if fail.any():
        ax.scatter(pos[fail, 0], pos[fail, 1], marker="x", s=70, c="tab:red", zorder=5,
                   label=f"failed sync ({int(fail.sum())})")
    title = f"slot {fr.t} of {trace.slots}" + (" (frame start)" if fr.t % sc.frame_slots == 0 else "")
    if fr.reward is not None:
        title += f", team reward {fr.reward:.3g}"
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=7, frameon=False)


def rgb_array(trace: Trace, fr: Frame, size_px: int = 480) -> np.ndarray:
    """The frame as an ``[H, W, 3]`` uint8 array (off-screen; no pyplot state is touched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size_px / 100, 1.15 * size_px / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    draw(fig.add_subplot(), trace, fr)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


class HumanWindow:
    """A pyplot window redrawn at every ``show`` (``render_mode="human"``)."""

    def __init__(self) -> None:
        self.fig = None

    def show(self, trace: Trace, fr: Frame) -> None:
        import matplotlib.pyplot as plt

        if self.fig is None or not plt.fignum_exists(self.fig.number):
            self.fig = plt.figure(figsize=(6, 6.9))
        self.fig.clf()
        draw(self.fig.add_subplot(), trace, fr)
        self.fig.tight_layout()
        self.fig.canvas.draw_idle()
        self.fig.canvas.flush_events()
        if plt.isinteractive() or "agg" not in plt.get_backend().lower():
            plt.pause(0.001)

    def close(self) -> None:
        if self.fig is not None:
            import matplotlib.pyplot as plt

            plt.close(self.fig)
            self.fig = None
