"""Charts and the frames behind them, for the notebooks (and reports): what the pipeline did, as pictures."""
