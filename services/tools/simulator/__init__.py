"""The city simulator: ``python -m services simulate`` drives a city through its real HTTP APIs
on simulated time — inspectors, hotline, citizens and cameras report; the command center and the
departments act on every case at rates a profile sets (see ``profile.py``).
"""
