"""The transformer MLP, with optional Context Broadcasting sites."""
from typing import Callable, Optional

from torch import Tensor, nn


class Mlp(nn.Module):
    """fc1 -> act -> fc2 (timm's names), with optional CB ops on its input, hidden activation
    or output (``cb_front``, ``cb_mid``, ``cb_end``; identities by default)."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.,
                 act_layer: Callable[[], nn.Module] = nn.GELU,
                 cb_front: Optional[nn.Module] = None, cb_mid: Optional[nn.Module] = None,
                 cb_end: Optional[nn.Module] = None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)
        self.cb_front = cb_front or nn.Identity()
        self.cb_mid = cb_mid or nn.Identity()
        self.cb_end = cb_end or nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.drop(self.cb_mid(self.act(self.fc1(self.cb_front(x)))))
        return self.cb_end(self.drop(self.fc2(x)))
