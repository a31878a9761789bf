"""RDF parsing, mapping, id maps, graph container, interactions, splits, text rendering."""
