"""Replicating the paper's table: run the `paper-table` template here, collect, and report.

- :mod:`.local` runs every cell of the template in this process, one after another, resumably;
- :mod:`.collect` turns run folders (or the API's evaluation rows) into the analysis table;
- :mod:`.report` writes the Markdown report and its figures from that table.
"""
