"""Declarative table imports: CSV, JSON Lines and Excel exports mapped onto the ontology by YAML."""

from graph_loader.tables.importer import TableImportReport, import_table
from graph_loader.tables.mapping import Mapping, MappingError, load_mapping
from graph_loader.tables.readers import TableInputError

__all__ = ["Mapping", "MappingError", "TableImportReport", "TableInputError", "import_table", "load_mapping"]
