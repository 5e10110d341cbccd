"""Forward stored events to Elasticsearch (or OpenSearch), exactly once, nothing lost.

Same file names as every sink (STYLE.md §6): ``config.py`` (options),
``template.py`` (index template), ``encode.py`` (event -> bulk action),
``retry.py`` (answer -> Done / Retry / DeadLetter / Split), ``client.py``
(the client libraries, imported lazily), ``sink.py`` (the pipeline).
Nothing here imports ``elasticsearch`` at import time: logmesh runs without
the ``[elasticsearch]`` extra. User guide: docs/elasticsearch.md.
"""
