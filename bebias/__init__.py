"""bebias: background-bias toolkit for video models.

Layout (one small module per stage):

- ``bebias.data``      sources -> clip sampling -> decode -> transforms, and the embedded
                       synthetic benchmark (``bebias.data.synth``)
- ``bebias.cli``       thin typer layer over the library functions
"""

__version__ = "0.1.0"

from bebias.errors import BebiasError

__all__ = ["BebiasError", "__version__"]
