"""``autokd calibrate``: how well short proxies rank strategies like full training on a task, and
which proxy to search with. :mod:`plan` (what is trained), :mod:`calibrate` (running it),
:mod:`analysis` (the figures), :mod:`report`, :mod:`space_copy` (the recommendation as space lines)."""
