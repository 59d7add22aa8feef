"""``--model module:function``: a network bebias cannot build, built by the user's own code.

For a checkpoint of an architecture bebias has no key map for, the user names a callable
(``package.module:function``, or ``path/to/file.py:function``) that takes no arguments and
returns an ``nn.Module`` mapping a normalised clip ``(B, 3, T, H, W)`` (bebias's layout and
normalisation, the checkpoint's input spec or --frames / --size / --mean / --std) to logits
``(B, K)``. bebias calls it, then fills the module's state_dict from the checkpoint, strictly:
every key of the module must be in the file with its shape, and no other (containers such as
``state_dict`` / ``model_state_dict`` are unwrapped and a DataParallel ``module.`` prefix is
stripped, nothing else is renamed).

Importing the module runs its code: that is the user's explicit choice on the command line
(the current directory is searched first, as ``python -m`` does). The checkpoint never
chooses the code -- the file is read with ``torch.load(weights_only=True)`` as every other
one, and nothing in it names a module.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

from torch import Tensor, nn

from bebias.errors import BebiasError

__all__ = ["build_user_model", "fill_user_model", "parse_model_spec"]


def parse_model_spec(spec: str) -> tuple[str, str]:
    """``"module:function"`` -> (module or ``.py`` path, function), or a one-line error."""
    mod, sep, fn = str(spec).strip().rpartition(":")
    if not sep or not mod or not fn or not all(p.isidentifier() for p in fn.split(".")):
        raise BebiasError(f"--model must be MODULE:FUNCTION (e.g. mynets:build or nets.py:build), got {spec!r}")
    return mod, fn


def _import(mod: str, spec: str) -> Any:
    if mod.endswith(".py"):
        if not os.path.isfile(mod):
            raise BebiasError(f"--model {spec}: no file {mod!r}")
        name = "bebias_user_" + os.path.splitext(os.path.basename(mod))[0]
        found = importlib.util.spec_from_file_location(name, mod)
        if found is None or found.loader is None:
            raise BebiasError(f"--model {spec}: {mod!r} cannot be imported")
        module = importlib.util.module_from_spec(found)
        found.loader.exec_module(module)
        return module
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:  # as `python -m` does: the user's own modules in the current directory
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(mod)
    except ModuleNotFoundError as e:
        if e.name and mod.startswith(e.name):
            raise BebiasError(f"--model {spec}: no module {e.name!r} (in the current directory or on PYTHONPATH)") \
                from None
        raise
    finally:
        if added:
            sys.path.remove(cwd)


def build_user_model(spec: str) -> nn.Module:
    """Import and call ``spec``'s function -> its ``nn.Module``. What the user's code raises is
    one error line naming ``--model`` (their code, their traceback: run it by hand to see it)."""
    mod, fn = parse_model_spec(spec)
    try:
        obj: Any = _import(mod, spec)
        for part in fn.split("."):
            if not hasattr(obj, part):
                raise BebiasError(f"--model {spec}: {mod} has no {fn!r}")
            obj = getattr(obj, part)
        if not callable(obj):
            raise BebiasError(f"--model {spec}: {fn} is a {type(obj).__name__}, not a function")
        net = obj()
    except BebiasError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the user's code raises
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise BebiasError(f"--model {spec} failed: {type(e).__name__}: {first}") from None
    if not isinstance(net, nn.Module):
        raise BebiasError(f"--model {spec} returned a {type(net).__name__}, expected a torch.nn.Module")
    return net


def fill_user_model(net: nn.Module, raw: Any, spec: str) -> dict[str, Any]:
    """Load ``raw`` (a loaded file: a state_dict, possibly in a container) into ``net``,
    strictly -> report (``container``, ``prefix``). Errors name the first keys that differ."""
    from bebias.models.foreign import _unwrap

    sd, container = _unwrap(raw)
    own = net.state_dict()
    prefix = ""
    if sd and all(k.startswith("module.") for k in sd) and not any(k.startswith("module.") for k in own):
        prefix = "module."
        sd = {k[len(prefix):]: v for k, v in sd.items()}
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shape = [k for k in own if k in sd and isinstance(sd[k], Tensor) and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shape:
        parts = [f"{len(keys)} {what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                 for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape-mismatched", shape))
                 if keys]
        raise BebiasError(f"weights do not fill --model {spec} (" + "; ".join(parts) + ")")
    net.load_state_dict(sd, strict=True)
    return {"layout": "user-model", "model": spec, "container": container, "prefix": prefix}
