"""paperzoo.sequence.models (filled in by the sequence issue)."""

from paperzoo.sequence.models.transformer import (
    Transformer,
    TransformerConfig,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    from_torch_state_dict,
)

__all__ = [
    "Transformer",
    "TransformerConfig",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "from_torch_state_dict",
]
