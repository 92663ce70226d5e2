"""``domainrag serve``: the HTTP edge over :class:`~domainrag.kb.KnowledgeBase`.

Importing this package imports nothing heavy: the web framework is loaded by the modules that
need it (``pip install 'domainrag[server]'``).
"""
