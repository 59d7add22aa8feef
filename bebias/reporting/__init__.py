"""``bebias report``: paper-style tables, figures and one self-contained HTML page from the
results other commands wrote. :mod:`~bebias.reporting.inputs` finds and recognises result
files by their content (probe ``metrics.json``, eval JSON, ``compare.json``, calibration and
``cam.json``), :mod:`~bebias.reporting.tables` turns them into tables (pure pandas, one row
per checkpoint, CIs, best per column, deltas against a baseline) written as Markdown, LaTeX,
CSV and HTML, :mod:`~bebias.reporting.figures` draws the plots (matplotlib, Agg, one colour
per checkpoint), :mod:`~bebias.reporting.page` assembles ``report.html`` with every image
embedded, and :mod:`~bebias.reporting.build` writes it all. It reads checkpoints only for
their metadata, and never imports ``training/`` or ``probing/``.
"""
