"""Built-in document loaders, one module per format.

Each loader is registered as a plug-in in the ``domainrag.loaders`` entry-point group (see
``pyproject.toml``) and imported only when the registry first asks for it, so heavy parsing
libraries are loaded on demand.
"""
