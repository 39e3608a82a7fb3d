"""Training stages (SFT/RFT, GRPO, meta RM) on top of TRL."""
