"""Training: datasets (data), transformers' Trainer for pre-training, CPT and SFT (train), one process or several
under torchrun (launch), and the resource plan of a real profile (plan)."""
