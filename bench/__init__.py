"""The benchmark behind ``make bench``: the city measured as production runs it."""
