"""Evaluating world models by planning: the protocol behind ``wm eval`` (``protocol``), where its
episodes run (``executors``), judging a model on recorded episodes alone (``offline``, ``wm
eval-offline``), paired comparison of runs (``compare``), success-rate statistics
(``stats``), tables, videos and plots (``report``), and representation diagnostics of a frozen
encoder (``representation``)."""
