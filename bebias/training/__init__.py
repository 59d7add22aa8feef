"""Training: self-supervised pre-training (``pretrain``), supervised fine-tuning / linear
probes (``finetune``), what both share (``run_common``: set-up, LR schedule, resume, save;
``loop``: the step loop; ``rng``: seeding and RNG states; ``precision``: the bf16 check),
and evaluation (``evaluate``)."""
