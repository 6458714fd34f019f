"""The intake service: reports from every source (inspectors, the 12345/12319 hotlines, the public,
video detection), verification (核实), filing (立案) or rejection (不予立案), and duplicates merged into
open cases.
"""
