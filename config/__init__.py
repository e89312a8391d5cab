"""Configuration shared by the entry points: the one settings class and the store it names.

The CLI (:mod:`plantgraph`) and the API read it; the engines below them (reasoning, store,
graph_loader) never do: they take what they need as arguments.
"""
