"""The data layer: sources -> clip sampling -> decode -> transforms.

- :mod:`bebias.data.records`    ``VideoRecord`` / ``LabeledVideos``: what a source yields
- :mod:`bebias.data.sources`    parsers for UCF101, HMDB51, Diving48, Kinetics, SSv2, Mimetics,
                                CSV manifests, folders; finds official/mmaction2 layouts
- :mod:`bebias.data.video_io`   OpenCV decoding/encoding of video files and frame folders
- :mod:`bebias.data.sampling`   which frame indices make a clip (train / test)
- :mod:`bebias.data.transforms` clip transforms on (T,C,H,W) tensors (torchvision v2)
- :mod:`bebias.data.dataset`    the torch Dataset gluing the stages, skipping bad samples
- :mod:`bebias.data.batches`    collation; batches from worker processes in recycled shared memory
- :mod:`bebias.data.loader`     the DataLoader (order a function of seed and epoch), worker count
- :mod:`bebias.data.synth`      the embedded biased-motion benchmark
"""
