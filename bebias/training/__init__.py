"""Training: supervised fine-tuning / linear probes (``finetune``), evaluation
(``evaluate``), and the shared runtime (devices, precision, seeding, resumable state)."""
