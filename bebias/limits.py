"""What every entry point checks the same way: option values (counts, seeds, rates) and the
bytes one allocation would take against the memory this machine has.

The config and spec classes call these from their own validation, so the command line, a
TOML/JSON config and the Python API refuse a bad value with the same one line.
"""

from __future__ import annotations

import math
import os

from bebias.errors import BebiasError

#: seeds go to numpy (unsigned 32-bit for the legacy global state) and torch generators
#: (products of the seed with small constants stay below 2**63)
MAX_SEED = 2**32 - 1
#: the longest run bebias trains: --epochs, or --max-steps in epochs of the split (10**12
#: epochs or steps is a typo, not a plan: it would run for years)
MAX_EPOCHS = 10_000
#: videos per class and split of the embedded benchmark: 100 times a large real dataset's
#: class (Kinetics-700: at most 1,000); 10**6 would render for days
MAX_VIDEOS_PER_CLASS = 100_000
#: worker processes one run may start (data loading, rendering): each is a whole interpreter
MAX_WORKERS = 64


class OptionError(BebiasError, ValueError):
    """A value of the wrong type or out of its range. Also a ``ValueError``: a parser that
    wraps ValueErrors with its file's name (a checkpoint's input spec) wraps this too."""


def check_int(name: str, value: object, minimum: int = 1, maximum: int | None = None, hint: str = "") -> int:
    """``value`` as an int in [minimum, maximum] (a bool is not an int here), else :class:`OptionError`
    ``"<name> must be an integer >= <minimum>[<hint>], got <value>"``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        rng = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise OptionError(f"{name} must be an integer {rng}{hint}, got {value}")
    return value


def check_seed(name: str, value: object) -> int:
    return check_int(name, value, 0, MAX_SEED)


def check_float(name: str, value: object, *, positive: bool = False, minimum: float | None = None,
                maximum: float | None = None) -> float:
    """``value`` as a finite float (ints accepted), > 0 with ``positive``, within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise OptionError(f"{name} must be a finite number, got {value}")
    if positive and not v > 0:
        raise OptionError(f"{name} must be > 0, got {value}")
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        lo = "-inf" if minimum is None else f"{minimum:g}"
        hi = "inf" if maximum is None else f"{maximum:g}"
        raise OptionError(f"{name} must lie in [{lo}, {hi}], got {value}")
    return v


# --------------------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------------------

def _meminfo(key: str, path: str = "/proc/meminfo") -> int | None:
    """A ``key: N kB`` line of /proc/meminfo (or /proc/self/status) in bytes; None if absent."""
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
        return None if text == "max" else int(text)
    except (OSError, ValueError):
        return None


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2 ``memory.max``, v1
    ``memory.limit_in_bytes``, less what the group uses); None without a limit."""
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        lim, used = _read_int(limit), _read_int(usage)
        if lim is not None and used is not None and lim < 1 << 60:  # v1 writes ~2**63 for "no limit"
            return max(lim - used, 0)
    return None


def _address_space_room() -> int | None:
    """Bytes this process may still map under its ``RLIMIT_AS`` (ulimit -v); None without one."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    mapped = _meminfo("VmSize", "/proc/self/status")
    if soft == resource.RLIM_INFINITY or mapped is None:
        return None
    return max(soft - mapped, 0)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation: the least of ``MemAvailable`` (Linux;
    else the physical memory), the room under the cgroup's memory limit and the room under
    the address-space limit (``ulimit -v``); None where none is known."""
    known = [m for m in (_meminfo("MemAvailable"), _cgroup_room(), _address_space_room()) if m is not None]
    if not known:
        try:
            known.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            return None
    return min(known)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def check_memory(nbytes: int | float, what: str, hint: str = "") -> None:
    """Refuse (:class:`OptionError`, one line) when ``what`` would need ``nbytes`` bytes, more
    than :func:`available_memory`. ``nbytes`` is an estimate of the one largest buffer (e.g.
    clips x frames x 3 x size**2 x 4 for a float batch): a run needs more than that, so a
    refusal is always right and a pass is no promise."""
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise OptionError(f"{what} needs about {human_bytes(nbytes)}, more than the {human_bytes(avail)} of memory "
                          f"available{hint}")


def clip_bytes(frames: int, size: int, itemsize: int = 4) -> int:
    """Bytes of one (3, frames, size, size) clip of ``itemsize``-byte values (4: float32)."""
    return 3 * frames * size * size * itemsize
