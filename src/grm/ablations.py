"""The paper's RFT ablations (Table 4, rows ①-②), by the names the config uses (``rft.ablations``).

Each entry is an SFT variant trained like RFT (same base, same steps) and evaluated like every other model; its
metric model name is ``rft_{name}`` (``eval/{benchmark}/rft_{name}/...``). The data each keeps is
``grm.training.spct.ablation_examples``. ``sft_unfiltered`` (``rft.sft_unfiltered``) is ours, not the paper's: SFT on the
same number of unfiltered teacher samples.
"""

from __future__ import annotations

# name -> the paper's row label
ABLATIONS: dict[str, str] = {
    "no_hinted": "RFT w/o hinted sampling",
    "no_nonhinted": "RFT w/o non-hinted sampling",
    "no_general": "RFT w/o general instruction data",
    "no_principles": "RFT w/o principle generation",
    "general_only": "RFT w/o rejective sampling (general data only)",
}
UNFILTERED = "sft_unfiltered"
UNFILTERED_LABEL = "SFT on unfiltered teacher samples"


def model_name(ablation: str) -> str:
    """The metric model name of an ablation: ``rft_{name}``.

    Example:
        >>> model_name("no_hinted")
        'rft_no_hinted'
    """
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown RFT ablation {ablation!r}; use one of {sorted(ABLATIONS)}")
    return f"rft_{ablation}"
