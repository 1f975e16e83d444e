"""The bk language server (``bkdsl lsp``): diagnostics as you type, hover, go-to-definition, completion.

:mod:`bkdsl.lsp.server` wires pygls to small pure functions over the existing front end, one job each:
:mod:`~bkdsl.lsp.positions` (bk spans ↔ LSP positions), :mod:`~bkdsl.lsp.diagnose` (the public check
API's diagnostics as LSP diagnostics), :mod:`~bkdsl.lsp.hover` (types and claim statuses from the
compiled program), :mod:`~bkdsl.lsp.definition` (declarations across imports, from the parse tree) and
:mod:`~bkdsl.lsp.completion` (component names and parameters from the registry's catalogue).
"""
