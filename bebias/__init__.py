"""bebias: background-bias toolkit for video models.

Floors, lowest first (a module imports only from its own floor or those below;
``tests/test_layering.py`` checks it):

- ``errors``, ``atomic``, ``parse``, ``limits``, ``seeds``, ``progress``, ``stats``,
  ``recipes``, ``results``: user errors, atomic writes, input checks, the one seed
  derivation, the one progress event, the bootstrap, method labels, probe results
- ``bebias.data`` (+ ``distract``, ``checkpoint``): sources -> clip sampling -> decode ->
  transforms, the loader, the embedded benchmark (``bebias.data.synth``); BE and the
  other distractions; self-describing checkpoints (``CheckpointMeta``)
- ``bebias.models``: backbones, ``open_model`` for every checkpoint kind, device choice,
  inference, Grad-CAM and its measure
- ``bebias.training``, ``bebias.probing``, ``bebias.reporting``: siblings (none imports
  another): pre-training / fine-tuning / evaluation; ``bebias probe`` and test sets;
  tables, figures and the HTML report (rendering only)
- ``bebias.workflows``: what composes the siblings (Grad-CAM on clips, many probes,
  ``bebias demo``)
- ``bebias.cli``: the thin typer layer, and the progress display
"""

__version__ = "0.1.0"

from bebias.errors import BebiasError

__all__ = ["BebiasError", "__version__"]
