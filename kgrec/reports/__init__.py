"""What a run leaves for people: Markdown/JSON result tables, the per-run report data, the HTML
report and recommendations exported as RDF. Reads fitted recommenders; nothing below imports it.
"""
