"""Data sources: parse a dataset's split/annotation files into :class:`LabeledVideos`.

Every parser is a function of the files on disk. Parsers never decode videos; they
only list them. A listed video that does not exist is *kept* (the loader skips unreadable
videos and reports them at the end) and its path is added to
:attr:`LabeledVideos.missing`; if *none* of the listed videos exists, that is almost
certainly a wrong folder and a :class:`~bebias.errors.BebiasError` is raised instead.

Supported sources (``docs/datasets.md`` shows each accepted layout as a tree):

- :func:`ucf101`        official ``ucfTrainTestlist`` files
- :func:`hmdb51`        official per-class ``<class>_test_split<N>.txt`` files
- :func:`diving48`      ``Diving48_V2_{train,test}.json`` (+ ``Diving48_vocab.json``)
- :func:`kinetics`      Kinetics-400/600/700 CSVs (``train.csv``, ``validate.csv``, ...)
- :func:`ssv2`          Something-Something v2 ``labels.json`` + split JSONs
- :func:`mimetics`      ``mimetics_v1.0.csv`` (Kinetics-400 classes, test only)
- :func:`csv_manifest`  a CSV with a header: ``path,label[,start,end][,split][,...]``
- :func:`class_folders` ``root/<class>/<video file or frame folder>``
- :func:`load_source`   picks one of the above from ``--data`` / ``--dataset``

For the named datasets ``--data`` may be the dataset's parent folder (official or
mmaction2 layout) or the video folder; :mod:`bebias.data.sources.layout` finds the split
files and the videos (files or frame folders) in it.

Conventions shared by all parsers:

- labels are 0-based class indices into ``LabeledVideos.classes``;
- ``VideoRecord.start`` is inclusive and ``VideoRecord.end`` exclusive (frame indices);
- every record's ``meta`` has ``class_name``, and ``split`` when the split is known;
- malformed input raises :class:`~bebias.errors.DatasetFormatError` with a one-line
  message naming the file (and the line number for a malformed line) and, where a flag
  fixes it, the flag (``--annotations DIR``, ``--split``, ``--fold``, ``--data``);
- text files are read as UTF-8 (a BOM is ignored); Windows line endings, trailing
  whitespace and blank lines are tolerated.
"""

from bebias.data.sources.common import FRAME_EXTENSIONS, VIDEO_EXTENSIONS
from bebias.data.sources.dispatch import DATASETS, canonical_dataset, hflip_safe, load_source
from bebias.data.sources.diving import diving48
from bebias.data.sources.folders import class_folders
from bebias.data.sources.hmdb import hmdb51
from bebias.data.sources.manifest import csv_manifest
from bebias.data.sources.sthv2 import ssv2
from bebias.data.sources.ucf import ucf101
from bebias.data.sources.youtube_clips import kinetics, mimetics

__all__ = [
    "DATASETS",
    "FRAME_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "canonical_dataset",
    "class_folders",
    "csv_manifest",
    "diving48",
    "hflip_safe",
    "hmdb51",
    "kinetics",
    "load_source",
    "mimetics",
    "ssv2",
    "ucf101",
]
