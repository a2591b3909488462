"""Dataset formats: pure readers (source folder → :class:`SourceScan`) and writers."""
