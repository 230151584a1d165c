"""Time-series forecasting: an LSTM that reads a window of past values and predicts the next ones, and the
seasonal-naive baseline it has to beat.

The LSTM is Hochreiter & Schmidhuber 1997, "Long Short-Term Memory" (with the forget gate of Gers et al. 2000).
The seasonal-naive forecast is the standard benchmark of forecasting (Hyndman & Athanasopoulos, "Forecasting:
Principles and Practice", section 5.2): each future value is predicted by the last observed value of the same
season.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from paperzoo.sequence.layers.recurrent import LSTM
from paperzoo.sequence.registry import register_model


def seasonal_naive_forecast(history: Tensor | np.ndarray, season: int, horizon: int = 1) -> Tensor | np.ndarray:
    r"""The seasonal-naive forecast of the next ``horizon`` values: each is the value one season before it.

    For a history :math:`y_1, \dots, y_T` and season length :math:`m`,

    .. math::
        \hat y_{T+k} = y_{T+k-m(\lfloor (k-1)/m \rfloor + 1)}, \qquad k = 1, \dots, h,

    so for :math:`k \le m` the forecast is :math:`y_{T+k-m}`, and beyond one season the last observed season repeats.
    With ``season=1`` it is the naive (persistence) forecast :math:`\hat y_{T+k} = y_T`.

    Args:
        history: the observed values, time along the last axis; leading axes are independent series.
        season: the season length :math:`m` in steps (about 11 for yearly sunspot numbers).
        horizon: how many steps ahead to forecast.

    Returns:
        The forecast, of shape ``(..., horizon)`` and the type (tensor or array) of ``history``.

    Raises:
        ValueError: ``season`` or ``horizon`` is below 1, or the history is shorter than one season.
    """
    if season < 1 or horizon < 1:
        raise ValueError(f"season and horizon must be at least 1, got {season} and {horizon}")
    length = history.shape[-1]
    if length < season:
        raise ValueError(f"the seasonal-naive forecast needs at least one season ({season} values), got {length}")
    k = np.arange(1, horizon + 1)
    index = length - 1 + k - season * ((k - 1) // season + 1)  # 0-based position of y_{T+k-m(...)}
    if isinstance(history, Tensor):
        return history[..., torch.as_tensor(index, device=history.device)]
    return np.asarray(history)[..., index]


class LSTMForecaster(nn.Module):
    """Multi-step forecasting with an LSTM (Hochreiter & Schmidhuber 1997) and a linear read-out.

    The LSTM (:class:`~paperzoo.sequence.layers.LSTM`) reads the input window; a linear layer maps the last layer's
    state after the final step to the next ``horizon`` values at once (a direct multi-output forecast, not fed back
    step by step). Inputs and outputs are in the units the data module serves, normalised in our experiments.

    Args:
        input_size: features per time step (1 for a univariate series).
        hidden_size: width of the LSTM state.
        num_layers: stacked LSTM layers.
        horizon: values predicted per window.
        dropout: dropout probability between LSTM layers and before the read-out, in training mode only.

    Shapes:
        - **input:** :math:`(B, T, I)`, or :math:`(B, T)` for a univariate series.
        - **output:** :math:`(B, h)`, the next ``horizon`` = :math:`h` values.
    """

    def __init__(
        self,
        input_size: int = 1,
        hidden_size: int = 64,
        num_layers: int = 1,
        horizon: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        self.input_size = input_size
        self.horizon = horizon
        self.lstm = LSTM(
            input_size, hidden_size, num_layers=num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, horizon)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2 and self.input_size == 1:
            x = x.unsqueeze(-1)  # (B, T) -> (B, T, 1)
        if x.dim() != 3:
            raise ValueError(f"LSTMForecaster expects (batch, time, features) input, got shape {tuple(x.shape)}")
        _, (h_n, _) = self.lstm(x)  # (L, B, H)
        return self.head(self.dropout(h_n[-1]))  # (B, horizon)


@register_model
def lstm_forecaster(**kwargs) -> LSTMForecaster:
    """A one-layer LSTM with 64 units forecasting the next ``horizon`` values of a univariate series."""
    return LSTMForecaster(**kwargs)
