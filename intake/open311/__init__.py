"""Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2): the open standard citizen apps and
311 tools speak, served under ``/open311/v2`` as another door for citizen reports."""
