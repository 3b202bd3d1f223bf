"""The search spaces and baselines shipped with autokd (installed as ``autokd.search_spaces``)."""
