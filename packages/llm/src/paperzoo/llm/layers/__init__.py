"""paperzoo.llm.layers: LoRA (Hu et al. 2021), from scratch, with peft-compatible adapters."""

from paperzoo.llm.layers.lora import (
    LoRAConfig,
    LoRALinear,
    apply_lora,
    from_peft_state_dict,
    load_lora,
    load_peft_adapter,
    lora_layers,
    lora_state_dict,
    merge_and_unload,
    merge_lora,
    save_lora,
    save_peft_adapter,
    to_peft_state_dict,
    trainable_parameters,
    unmerge_lora,
)

__all__ = [
    "LoRAConfig",
    "LoRALinear",
    "apply_lora",
    "from_peft_state_dict",
    "load_lora",
    "load_peft_adapter",
    "lora_layers",
    "lora_state_dict",
    "merge_and_unload",
    "merge_lora",
    "save_lora",
    "save_peft_adapter",
    "to_peft_state_dict",
    "trainable_parameters",
    "unmerge_lora",
]
